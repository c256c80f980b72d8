#include "common/clock.h"

#include <chrono>

namespace baton {

namespace {

template <typename C>
int64_t MillisecondsOf() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             C::now().time_since_epoch())
      .count();
}

class RealClock : public Clock {
 public:
  int64_t WallMs() override {
    return MillisecondsOf<std::chrono::system_clock>();
  }
  int64_t SteadyMs() override {
    return MillisecondsOf<std::chrono::steady_clock>();
  }
};

}  // namespace

Clock* SystemClock() {
  static RealClock* clock = new RealClock;
  return clock;
}

}  // namespace baton
