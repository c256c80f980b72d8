#ifndef BATON_COORDINATOR_TRANSACTION_MANAGER_H_
#define BATON_COORDINATOR_TRANSACTION_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/v1/participant_service.pb.h"
#include "baton/v1/transaction_service.pb.h"
#include "common/log_summary.h"
#include "common/serial_executor.h"
#include "common/timeline.h"
#include "coordinator/command_sink.h"
#include "coordinator/group_commit.h"
#include "coordinator/recovery_hooks.h"
#include "coordinator/saga_driver.h"
#include "coordinator/shard_directory.h"
#include "coordinator/store.h"
#include "coordinator/transaction_table.h"
#include "coordinator/two_phase_driver.h"
#include "protocols/backoff.h"
#include "protocols/operator_actions.h"

namespace baton {

struct ManagerOptions {
  // The first shard this process hosts; it hosts `shards` of them, numbered
  // on from here. A shard's number is the first field of its xids.
  uint32_t node_id = 0;
  uint32_t shards = 1;
  uint32_t default_timeout_ms = 60'000;
  // Phase-two retry backoff: initial delay, doubled per attempt up to the cap,
  // with +-20% jitter.
  int64_t retry_initial_ms = 100;
  int64_t retry_max_ms = 60'000;
  // Phase two still unfinished this long after the decision: the
  // transaction needs attention (retries go on).
  int64_t retry_window_ms = 10 * 60'000;
  // A command not answered within this counts as a failed attempt.
  int64_t command_timeout_ms = 30'000;
  // After a restart no stored deadline or retry window ends sooner than this
  // (see instants::CarryOver): time for participants to reattach.
  int64_t restart_grace_ms = 10'000;
  // Every instant the manager records or acts on is read from here. Not
  // owned; null means SystemTimeline().
  Timeline* timeline = nullptr;
  // The PostgreSQL mode: shards come and go with their leases. Every table
  // starts not serving, and the epoch is each lease's (ServeShard), not
  // this start's.
  bool leased_shards = false;
  // Who owns the shards this process does not host, in a cluster: calls
  // about their xids are refused with a WrongShard naming the owner. Not
  // owned; null for a node that stands alone.
  const ShardDirectory* directory = nullptr;
};

// What the manager needs of recovery/ (see recovery_hooks.h). Not owned.
struct ManagerHooks {
  std::function<Wakeups*(uint32_t shard)> wakeups;
  StoredInDoubt* in_doubt = nullptr;
};

// The calls of TransactionService, the participants' events and the
// operators' actions, each routed to the shard that owns its transaction:
// the one its xid's first field names. New transactions spread over the
// hosted shards; one with an idempotency key always goes to the shard the
// key hashes to, so a retry finds it. Each shard is a TransactionTable; what
// a call means for a protocol is its driver's business.
//
// Thread-safe. Replies run on the committer's finisher thread, the store
// reader's or the calling thread, never under a shard's lock, and must not
// block; no call blocks its caller's thread on the store.
class TransactionManager {
 public:
  template <typename T>
  using Reply = std::function<void(const absl::Status&, const T&)>;

  // `committer`, `store`, `sink` and the hooks must outlive this object.
  TransactionManager(const ManagerOptions& options, GroupCommitter* committer,
                     TransactionStore* store, CommandSink* sink,
                     ManagerHooks hooks);
  ~TransactionManager();

  TransactionManager(const TransactionManager&) = delete;
  TransactionManager& operator=(const TransactionManager&) = delete;

  // Bumps and syncs the epoch that makes xids unique across restarts, then
  // opens the shards. Call once, before anything else.
  absl::Status Init();

  // The hosted shards, in order, and the one owning an xid (null if none
  // hosted here does).
  const std::vector<std::unique_ptr<TransactionTable>>& tables() const {
    return tables_;
  }
  TransactionTable* TableFor(const std::string& xid) const;
  // The table of `shard` whether or not it is serving; null if not hosted.
  TransactionTable* HostedTable(uint32_t shard) const;

  // The PostgreSQL mode's lease changes (lease_keeper.h). DropShard stops
  // serving the shard and forgets what memory holds of it. ServeShard
  // serves it again once its unfinished records are adopted (the caller
  // adopts them first), new xids under `epoch`.
  void DropShard(uint32_t shard);
  void ServeShard(uint32_t shard, uint64_t epoch);

