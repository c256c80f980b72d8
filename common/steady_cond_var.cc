#include "common/steady_cond_var.h"

namespace baton {
namespace {

// std::condition_variable_any releases and retakes the caller's lock
// through lock()/unlock(); the analysis cannot follow it through the
// standard library, so the adapter is where it stops looking.
class HeldMutex {
 public:
  explicit HeldMutex(absl::Mutex* mu) : mu_(mu) {}
  void lock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_->Lock(); }
  void unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_->Unlock(); }

 private:
  absl::Mutex* mu_;
};

}  // namespace

void SteadyCondVar::Wait(absl::Mutex* mu) {
  HeldMutex held(mu);
  cv_.wait(held);
}

bool SteadyCondVar::WaitUntil(absl::Mutex* mu, Clock::time_point deadline) {
  HeldMutex held(mu);
  return cv_.wait_until(held, deadline) == std::cv_status::no_timeout;
}

}  // namespace baton
