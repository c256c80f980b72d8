#define BOOST_TEST_MODULE common
#include "common/timeline.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

constexpr int64_t kHour = 60 * 60 * 1000;

BOOST_AUTO_TEST_CASE(starts_at_the_wall_clock_and_follows_it) {
  ManualClock clock;
  Timeline timeline(&clock);
  const int64_t start = clock.WallMs();
  BOOST_TEST(timeline.Now() == start);
  clock.Advance(1500);
  BOOST_TEST(timeline.Now() == start + 1500);
  BOOST_TEST(timeline.WallOffsetMs() == 0);
  BOOST_TEST(timeline.steps() == 0u);
}

BOOST_AUTO_TEST_CASE(a_forward_step_moves_nothing_measured_on_it) {
  ManualClock clock;
  Timeline timeline(&clock);
  const int64_t deadline = timeline.Now() + 10 * 60 * 1000;  // 10 minutes.
  clock.Advance(7000);
  clock.StepWall(2 * kHour);
  clock.Advance(20);
  BOOST_TEST(timeline.Now() < deadline);
  BOOST_TEST(deadline - timeline.Now() == 10 * 60 * 1000 - 7020);
  BOOST_TEST(timeline.steps() == 1u);
  BOOST_TEST(timeline.WallOffsetMs() == 2 * kHour);
  // Steady time still runs it out on time.
  clock.Advance(10 * 60 * 1000 - 7020);
  BOOST_TEST(timeline.Now() == deadline);
}

BOOST_AUTO_TEST_CASE(a_backward_step_does_not_hold_time_back) {
  ManualClock clock;
  Timeline timeline(&clock);
  const int64_t retry_at = timeline.Now() + 5000;
  const int64_t before = timeline.Now();
  clock.StepWall(-2 * kHour);
  BOOST_TEST(timeline.Now() == before);  // Never backwards.
  clock.Advance(5000);
  BOOST_TEST(timeline.Now() == retry_at);
  BOOST_TEST(timeline.WallOffsetMs() == -2 * kHour);
  // Steps both ways add up.
  clock.StepWall(3 * kHour);
  clock.Advance(1);
  BOOST_TEST(timeline.Now() == retry_at + 1);
  BOOST_TEST(timeline.WallOffsetMs() == kHour);
  BOOST_TEST(timeline.steps() == 2u);
}

BOOST_AUTO_TEST_CASE(
    slew_is_followed_and_jitter_below_the_tolerance_is_not_a_step) {
  ManualClock clock;
  Timeline timeline(&clock);
  const int64_t start = timeline.Now();
  // NTP slewing the wall clock 0.05% fast over 100 s, read every 10 ms.
  for (int i = 0; i < 10'000; ++i) {
    clock.Advance(10);
    if (i % 200 == 0) clock.StepWall(1);
    timeline.Now();
  }
  BOOST_TEST(timeline.steps() == 0u);
  BOOST_TEST(timeline.Now() == clock.WallMs());
  BOOST_TEST(timeline.Now() - start == 100'000 + 50);
  // A small correction back never moves the timeline backwards.
  const int64_t before = timeline.Now();
  clock.StepWall(-Timeline::kStepToleranceMs);
  BOOST_TEST(timeline.Now() == before);
  BOOST_TEST(timeline.steps() == 0u);
}

BOOST_AUTO_TEST_CASE(a_continued_timeline_keeps_its_offset) {
  ManualClock clock;
  Timeline timeline(&clock, 2 * kHour);
  BOOST_TEST(timeline.Now() == clock.WallMs() - 2 * kHour);
  BOOST_TEST(timeline.WallOffsetMs() == 2 * kHour);
  BOOST_TEST(timeline.steps() == 0u);
  clock.Advance(10);
  BOOST_TEST(timeline.Now() == clock.WallMs() - 2 * kHour);
}

BOOST_AUTO_TEST_CASE(a_suspended_host_counts_as_a_step) {
  // A resumed virtual machine: the wall clock moved, the monotonic one did
  // not, and no timeout may fire for the time nobody ran.
  ManualClock clock;
  Timeline timeline(&clock);
  const int64_t before = timeline.Now();
  clock.StepWall(30 * 60 * 1000);
  BOOST_TEST(timeline.Now() == before);
  BOOST_TEST(timeline.steps() == 1u);
}

}  // namespace
}  // namespace baton
