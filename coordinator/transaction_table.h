#ifndef BATON_COORDINATOR_TRANSACTION_TABLE_H_
#define BATON_COORDINATOR_TRANSACTION_TABLE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/log_summary.h"
#include "common/timeline.h"
#include "coordinator/command_sink.h"
#include "coordinator/group_commit.h"
#include "coordinator/live_transaction.h"
#include "coordinator/protocol_driver.h"
#include "coordinator/recovery_hooks.h"

namespace baton {

// The drivers a table dispatches to, by the record's protocol. Not owned.
struct Drivers {
  ProtocolDriver* two_phase = nullptr;  // Two-phase and TCC.
  ProtocolDriver* saga = nullptr;

  ProtocolDriver* For(v1::Protocol protocol) const {
    return protocol == v1::PROTOCOL_SAGA ? saga : two_phase;
  }
};

// Answers `done` with `status` and `snapshot` once everything queued on the
// committer so far is durable (or with the store's failure).
void AnswerWhenDurable(GroupCommitter* committer, absl::Status status,
                       v1::Transaction snapshot, Done done);

// One shard's unfinished transactions in memory, and the rules every
// protocol shares:
//  - each change is applied to the record and queued on the group committer
//    under the shard's lock, so the store sees a record's changes in the
//    order memory did;
//  - a caller is answered only once everything the answer reveals is
//    durable;
//  - a command leaves the outbox only once every write of its record queued
//    before it is durable (so phase two follows a durable decision, and a
//    saga step runs only once its dispatch is on disk);
//  - a terminal record leaves memory once durable.
// What a change means is the driver's business (protocol_driver.h); replies
// run after the lock is released.
//
// Thread-safe. Lock order: a table's lock, then the committer's, the
// sink's and the wakeups'.
class TransactionTable {
 public:
  struct Options {
    uint32_t shard = 0;  // The first field of the xids it creates.
    // The second: unique per start of the process (or per lease: Serve).
    uint64_t epoch = 0;
    // Where its command ids start. Participants' streams match results by
    // command id, and one stream carries every shard's commands, so the
    // shards of a process need ranges apart.
    uint64_t first_command_id = 1;
    Timeline* timeline = nullptr;
    GroupCommitter* committer = nullptr;
    CommandSink* sink = nullptr;
    Wakeups* wakeups = nullptr;
    Drivers drivers;
    LogSummary* log_summary = nullptr;
  };

  // Every pointer in `options` must outlive the table.
  explicit TransactionTable(const Options& options);

  TransactionTable(const TransactionTable&) = delete;
  TransactionTable& operator=(const TransactionTable&) = delete;

  uint32_t shard() const { return options_.shard; }
  Timeline* timeline() const { return options_.timeline; }

  // Fills in a new record given its fresh xid, at `now` on the timeline; an
  // error drops it.
  using Init = std::function<absl::Status(v1::Transaction*, int64_t now)>;
  // A live record already holds the idempotency key: the answer's status.
  using OnExisting = std::function<absl::Status(const v1::Transaction&)>;

  // Creates a transaction and answers once it is durable. A non-empty
  // request_id held by a live record answers with that record instead. If
  // the caller reserved the key (ReserveKey), the reservation ends here.
  void Create(const std::string& request_id, bool reserved, const Init& init,
              const OnExisting& on_existing, Done done);

  enum class KeyState { kFree, kLive, kReserved };
  // A draining table refuses a Create with a key it does not know (a
  // WrongShard with draining set); one without a key still starts.
  void set_draining(bool draining) {
    draining_.store(draining, std::memory_order_relaxed);
  }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // In the PostgreSQL mode a shard is served only while this node leases
  // it (lease_keeper.h). Drop stops serving it: every live record leaves
  // memory, its waiters are answered UNAVAILABLE, and results and timers
  // for them are ignored from then on; the new owner has them from the
  // store. Serve(epoch) serves it again, its new xids under `epoch` (the
  // lease's fencing number, unique to this holding of the shard), once the
  // shard's unfinished records are adopted. A table starts serving.
  void Drop();
  void Serve(uint64_t epoch);
  void set_serving(bool serving) {
    serving_.store(serving, std::memory_order_release);
  }
  bool serving() const { return serving_.load(std::memory_order_acquire); }
  // Raised by every Drop.
  uint64_t generation() const {
    return generation_.load(std::memory_order_acquire);
  }
  // Serves again after set_serving(false), unless dropped since
  // `generation` (then its records are gone, and Serve must come first).
  void ServeAgainUnlessDropped(uint64_t generation);

  // Reserves a free key for a Create to come, so no other call can take it
  // meanwhile; a live one copies its record to *existing.
  KeyState ReserveKey(const std::string& key, v1::Transaction* existing);
  void Unreserve(const std::string& key);

  // A caller's change: runs `change` on the live record at `now` (it sets
  // fx->persist if it changed it), then answers `done` once what it did and
  // saw is durable. False, without calling anything, if xid is not live.
  using Change =
      std::function<absl::Status(LiveTransaction*, int64_t now, Effects*)>;
  bool Apply(const std::string& xid, const Change& change, Done done);

