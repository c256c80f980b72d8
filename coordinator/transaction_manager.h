#ifndef BATON_COORDINATOR_TRANSACTION_MANAGER_H_
#define BATON_COORDINATOR_TRANSACTION_MANAGER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "baton/v1/participant_service.pb.h"
#include "baton/v1/transaction_service.pb.h"
#include "common/log_summary.h"
#include "common/timeline.h"
#include "coordinator/command_sink.h"
#include "coordinator/group_commit.h"
#include "coordinator/store.h"
#include "protocols/operator_actions.h"

namespace baton {

// Meta key prefix mapping a saga's request_id to its xid.
inline constexpr char kSagaRequestPrefix[] = "saga-request/";

struct ManagerOptions {
  uint32_t node_id = 0;
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
  // Transactions resumed per RunDue call after a restart, so a large backlog
  // does not starve new traffic.
  size_t resume_per_tick = 500;
  // After a restart no stored deadline or retry window ends sooner than this
  // (see instants::CarryOver): time for participants to reattach.
  int64_t restart_grace_ms = 10'000;
  // Every instant the manager records or acts on is read from here. Not
  // owned; null means SystemTimeline().
  Timeline* timeline = nullptr;
};

// Owns every unfinished global transaction in memory and drives it through
// its protocol. Each change is applied to the in-memory record and queued on
// the group committer under one lock, so the store sees changes in the order
// memory did; callers are answered only from the committer's callbacks, so
// no answer gets ahead of the disk. Phase-two commands go out only after the
// decision is durable. Terminal transactions leave memory once durable and
// are served from the store afterwards.
//
// Thread-safe. Replies run on the committer's finisher thread or the calling
// thread and must not block.
class TransactionManager {
 public:
  template <typename T>
  using Reply = std::function<void(const absl::Status&, const T&)>;

  // `committer`, `store` and `sink` must outlive this object.
  TransactionManager(const ManagerOptions& options, GroupCommitter* committer,
                     TransactionStore* store, CommandSink* sink);

  TransactionManager(const TransactionManager&) = delete;
  TransactionManager& operator=(const TransactionManager&) = delete;

  // Bumps and syncs the epoch that makes xids unique across restarts. Call
  // once, before any Begin.
  absl::Status Init();

  // Takes over an unfinished record loaded from the store after a restart.
  // An open one is rolled back (its caller's view was lost); one with a
  // decision resumes phase two.
  void Adopt(v1::Transaction record);

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
  // Starts a saga (saga_driver.cc). A repeated request_id answers with the
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

  // Resumes adopted transactions (paced), rolls back expired ones, resends
  // commands whose retry is due or whose answer is overdue, marks phase twos
  // past the retry window as needing attention, and answers waiters whose
  // wait ran out. Called by the recovery loop with timeline()->Now().
  void RunDue(int64_t now_ms);

  // The time every instant in the records is read on; answers add its
  // wall offset (instants::Shift) to show them on the wall clock.
  Timeline* timeline() const { return timeline_; }

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

  // Where conditions that repeat per transaction are logged; RunDue
  // flushes its summaries.
  LogSummary* log_summary() { return &log_summary_; }

  // What operators see of the unfinished transactions.
  struct Summary {
    std::map<std::pair<v1::GlobalStatus, v1::Protocol>, uint64_t> counts;
    uint64_t retry_backlog = 0;  // Owed commands not in flight.
    std::string oldest_xid;
    int64_t oldest_begun_unix_ms = 0;
  };
  Summary Summarize() const;

  // Copies of the unfinished transactions for which `match` holds.
  std::vector<v1::Transaction> CopyLive(
      const std::function<bool(const v1::Transaction&)>& match) const;

 private:
  struct Delivery {
    uint64_t command_id = 0;  // Of the command in flight; 0 if none.
  };
  struct CommandRef {
    std::string xid;
    uint64_t branch_id;
    uint64_t command_id;
  };
  // Changes *record and sets *changed; errors leave it untouched.
  using Mutation = std::function<absl::Status(v1::Transaction*, bool* changed)>;
  using Done = std::function<void(const absl::Status&, const v1::Transaction&)>;
  struct Waiter {
    uint64_t id;
    int64_t deadline_ms;
    Done reply;  // May run under mu_: must not call back into the manager.
  };
  // A saga command made durable as dispatched in write `write`; it goes out
  // once that write is on disk.
  struct SagaOutboxEntry {
    uint64_t write;
    uint32_t step;
    bool compensation;
  };
  struct LiveTransaction {
    v1::Transaction record;
    int64_t persisted_due = -1;  // Index position of the last queued write.
    bool decision_durable = false;
    bool phase_two_started = false;
    bool resume_pending = false;  // Adopted; RunDue has not resumed it yet.
    // The record holds a change no queued write carries (a DONE riding
    // along with the next write).
    bool unwritten = false;
    uint64_t writes_queued = 0;   // Numbers this record's writes.
    uint64_t writes_durable = 0;  // The last of them on disk.
    std::unordered_map<uint64_t, Delivery> deliveries;  // By branch id.
    std::vector<Waiter> waiters;
    std::vector<SagaOutboxEntry> saga_outbox;
  };

