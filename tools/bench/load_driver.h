#ifndef BATON_TOOLS_BENCH_LOAD_DRIVER_H_
#define BATON_TOOLS_BENCH_LOAD_DRIVER_H_

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace baton::bench {

struct LoadOptions {
  // Closed loop: this many operations in flight at all times.
  int concurrency = 16;
  // Stop after this long, or after `operations` if that is non-zero.
  std::chrono::milliseconds duration{10'000};
  uint64_t operations = 0;
  // Open loop when > 0: start operations at this rate per second whatever
  // the latency, and measure each from its scheduled start, so queueing
  // shows in the latency (no coordinated omission).
  double rate = 0;
};

struct LoadResult {
  uint64_t completed = 0;  // Including errors.
  uint64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  std::vector<int64_t> latencies_us;  // Sorted, successful operations only.
};

// Starts one asynchronous operation; it calls `done` exactly once, from any
// thread, when it finishes.
using Operation =
    std::function<void(std::function<void(const grpc::Status&)> done)>;

// Runs `operation` under the given load and returns what happened.
LoadResult RunLoad(const LoadOptions& options, const Operation& operation);

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_LOAD_DRIVER_H_