  // An event without a caller (results, timers, resumes): like Apply,
  // answering no one. False if xid is not live.
  using Event = std::function<void(ProtocolDriver*, LiveTransaction*,
                                   int64_t now, Effects*)>;
  bool Handle(const std::string& xid, const Event& event);

  // Calls `event` on up to `limit` live records after `after` ("" for the
  // first), in xid order (by epoch, then sequence: the order they began), under
  // one hold of the lock; returns the last xid visited, "" at the end. Lets a
  // scan of every record release the lock between pages.
  std::string HandlePage(const std::string& after, size_t limit,
                         const Event& event);

  // Reads up to `limit` live records after `after` in xid order, until
  // `read` returns false; returns the xid of the last record read, "" once
  // past the last record.
  std::string ReadPage(
      const std::string& after, size_t limit,
      const std::function<bool(const LiveTransaction&)>& read) const;

  // Answers `done` when the record is terminal or needs attention (or at
  // deadline_ms, with the record as it is then). False if xid is not live.
  bool AddWaiter(const std::string& xid, int64_t deadline_ms, Done done);

  // Drops a live record for which `check` holds, answering its waiters
  // ABORTED. The record and the due time it was indexed at come back. False
  // if xid is not live; otherwise *status is check's verdict.
  bool Remove(const std::string& xid,
              const std::function<absl::Status(const v1::Transaction&)>& check,
              v1::Transaction* removed, int64_t* persisted_due,
              absl::Status* status);

  // Takes over a record loaded after a restart; the driver makes it safe
  // (Adopt), and nothing is sent for it until Resume. DATA_LOSS if its xid
  // is not one or the table already holds it: a damaged store.
  absl::Status Adopt(v1::Transaction record);
  void Resume(const std::string& xid);

  // Timed work due at `now` on the record: the driver's, and waiters whose
  // wait ran out.
  void RunDue(RecordKey record, int64_t now);

  // Answers every waiter UNAVAILABLE now and later ones at once.
  void StopWaiting();

  size_t LiveCount() const;

 private:
  // Replies and other calls that must run after the lock is released.
  using Deferred = std::vector<std::function<void()>>;
  // Runs and clears `deferred`, outside mu_.
  static void RunAll(Deferred* deferred);

  LiveTransaction* FindLocked(const std::string& xid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  LiveTransaction* FindLocked(RecordKey key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ProtocolDriver* DriverLocked(const LiveTransaction& t) const {
    return options_.drivers.For(t.record.protocol());
  }
  // Writes, queues and releases what `fx` asks for; `done` answers once the
  // record as written is durable (or, if nothing changed, once what it
  // reveals is).
  void FinishChangeLocked(LiveTransaction* t, Effects fx, absl::Status status,
                          Done done, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistLocked(LiveTransaction* t, Done done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AnswerFromRecordLocked(LiveTransaction* t, absl::Status status,
                              Done done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnDurable(RecordKey record, v1::GlobalStatus status, uint64_t write);
  void ReleaseLocked(LiveTransaction* t, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireWaitersLocked(LiveTransaction* t, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks the schedule for the record's next timed work after `now`.
  void RearmLocked(const LiveTransaction& t, int64_t now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(LiveTransaction* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps the key of a record the coordinator rolled back before any branch
  // joined (a timeout, or a restart finding it open): its caller may never
  // have heard of it, because the answer to its Begin was lost, and will
  // retry with the key.
  absl::Status DrainingRefusal() const;
  void KeepUnclaimedKeyLocked(const v1::Transaction& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetKeyLocked(const v1::Transaction& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static absl::Status ShuttingDown(const std::string& xid);
  static absl::Status Moved(const std::string& xid);
  void AnswerWhenHeldDurable(absl::Status status, v1::Transaction snapshot,
                             Done done);

  const Options options_;

  mutable absl::Mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_command_id_ ABSL_GUARDED_BY(mu_);
  uint64_t next_waiter_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopped_waiting_ ABSL_GUARDED_BY(mu_) = false;
  // By (epoch, sequence), so scans go page by page in the order records
  // were created.
  using LiveMap = absl::btree_map<RecordKey, std::unique_ptr<LiveTransaction>>;
  LiveMap live_ ABSL_GUARDED_BY(mu_);
  LiveMap::const_iterator PageStartLocked(const std::string& after) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Idempotency keys of live records, and keys reserved by a Create to come.
  absl::flat_hash_map<std::string, std::string> xid_by_key_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> reserved_keys_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> draining_{false};
  std::atomic<bool> serving_{true};
  // Raised by each Drop: callbacks of writes queued before it are stale.
  std::atomic<uint64_t> generation_{0};
  // Finished records by key, from KeepUnclaimedKeyLocked: the newest
  // kMaxUnclaimedKeys, oldest first in unclaimed_order_.
  static constexpr size_t kMaxUnclaimedKeys = 16'384;
  // How soon a command no stream could take (all full) is offered again.
  static constexpr int64_t kFullQueueRetryMs = 200;
  absl::flat_hash_map<std::string, v1::Transaction> unclaimed_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::string> unclaimed_order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_COORDINATOR_TRANSACTION_TABLE_H_
