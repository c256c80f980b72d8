#ifndef BATON_RECOVERY_RECOVERY_LOOP_H_
#define BATON_RECOVERY_RECOVERY_LOOP_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "coordinator/group_commit.h"
#include "coordinator/store.h"
#include "coordinator/transaction_manager.h"
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
};

// Finishes what the coordinator started: resumes every unfinished
// transaction after a restart, drives deadlines and phase-two retries,
// saves the manager's timeline offset when the wall clock stepped, and
// purges old terminal records. Owns one thread.
class RecoveryLoop {
 public:
  // All pointers must outlive this object.
  RecoveryLoop(const RecoveryOptions& options, TransactionStore* store,
               GroupCommitter* committer, TransactionManager* manager);
  ~RecoveryLoop();

  RecoveryLoop(const RecoveryLoop&) = delete;
  RecoveryLoop& operator=(const RecoveryLoop&) = delete;

  // Hands every unfinished record in the store to the manager. Call once,
  // before serving traffic.
  absl::Status ResumeUnfinished();

  // Starts the periodic thread.
  void Start();

  // Deletes terminal records that finished before cutoff_ms, durably.
  // Returns how many were purged.
  size_t PurgeFinishedBefore(int64_t cutoff_ms);

 private:
  void Run();

  const RecoveryOptions options_;
  TransactionStore* const store_;
  GroupCommitter* const committer_;
  TransactionManager* const manager_;
  TimelineOffsetSaver offset_saver_;  // Used by the thread only.

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace baton

#endif  // BATON_RECOVERY_RECOVERY_LOOP_H_
