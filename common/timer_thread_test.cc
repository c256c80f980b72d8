#include "common/timer_thread.h"

#include <boost/test/unit_test.hpp>
#include <vector>

#include "common/steady_cond_var.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using Clock = TimerThread::Clock;

// What the callbacks did, in order.
struct Record {
  absl::Mutex mu;
  SteadyCondVar changed;
  std::vector<int> ran ABSL_GUARDED_BY(mu);

  std::function<void()> Add(int n) {
    return [this, n] {
      absl::MutexLock lock(&mu);
      ran.push_back(n);
      changed.SignalAll();
    };
  }
  bool WaitFor(size_t count) {
    absl::MutexLock lock(&mu);
    return changed.WaitFor(&mu, 10s, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return ran.size() >= count;
    });
  }
  std::vector<int> Ran() {
    absl::MutexLock lock(&mu);
    return ran;
  }
};

BOOST_AUTO_TEST_CASE(callbacks_run_in_time_order_not_schedule_order) {
  Record record;
  TimerThread timer("test-timer");
  Clock::time_point now = Clock::now();
  timer.Schedule(now + 30ms, record.Add(3));
  timer.Schedule(now + 10ms, record.Add(1));
  timer.Schedule(now + 20ms, record.Add(2));
  BOOST_REQUIRE(record.WaitFor(3));
  BOOST_TEST(record.Ran() == (std::vector<int>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(a_cancelled_callback_never_runs) {
  Record record;
  TimerThread timer("test-timer");
  Clock::time_point now = Clock::now();
  TimerThread::Handle cancelled = timer.Schedule(now + 10ms, record.Add(1));
  BOOST_TEST(timer.Cancel(cancelled));
  timer.Schedule(now + 20ms, record.Add(2));
  BOOST_REQUIRE(record.WaitFor(1));
  BOOST_TEST(record.Ran() == (std::vector<int>{2}));
  BOOST_TEST(!timer.Cancel(cancelled));
}

BOOST_AUTO_TEST_CASE(shutdown_runs_what_is_still_scheduled_at_once) {
  Record record;
  TimerThread timer("test-timer");
  Clock::time_point start = Clock::now();
  // An hour away: only Shutdown can run them within the test.
  timer.Schedule(start + 1h, record.Add(2));
  timer.Schedule(start + 30min, record.Add(1));
  timer.Shutdown();
  BOOST_TEST(record.Ran() == (std::vector<int>{1, 2}));
  BOOST_TEST((Clock::now() - start < 30min));
  // Too late for the thread: it runs here, before Schedule returns.
  timer.Schedule(start + 1h, record.Add(3));
  BOOST_TEST(record.Ran() == (std::vector<int>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(an_earlier_callback_wakes_a_thread_waiting_for_a_later) {
  Record record;
  TimerThread timer("test-timer");
  timer.Schedule(Clock::now() + 1h, record.Add(2));
  timer.Schedule(Clock::now() + 1ms, record.Add(1));
  BOOST_REQUIRE(record.WaitFor(1));
  BOOST_TEST(record.Ran() == (std::vector<int>{1}));
}

}  // namespace
}  // namespace baton
