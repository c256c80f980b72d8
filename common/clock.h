#ifndef BATON_COMMON_CLOCK_H_
#define BATON_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace baton {

// Where time comes from. Code that reads time takes a Clock* so that tests
// can step each reading by hand.
//
// Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;

  // Milliseconds since the Unix epoch, as the host's clock reads now. It can
  // step either way at any moment: an NTP correction, an operator's `date`,
  // a virtual machine resumed from suspend.
  virtual int64_t WallMs() = 0;

  // Milliseconds since an arbitrary origin. Never decreases and never
  // steps; durations are measured on this one.
  virtual int64_t SteadyMs() = 0;
};

// The process's own clocks (std::chrono's system and steady clocks). Never
// deleted.
Clock* SystemClock();

// A clock that moves only when told: tests step the wall clock without the
// steady one, or the other way round. Thread-safe, so the threads of the
// code under test may read it while the test moves it.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t wall_ms = 1'800'000'000'000,
                       int64_t steady_ms = 0)
      : wall_ms_(wall_ms), steady_ms_(steady_ms) {}

  int64_t WallMs() override { return wall_ms_.load(); }
  int64_t SteadyMs() override { return steady_ms_.load(); }

  // Time passes: both clocks move by `ms`.
  void Advance(int64_t ms) {
    wall_ms_ += ms;
    steady_ms_ += ms;
  }
  // The wall clock jumps by `ms` (either sign); steady time does not move.
  void StepWall(int64_t ms) { wall_ms_ += ms; }

 private:
  std::atomic<int64_t> wall_ms_;
  std::atomic<int64_t> steady_ms_;
};

}  // namespace baton

#endif  // BATON_COMMON_CLOCK_H_
