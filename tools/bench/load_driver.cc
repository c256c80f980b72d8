#include "tools/bench/load_driver.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace baton::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t MicrosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() -
                                                               start)
      .count();
}

// Shared by every in-flight operation of one run.
class Run {
 public:
  Run(const LoadOptions& options, const Operation& operation)
      : options_(options),
        operation_(operation),
        start_(Clock::now()),
        end_(start_ + options.duration) {}

  // Claims the right to start one more operation.
  bool Claim() {
    if (options_.operations > 0) return started_++ < options_.operations;
    return Clock::now() < end_;
  }

  void Start(Clock::time_point scheduled, std::function<void()> then) {
    ++in_flight_;
    operation_(
        [this, scheduled, then = std::move(then)](const grpc::Status& s) {
          Record(s, MicrosSince(scheduled));
          if (then) then();
          Finish();
        });
  }

  // Closed loop: one chain of operations per slot.
  void RunSlot() {
    if (!Claim()) return;
    Start(Clock::now(), [this] { RunSlot(); });
  }

  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return in_flight_.load() == 0; });
  }

  LoadResult Result() {
    std::lock_guard<std::mutex> lock(mu_);
    result_.seconds = MicrosSince(start_) / 1e6;
    std::sort(result_.latencies_us.begin(), result_.latencies_us.end());
    return result_;
  }

  Clock::time_point start() const { return start_; }

 private:
  void Record(const grpc::Status& s, int64_t micros) {
    std::lock_guard<std::mutex> lock(mu_);
    ++result_.completed;
    if (s.ok()) {
      result_.latencies_us.push_back(micros);
    } else if (result_.errors++ == 0) {
      result_.first_error = s.error_message();
    }
  }

  void Finish() {
    if (--in_flight_ == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.notify_all();
    }
  }

  const LoadOptions& options_;
  const Operation& operation_;
  const Clock::time_point start_, end_;
  std::atomic<uint64_t> started_{0};
  std::atomic<int64_t> in_flight_{0};
  std::mutex mu_;
  std::condition_variable idle_;
  LoadResult result_;
};

void RunOpenLoop(const LoadOptions& options, Run* run) {
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / options.rate));
  Clock::time_point next = run->start();
  while (run->Claim()) {
    std::this_thread::sleep_until(next);  // The schedule, not a wait on work.
    run->Start(next, nullptr);
    next += interval;
  }
}

}  // namespace

LoadResult RunLoad(const LoadOptions& options, const Operation& operation) {
  Run run(options, operation);
  if (options.rate > 0) {
    RunOpenLoop(options, &run);
  } else {
    for (int i = 0; i < options.concurrency; ++i) run.RunSlot();
  }
  // Slots stop claiming at the end; wait for the last answers.
  run.WaitIdle();
  return run.Result();
}

}  // namespace baton::bench
