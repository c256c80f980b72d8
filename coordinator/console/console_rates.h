#ifndef BATON_COORDINATOR_CONSOLE_CONSOLE_RATES_H_
#define BATON_COORDINATOR_CONSOLE_CONSOLE_RATES_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace baton {

// Transactions begun, committed and rolled back per second over the last
// 15 minutes, for the console's chart: kept in memory, from counters read
// once a second. Thread-safe.
class ConsoleRates {
 public:
  struct Totals {
    uint64_t begun = 0, committed = 0, rolled_back = 0;
  };
  struct Second {
    int64_t unix_ms = 0;  // When the second ended.
    Totals during;
  };
  static constexpr size_t kSeconds = 15 * 60;

  // `read` returns the counters' totals since the process started.
  explicit ConsoleRates(std::function<Totals()> read);

  // Reads the counters and records what changed since the last Sample.
  // batond calls it once a second; the first call only sets the baseline.
  void Sample(int64_t now_unix_ms);
  // Oldest first, at most kSeconds.
  std::vector<Second> Recent() const;

 private:
  const std::function<Totals()> read_;
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  Totals last_ ABSL_GUARDED_BY(mu_);
  std::deque<Second> seconds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_COORDINATOR_CONSOLE_CONSOLE_RATES_H_
