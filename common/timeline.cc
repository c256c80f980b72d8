#include "common/timeline.h"

#include <algorithm>
#include <cstdlib>

#include "spdlog/spdlog.h"

namespace baton {

Timeline::Timeline(Clock* clock, int64_t offset_ms)
    : clock_(clock),
      last_wall_(clock->WallMs()),
      last_steady_(clock->SteadyMs()),
      offset_(offset_ms) {
  now_ = last_wall_ - offset_ms;
}

int64_t Timeline::Now() {
  int64_t step = 0;
  int64_t now;
  int64_t offset;
  {
    absl::MutexLock lock(&mu_);
    // Read under the lock, so readings are taken in the order they apply.
    const int64_t wall = clock_->WallMs();
    const int64_t steady = clock_->SteadyMs();
    const int64_t steady_advance = steady - last_steady_;
    const int64_t wall_advance = wall - last_wall_;
    const int64_t tolerance = kStepToleranceMs + steady_advance / 100;
    if (std::abs(wall_advance - steady_advance) > tolerance) {
      step = wall_advance - steady_advance;
      ++steps_;
      now_ += steady_advance;
    } else {
      now_ += std::max<int64_t>(0, wall_advance);
    }
    last_wall_ = wall;
    last_steady_ = steady;
    offset_ = wall - now_;
    now = now_;
    offset = offset_;
  }
  if (step != 0) {
    spdlog::warn(
        "the wall clock stepped by {:+.3f} s; deadlines and retries are "
        "measured on the monotonic clock and did not move, while instants "
        "shown on the wall clock move with it (offset now {:+.3f} s)",
        step / 1000.0, offset / 1000.0);
  }
  return now;
}

int64_t Timeline::WallOffsetMs() {
  Now();
  absl::MutexLock lock(&mu_);
  return offset_;
}

uint64_t Timeline::steps() {
  Now();
  absl::MutexLock lock(&mu_);
  return steps_;
}

Timeline* SystemTimeline() {
  static Timeline* timeline = new Timeline(SystemClock());
  return timeline;
}

}  // namespace baton
