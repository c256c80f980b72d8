#ifndef BATON_RECOVERY_SCHEDULE_H_
#define BATON_RECOVERY_SCHEDULE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/recovery_hooks.h"
#include "coordinator/transaction_table.h"

namespace baton {

// One shard's recovery schedule: when each record next needs timed work
// (deadlines, phase-two retries and their backoff, overdue answers, the
// retry window, waits running out), and which records adopted after a
// restart still wait to be resumed. RunDue does the work through the
// shard's table, one record per hold of the shard's lock, so no scan of the
// schedule stalls calls on the shard.
//
// A record is woken at its earliest requested time only; after each visit
// the table asks again for what it needs next.
//
// Thread-safe.
class ShardSchedule : public Wakeups {
 public:
  // Records resumed per RunDue, so a large backlog does not starve new
  // traffic.
  explicit ShardSchedule(size_t resume_per_run);

  void WakeAt(RecordKey record, int64_t when_ms) override;
  void Forget(RecordKey record) override;

  // The record was adopted (TransactionTable::Adopt): resume it in turn.
  void QueueResume(const std::string& xid);

  // Resumes the next records in line, then visits every record due by
  // now_ms.
  void RunDue(TransactionTable* table, int64_t now_ms);

  size_t pending_wakeups() const;
  size_t pending_resumes() const;

 private:
  std::vector<RecordKey> TakeDue(int64_t now_ms);

  const size_t resume_per_run_;
  mutable absl::Mutex mu_;
  // Every live transaction has an entry (its deadline at least), so both
  // are flat: no allocation per entry.
  absl::btree_set<std::pair<int64_t, RecordKey>> by_time_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<RecordKey, int64_t> when_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> to_resume_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_RECOVERY_SCHEDULE_H_