  // Takes over an unfinished record loaded from the store after a restart
  // (see TransactionTable::Adopt). FAILED_PRECONDITION if its shard is not
  // hosted here.
  absl::Status Adopt(v1::Transaction record);

  // The caller and participant calls of TransactionService. Requests are
  // assumed syntactically valid (see request_validation.h).
  void Begin(const v1::BeginRequest& request, Reply<v1::BeginResponse> reply);
  void Commit(const v1::CommitRequest& request,
              Reply<v1::CommitResponse> reply);
  void Rollback(const v1::RollbackRequest& request,
                Reply<v1::RollbackResponse> reply);
  void GetTransaction(const std::string& xid, Reply<v1::Transaction> reply);
  void RegisterBranch(const v1::RegisterBranchRequest& request,
                      Reply<v1::RegisterBranchResponse> reply);
  void ReportBranch(const v1::ReportBranchRequest& request,
                    Reply<v1::ReportBranchResponse> reply);
  // Starts a saga (saga_submit.cc). A repeated request_id answers with the
  // saga it started, even after it finished (until purged); with another
  // definition it is ALREADY_EXISTS.
  void SubmitSaga(const v1::SubmitSagaRequest& request,
                  Reply<v1::SubmitSagaResponse> reply);

  // From participant sessions.
  void OnCommandResult(const v1::BranchResult& result);
  void OnCommandLost(const std::string& xid, uint64_t branch_id,
                     uint64_t command_id);
  void OnResourcesAttached(const std::vector<std::string>& resources);
  // Answers a participant's in-doubt branches (see InDoubt in the proto);
  // commands go preferably to `instance_id`.
  void ResolveInDoubt(const std::string& instance_id,
                      const std::vector<v1::InDoubtBranch>& branches);

  // The time every instant in the records is read on; answers add its
  // wall offset (instants::Shift) to show them on the wall clock.
  Timeline* timeline() const { return timeline_; }
  const ManagerOptions& options() const { return options_; }

  // An operator's action (protocols/operator_actions.h), answered with the
  // record once the change and its audit record are durable. Commands the
  // action makes due go out then.
  enum class OperatorAction {
    kForceCommit,
    kForceRollback,
    kRetry,
    kPause,
    kResume
  };
  void Operate(const std::string& xid, OperatorAction action,
               const operator_actions::Request& request,
               Reply<v1::Transaction> reply);

  // Drops a terminal or needs-attention record, keeping a tombstone with its
  // audit trail; later lookups of the xid get NOT_FOUND naming who forgot it
  // and why. Answered with the tombstone.
  void Forget(const std::string& xid, const operator_actions::Request& request,
              Reply<v1::Transaction> reply);

  // Answers every caller waiting for phase two (Commit, Rollback or
  // SubmitSaga with wait) UNAVAILABLE now, and later ones at once: gRPC
  // cannot shut down while a call is unanswered. The decisions stand.
  void StopWaiting();

  size_t LiveCount() const;

  // Returns once every store read queued so far has answered its call.
  void DrainStoreReads() { store_reads_.Drain(); }

  // Where conditions that repeat per transaction are logged; the recovery
  // loop flushes its summaries.
  LogSummary* log_summary() { return &log_summary_; }

  // What operators see of the unfinished transactions, gathered shard by
  // shard a page at a time.
  struct Summary {
    struct Shard {
      std::map<std::pair<v1::GlobalStatus, v1::Protocol>, uint64_t> counts;
      uint64_t retry_backlog = 0;  // Owed commands not in flight.
    };
    std::map<uint32_t, Shard> shards;  // Every hosted shard, by id.
    // The owed commands of every shard, by the resource they are for.
    std::map<std::string, uint64_t> backlog_by_resource;
    std::string oldest_xid;
    int64_t oldest_begun_unix_ms = 0;

    // Over every shard.
    std::map<std::pair<v1::GlobalStatus, v1::Protocol>, uint64_t> Counts()
        const;
    uint64_t RetryBacklog() const;
  };
  Summary Summarize() const;
  // Live (unfinished) transactions per hosted shard: a count per table, no
  // scan.
  std::map<uint32_t, uint64_t> LiveByShard() const;
  // The hosted shards serving now, in order.
  std::vector<uint32_t> ServingShards() const;

