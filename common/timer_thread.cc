#include "common/timer_thread.h"

#include <pthread.h>

#include <vector>

namespace baton {

TimerThread::TimerThread(std::string name) : name_(std::move(name)) {}

TimerThread::~TimerThread() { Shutdown(); }

TimerThread::Handle TimerThread::Schedule(Clock::time_point when,
                                          std::function<void()> callback) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      Handle handle{when, next_id_++};
      // Only a new earliest time needs the thread awake sooner; a deadline
      // is mostly later than those already waiting, so most calls wake
      // nobody.
      bool earliest = scheduled_.empty() || handle < scheduled_.begin()->first;
      scheduled_.emplace(handle, std::move(callback));
      if (!started_) {
        started_ = true;
        thread_ = std::thread([this] { Run(); });
      } else if (earliest) {
        changed_.Signal();
      }
      return handle;
    }
  }
  callback();
  return {when, UINT64_MAX};
}

bool TimerThread::Cancel(const Handle& handle) {
  absl::MutexLock lock(&mu_);
  return scheduled_.erase(handle) > 0;
}

void TimerThread::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  changed_.SignalAll();
  if (thread_.joinable()) thread_.join();
  // Without a thread (nothing was ever scheduled) there is nothing left;
  // with one, Run drained everything before it returned.
}

void TimerThread::Run() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  mu_.Lock();
  while (true) {
    if (scheduled_.empty()) {
      if (stopping_) break;
      changed_.Wait(&mu_);
      continue;
    }
    auto first = scheduled_.begin();
    if (!stopping_ && Clock::now() < first->first.first) {
      changed_.WaitUntil(&mu_, first->first.first);
      continue;
    }
    std::function<void()> callback = std::move(first->second);
    scheduled_.erase(first);
    mu_.Unlock();
    callback();
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace baton
