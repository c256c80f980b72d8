#include "common/steady_cond_var.h"

#include <boost/test/unit_test.hpp>
#include <thread>

namespace baton {
namespace {

using namespace std::chrono_literals;

struct Flag {
  absl::Mutex mu;
  SteadyCondVar changed;
  bool set ABSL_GUARDED_BY(mu) = false;
};

BOOST_AUTO_TEST_CASE(a_wait_whose_condition_holds_returns_at_once) {
  Flag flag;
  absl::MutexLock lock(&flag.mu);
  flag.set = true;
  // Far past any test's deadline: a wait here would hang the test.
  BOOST_TEST(flag.changed.WaitFor(
      &flag.mu, 24h,
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flag.mu) { return flag.set; }));
}

BOOST_AUTO_TEST_CASE(a_signal_from_another_thread_ends_the_wait) {
  Flag flag;
  std::thread setter([&] {
    absl::MutexLock lock(&flag.mu);
    flag.set = true;
    flag.changed.SignalAll();
  });
  bool woke;
  {
    absl::MutexLock lock(&flag.mu);
    woke = flag.changed.WaitFor(
        &flag.mu, 24h,
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flag.mu) { return flag.set; });
  }
  setter.join();
  BOOST_TEST(woke);
}

BOOST_AUTO_TEST_CASE(a_passed_deadline_reports_the_condition_unmet) {
  Flag flag;
  absl::MutexLock lock(&flag.mu);
  const auto start = SteadyCondVar::Clock::now();
  BOOST_TEST(!flag.changed.WaitUntil(
      &flag.mu, start + 20ms,
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flag.mu) { return flag.set; }));
  BOOST_TEST((SteadyCondVar::Clock::now() - start >= 20ms));
}

BOOST_AUTO_TEST_CASE(the_mutex_is_held_again_after_every_wait) {
  Flag flag;
  absl::MutexLock lock(&flag.mu);
  flag.changed.WaitUntil(&flag.mu, SteadyCondVar::Clock::now() + 1ms);
  flag.mu.AssertHeld();
  flag.changed.WaitFor(&flag.mu, 1ms, [] { return false; });
  flag.mu.AssertHeld();
}

}  // namespace
}  // namespace baton
