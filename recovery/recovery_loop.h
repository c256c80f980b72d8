#ifndef BATON_RECOVERY_RECOVERY_LOOP_H_
#define BATON_RECOVERY_RECOVERY_LOOP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/log_summary.h"
#include "common/serial_executor.h"
#include "common/steady_cond_var.h"
#include "coordinator/group_commit.h"
#include "coordinator/store.h"
#include "coordinator/transaction_manager.h"
#include "recovery/in_doubt.h"
#include "recovery/schedule.h"
#include "recovery/timeline_offset.h"

namespace baton {

struct RecoveryOptions {
  // How often timed work (deadlines, retries, wait expiries) is checked.
  int64_t tick_ms = 20;
  // Terminal records are kept this long, then purged. Needs-attention
  // records are never purged.
  int64_t finished_retention_ms = 24LL * 60 * 60 * 1000;
  // Purges run this often at most (more often for short retentions).
  int64_t purge_interval_ms = 10'000;
  size_t purge_batch = 1000;
  // Records resumed per shard per tick after a restart.
  size_t resume_per_tick = 500;
};

// Finishes what the coordinator started. It owns each shard's schedule
// (ShardSchedule) and runs them every tick: paced resume of what a restart
// loaded, deadlines, phase-two retries with backoff, overdue answers, the
// retry window. It answers in-doubt branches from the store, saves the
// timeline's offset when the wall clock stepped, and purges old terminal
// records on a thread of its own, so a purge never delays the tick.
//
// Use: construct, hand hooks() to the TransactionManager, Attach it, then
// ResumeUnfinished and Start. Thread-safe after Attach.
class RecoveryLoop {
 public:
  // All pointers must outlive this object.
  RecoveryLoop(const RecoveryOptions& options, TransactionStore* store,
               GroupCommitter* committer, CommandSink* sink);
  ~RecoveryLoop();

  RecoveryLoop(const RecoveryLoop&) = delete;
  RecoveryLoop& operator=(const RecoveryLoop&) = delete;

  // What the manager needs of recovery; valid while this object lives.
  ManagerHooks hooks();

  // The manager (initialized) whose shards this drives; must outlive this.
  void Attach(TransactionManager* manager);

  // Hands every unfinished record in the store to its shard. Call once,
  // before reporting SERVING (calls for records not loaded yet are asked to
  // retry).
  absl::Status ResumeUnfinished();

  // The PostgreSQL mode's load of a shard just leased here: hands its
  // unfinished records to its table, as a restart does, then serves it
  // with new xids under `epoch`. An error leaves it not serving.
  absl::Status ResumeShard(uint32_t shard, uint64_t epoch);

  // Starts the periodic thread.
  void Start();

  // Stops the thread and waits for the purge and in-doubt answers under
  // way; the schedules stay, for the tables. Idempotent.
  void Stop();

  // One tick's timed work on every shard (the thread calls it; so may
  // tests).
  void RunDue(int64_t now_ms);

  // Deletes terminal records that finished before cutoff_ms, durably.
  // Returns how many were purged.
  size_t PurgeFinishedBefore(int64_t cutoff_ms);

  ShardSchedule* schedule(uint32_t shard);

 private:
  void Run();
  void MaybePurge(int64_t now_ms);

  const RecoveryOptions options_;
  TransactionStore* const store_;
  GroupCommitter* const committer_;
  LogSummary log_summary_;
  StoredInDoubtResolver in_doubt_;
  TransactionManager* manager_ = nullptr;              // Set by Attach.
  std::unique_ptr<TimelineOffsetSaver> offset_saver_;  // The thread's.

  absl::Mutex schedules_mu_;
  std::map<uint32_t, std::unique_ptr<ShardSchedule>> schedules_
      ABSL_GUARDED_BY(schedules_mu_);

  int64_t next_purge_ms_ = 0;  // The thread's.
  std::atomic<bool> purging_{false};
  SerialExecutor purger_{"baton-purge"};

  // The tick waits on the monotonic clock: a step of the wall clock must
  // not stretch it.
  absl::Mutex wait_mu_;
  SteadyCondVar wake_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace baton

#endif  // BATON_RECOVERY_RECOVERY_LOOP_H_
