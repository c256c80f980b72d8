#ifndef BATON_COMMON_TIMER_THREAD_H_
#define BATON_COMMON_TIMER_THREAD_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/steady_cond_var.h"

namespace baton {

// Runs each scheduled callback once its time on the monotonic clock has
// come, on one thread of its own (started by the first Schedule), in time
// order: deadlines and backoffs for work that holds no thread while it
// waits. Callbacks must not block, since they delay the ones behind them.
//
// Thread-safe. Shutdown (and the destructor) runs every callback still
// scheduled at once, so each runs exactly once unless cancelled; a callback
// scheduled after Shutdown runs on the caller's thread before Schedule
// returns.
class TimerThread {
 public:
  using Clock = std::chrono::steady_clock;
  // Names one scheduled callback, for Cancel.
  using Handle = std::pair<Clock::time_point, uint64_t>;

  explicit TimerThread(std::string name);
  ~TimerThread();

  TimerThread(const TimerThread&) = delete;
  TimerThread& operator=(const TimerThread&) = delete;

  Handle Schedule(Clock::time_point when, std::function<void()> callback);
  // True if the callback had not started and now never will.
  bool Cancel(const Handle& handle);
  // Runs what is scheduled and joins the thread.
  void Shutdown();

 private:
  void Run();

  const std::string name_;
  absl::Mutex mu_;
  SteadyCondVar changed_;
  std::map<Handle, std::function<void()>> scheduled_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace baton

#endif  // BATON_COMMON_TIMER_THREAD_H_