  void Mutate(const std::string& xid, Mutation mutate, Done done);
  void MutateStored(const std::string& xid, const Mutation& mutate,
                    const Done& done);
  void AnswerWhenDurable(absl::Status status, v1::Transaction snapshot,
                         Done done);
  // Answers with the record as memory has it, once all of it is on disk.
  void AnswerFromRecordLocked(LiveTransaction* t, absl::Status status,
                              Done done);
  void PersistLocked(LiveTransaction* t, Done done);
  void OnDurable(const std::string& xid, v1::GlobalStatus status,
                 uint64_t write);
  void StartPhaseTwoLocked(LiveTransaction* t);
  void DispatchLocked(LiveTransaction* t, uint64_t branch_id,
                      v1::BranchAction action, bool ignore_backoff);
  void FinishLocked(LiveTransaction* t);
  void ForgetRequestIdLocked(const v1::Transaction& record);
  void Kick(const std::string& xid);
  void ForgetStored(const std::string& xid,
                    const operator_actions::Request& request,
                    Reply<v1::Transaction> reply);
  void SubmitForget(v1::Transaction tombstone, int64_t unfinished_due,
                    Reply<v1::Transaction> reply);
  absl::Status NotFound(const std::string& xid);
  static absl::Status KeyTaken(const std::string& request_id,
                               const v1::Transaction& existing);
  void DecideAndReply(const std::string& xid, bool commit, std::string reason,
                      bool wait, uint32_t wait_timeout_ms,
                      Reply<v1::GlobalStatus> reply);
  void AddWaiter(const std::string& xid, uint32_t wait_timeout_ms, Done reply);
  static absl::Status ShuttingDown(const std::string& xid);
  void ExpireWaitersLocked(int64_t now_ms);
  void RetryDueLocked(LiveTransaction* t, int64_t now_ms);
  void ResumeLocked(LiveTransaction* t);
  void ExpireCommandsLocked(int64_t now_ms);
  void DispatchOwedLocked(LiveTransaction* t, uint64_t branch_id);
  void SendResolution(const std::string& instance_id,
                      const v1::InDoubtBranch& branch, v1::BranchAction action,
                      const v1::Branch* known);
  int64_t RetryDelayMs(uint32_t attempts);
  LiveTransaction* FindLocked(const std::string& xid);
  int64_t NextActionFor(const v1::Transaction& record) const;

  // Sagas (saga_driver.cc). Each *Locked function that changes the record
  // also queues its write.
  void StartSagaLocked(const v1::SubmitSagaRequest& request, Done done);
  void AnswerExisting(const v1::Transaction& existing,
                      const v1::SubmitSagaRequest& request, Done done);
  bool AdvanceSagaLocked(LiveTransaction* t);
  void SendSagaOutboxLocked(LiveTransaction* t, uint64_t durable_write);
  void QueueSagaCommandLocked(LiveTransaction* t, uint64_t write, uint32_t step,
                              bool compensation);
  void OnSagaResultLocked(LiveTransaction* t, const v1::BranchResult& result);
  void OnSagaCommandLostLocked(LiveTransaction* t, uint64_t branch_id,
                               uint64_t command_id);
  void RunSagaTimersLocked(LiveTransaction* t, int64_t now_ms);
  void ResumeSagaLocked(LiveTransaction* t);

  const ManagerOptions options_;
  Timeline* const timeline_;
  GroupCommitter* const committer_;
  TransactionStore* const store_;
  CommandSink* const sink_;
  uint64_t epoch_ = 0;
  LogSummary log_summary_;

  mutable std::mutex mu_;
  uint64_t next_sequence_ = 0;    // Guarded by mu_.
  uint64_t next_command_id_ = 1;  // Guarded by mu_.
  uint64_t next_waiter_id_ = 1;   // Guarded by mu_.
  bool stopped_waiting_ = false;  // Guarded by mu_.
  std::unordered_map<std::string, std::unique_ptr<LiveTransaction>> live_;
  // Idempotency keys of live transactions (Begin's and SubmitSaga's).
  std::unordered_map<std::string, std::string> xid_by_begin_request_;
  // Saga keys whose submit is reading the store.
  std::unordered_set<std::string> submitting_;  // Guarded by mu_.
  // Adopted after a restart, not yet resumed.
  std::deque<std::string> to_resume_;
  // When each command in flight is overdue.
  std::multimap<int64_t, CommandRef> command_deadlines_;
  // (next action time, xid); entries go stale and are skipped when popped.
  using DueEntry = std::pair<int64_t, std::string>;
  std::priority_queue<DueEntry, std::vector<DueEntry>, std::greater<>> due_;
  std::multimap<int64_t, std::pair<std::string, uint64_t>> waiter_deadlines_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_TRANSACTION_MANAGER_H_