  // Drains `shard` (or, with !draining, undoes it): see DrainShard in
  // admin_service.proto. Answers once durable (shard_drain.cc).
  void Drain(uint32_t shard, bool draining, const std::string& why,
             std::function<void(const absl::Status&)> done);
  std::set<uint32_t> DrainingShards() const;

  // Reads the unfinished transactions in shard order, and within a shard in
  // the order they began, starting after xid `after` ("" for the first),
  // until `read` returns false. Each shard's lock is held for one page of
  // records at a time, so `read` must be quick and must not call back.
  void ReadLive(const std::string& after,
                const std::function<bool(const v1::Transaction&)>& read) const;

 private:
  // Records read per hold of a shard's lock by scans over every record.
  static constexpr size_t kScanPage = 256;

  using Done = baton::Done;

  // The table a new transaction starts in; for a keyed one in a cluster,
  // a WrongShard refusal if its key belongs to another node's shard.
  absl::StatusOr<TransactionTable*> TableForNew(const std::string& request_id);
  ProtocolDriver* DriverFor(const v1::Transaction& record) const {
    return drivers_.For(record.protocol());
  }
  // Runs `change` on the live record of xid, or for a record only in the
  // store, on a copy (see MutateStored).
  void Mutate(const std::string& xid, TransactionTable::Change change,
              Done done);
  // The refusal of a call about xid if its shard is another node's.
  std::optional<absl::Status> Elsewhere(const std::string& xid) const;
  void MutateStored(const std::string& xid,
                    const TransactionTable::Change& change, const Done& done);
  absl::Status NotFound(const std::string& xid);
  static absl::Status KeyTaken(const std::string& request_id,
                               const v1::Transaction& existing);
  void DecideAndReply(const std::string& xid, bool commit, std::string reason,
                      bool wait, uint32_t wait_timeout_ms,
                      Reply<v1::GlobalStatus> reply);
  void AddWaiter(const std::string& xid, uint32_t wait_timeout_ms, Done reply);
  void Kick(const std::string& xid);
  void ForgetStored(const std::string& xid,
                    const operator_actions::Request& request,
                    Reply<v1::Transaction> reply);
  void SubmitForget(v1::Transaction tombstone, int64_t unfinished_due,
                    Reply<v1::Transaction> reply);
  // Marks draining each hosted shard the store says is (at start).
  absl::Status LoadDraining();
  bool ShardDrainingInStore(uint32_t shard) const;
  void MakeTables();
  void SubmitSagaStored(TransactionTable* table,
                        const v1::SubmitSagaRequest& request, Done answer);
  void StartSaga(TransactionTable* table, const v1::SubmitSagaRequest& request,
                 Done done);
  void AnswerExistingSaga(const v1::Transaction& existing,
                          const v1::SubmitSagaRequest& request, Done done);
  void AnswerWhenDurable(absl::Status status, v1::Transaction snapshot,
                         Done done);
  // A fresh record begun at `now`.
  absl::Status NewRecord(v1::Transaction* r, int64_t now,
                         const std::string& name, v1::Protocol protocol,
                         uint32_t timeout_ms) const;

  const ManagerOptions options_;
  Timeline* const timeline_;
  GroupCommitter* const committer_;
  TransactionStore* const store_;
  CommandSink* const sink_;
  const ManagerHooks hooks_;
  LogSummary log_summary_;
  const Backoff backoff_;
  TwoPhaseDriver two_phase_;
  SagaDriver saga_;
  const Drivers drivers_;
  uint64_t epoch_ = 0;                                     // Set by Init.
  std::vector<std::unique_ptr<TransactionTable>> tables_;  // Set by Init.
  std::atomic<uint64_t> next_table_{0};
  // Store reads a call needs (records no longer in memory, tombstones,
  // saga keys): never on the caller's thread, which is gRPC's. Last, so it
  // stops first.
  SerialExecutor store_reads_{"baton-reads"};
};

}  // namespace baton

#endif  // BATON_COORDINATOR_TRANSACTION_MANAGER_H_
