#ifndef BATON_PARTICIPANT_SDK_INTERNAL_WORKER_POOL_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace baton::internal {

// A fixed set of threads running posted tasks in FIFO order.
//
// Thread-safe. The destructor drops tasks not yet started and joins the
// threads.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Post(std::function<void()> task);

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_WORKER_POOL_H_
