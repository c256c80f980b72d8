#ifndef BATON_COMMON_STEADY_COND_VAR_H_
#define BATON_COMMON_STEADY_COND_VAR_H_

#include <chrono>
#include <condition_variable>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace baton {

// A condition variable for state guarded by an absl::Mutex, whose timed
// waits run on the monotonic clock. This abseil's CondVar::WaitWithTimeout
// and Mutex::AwaitWithTimeout end at an absolute wall-clock instant, so a
// step of the wall clock stretches or cuts a wait by the step (two hours
// back: two hours asleep). Every interval Baton waits (ticks, backoffs,
// deadlines) must survive such a step.
//
// Thread-safe. Signal and SignalAll may be called with or without the mutex
// held; a wait that began before the call is woken either way.
class SteadyCondVar {
 public:
  using Clock = std::chrono::steady_clock;

  SteadyCondVar() = default;
  SteadyCondVar(const SteadyCondVar&) = delete;
  SteadyCondVar& operator=(const SteadyCondVar&) = delete;

  // Releases `mu`, waits for a signal (or wakes spuriously), then holds
  // `mu` again.
  void Wait(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // As Wait, but returns false once `deadline` has passed without a signal.
  bool WaitUntil(absl::Mutex* mu, Clock::time_point deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Waits until `done()` holds or `deadline` passes, and returns `done()`.
  // `done` runs with `mu` held; annotate it so (a lambda with
  // ABSL_EXCLUSIVE_LOCKS_REQUIRED), as for absl::Condition. The analysis
  // cannot tie `mu` here to the caller's mutex, so it checks the caller
  // and the predicate, not this body.
  template <typename Predicate>
  bool WaitUntil(absl::Mutex* mu, Clock::time_point deadline, Predicate done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    while (!done()) {
      if (!WaitUntil(mu, deadline)) return done();
    }
    return true;
  }

  template <typename Predicate>
  bool WaitFor(absl::Mutex* mu, Clock::duration timeout, Predicate done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return WaitUntil(mu, Clock::now() + timeout, std::move(done));
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace baton

#endif  // BATON_COMMON_STEADY_COND_VAR_H_
