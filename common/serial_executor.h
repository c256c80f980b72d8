#ifndef BATON_COMMON_SERIAL_EXECUTOR_H_
#define BATON_COMMON_SERIAL_EXECUTOR_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace baton {

// Runs posted work on one thread of its own, in the order posted: for work
// that may block (store reads, synced writes) and must not run on a thread
// that may not block, such as gRPC's callback threads or the recovery tick.
//
// Thread-safe. The destructor runs what is queued, then joins.
class SerialExecutor {
 public:
  explicit SerialExecutor(std::string name);
  ~SerialExecutor();

  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  void Post(std::function<void()> work);

  // Returns once everything posted before the call has run.
  void Drain();

 private:
  void Run();

  const std::string name_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;  // A work item is running.
  std::thread thread_;
};

}  // namespace baton

#endif  // BATON_COMMON_SERIAL_EXECUTOR_H_
