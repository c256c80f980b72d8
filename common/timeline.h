#ifndef BATON_COMMON_TIMELINE_H_
#define BATON_COMMON_TIMELINE_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace baton {

// The coordinator's time: every instant it records (begun, deadlines, next
// retries, decided) is a reading of this, and every timed decision compares
// such an instant with Now().
//
// It reads as Unix milliseconds and follows the wall clock, except when the
// wall clock steps. A reading whose wall-clock advance differs from the
// steady clock's by more than a slew could explain advances by the steady
// time instead, and the difference goes into the offset. So the time
// between two readings is a steady duration (up to NTP's slew), readings
// never decrease, and no step of the host's clock moves a deadline or a
// retry, whichever way it goes.
//
// The offset is how far the wall clock has moved from the timeline: the sum
// of the steps seen, plus any small moves back it absorbed. Add it to show an
// instant as the wall clock reads now; subtract it from an instant a person
// gave.
//
// batond keeps the offset in its store and continues the timeline after a
// restart (recovery/timeline_offset.h); docs/RECOVERY.md, "Time", has the
// whole rule.
//
// Thread-safe.
class Timeline {
 public:
  // A wall-clock move that far from the steady clock's (plus 1% of the
  // latter, far beyond NTP's 0.05% slew) between two readings is a step.
  static constexpr int64_t kStepToleranceMs = 250;

  // Starts at `clock`'s wall time minus `offset_ms`: 0 for a new timeline,
  // or the offset an earlier process's timeline had reached, to continue
  // it. `clock` must outlive this object.
  explicit Timeline(Clock* clock, int64_t offset_ms = 0);

  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  int64_t Now() ABSL_LOCKS_EXCLUDED(mu_);

  // The wall clock minus the timeline, as of a reading taken now.
  int64_t WallOffsetMs() ABSL_LOCKS_EXCLUDED(mu_);

  // Steps of the wall clock seen so far.
  uint64_t steps() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Clock* const clock_;
  absl::Mutex mu_;
  int64_t now_ ABSL_GUARDED_BY(mu_);
  int64_t last_wall_ ABSL_GUARDED_BY(mu_);
  int64_t last_steady_ ABSL_GUARDED_BY(mu_);
  int64_t offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
};

// The process's timeline over SystemClock(). Never deleted.
Timeline* SystemTimeline();

}  // namespace baton

#endif  // BATON_COMMON_TIMELINE_H_
