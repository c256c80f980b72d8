#ifndef BATON_PARTICIPANT_SDK_INTERNAL_WORKER_POOL_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace baton::internal {

// A fixed set of threads running posted tasks in FIFO order. The destructor
// drops tasks not yet started and joins the threads.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Post(std::function<void()> task);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;  // Guarded by mu_.
  bool stopping_ = false;                    // Guarded by mu_.
  std::vector<std::thread> threads_;
};

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_WORKER_POOL_H_
