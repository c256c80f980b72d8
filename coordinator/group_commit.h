#ifndef BATON_COORDINATOR_GROUP_COMMIT_H_
#define BATON_COORDINATOR_GROUP_COMMIT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store.h"

namespace baton {

// Makes many concurrent changes durable with one synced write. Callers
// submit a batch and a callback; a committer thread takes everything queued
// so far and applies it to the store as a single synced write, and a
// finisher thread then runs that group's callbacks in submission order while
// the committer already syncs the next group (a sync is mostly waiting on
// the disk, so the callbacks need not lengthen the cycle).
//
// Order is the contract: a callback runs only after its own batch and every
// batch submitted before it are durable, and after every earlier callback.
// An empty batch costs no write and so acts as a barrier: "answer once
// everything I might have seen is on disk".
//
// A store that fences shards (the PostgreSQL mode) may refuse the batches
// of shards this node no longer leases and write the rest: those
// callbacks get the refusal, the others the write's status. A refused
// batch was never durable, and does not hold back later ones: its shard is
// another node's now, and this one stops serving it.
//
// Fail-stop: once a write fails, that failure is final. Its group and every
// later one, barriers included, complete with it and nothing more reaches
// the store, because callers have already changed state in memory that the
// disk may never have: answering any later call OK could confirm it.
// Thread-safe.
class GroupCommitter {
 public:
  using Callback = std::function<void(const absl::Status&)>;
  using FailureObserver = std::function<void(const absl::Status&)>;

  // `store` must outlive this object. `on_failure`, if set, runs on the
  // committer thread when the first write fails (again after a Revive).
  explicit GroupCommitter(TransactionStore* store,
                          FailureObserver on_failure = nullptr);
  // Stop(), if not done yet.
  ~GroupCommitter();

  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // `done` runs on the finisher thread; it must not block, and may submit.
  // After Stop, the batch is dropped and `done` never runs.
  void Submit(StoreBatch batch, Callback done);

  // Commits whatever is queued (including what callbacks submit meanwhile),
  // runs every callback, then stops both threads. Call it while everything
  // the callbacks touch is still alive. Idempotent; not from a callback.
  void Stop();

  // Writes that held at least one batch (one sync each).
  uint64_t groups() const;

  // OK while every write succeeded; afterwards the first failure (its code,
  // and a message saying the store failed earlier), for good.
  absl::Status failure() const;

  // How long the write in progress has taken so far; zero if none is.
  std::chrono::milliseconds writing_for() const;

  // Ends a failure: later groups are written again, and a later failure is
  // observed again. Only once the store is revived and nothing anyone holds
  // in memory from before the failure can be written (the leased mode drops
  // every shard first).
  void Revive();

 private:
  struct Pending {
    StoreBatch batch;
    Callback done;
  };
  // A group whose write is over, waiting for its callbacks to run.
  struct Written {
    std::vector<Pending> group;
    absl::Status status;
    // By position in `group`, where the store refused a batch of a shard
    // no longer leased here (TransactionStore::ApplyFenced); may be short.
    std::vector<absl::Status> refused;
  };

  void RunCommitter();
  void RunFinisher();
  absl::Status Write(const std::vector<Pending>& group,
                     std::vector<absl::Status>* refused);

  TransactionStore* const store_;
  const FailureObserver on_failure_;
  mutable absl::Mutex mu_;
  absl::CondVar wake_committer_;
  absl::CondVar wake_finisher_;
  std::vector<Pending> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<Written> written_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;  // Callbacks running.
  bool committer_done_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t groups_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // Sticky once set.
  // When the write in progress began (steady clock, ns); 0: none.
  std::atomic<int64_t> writing_since_ns_{0};
  std::thread committer_;
  std::thread finisher_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_GROUP_COMMIT_H_
