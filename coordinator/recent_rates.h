#ifndef BATON_COORDINATOR_RECENT_RATES_H_
#define BATON_COORDINATOR_RECENT_RATES_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/admin_service.pb.h"
#include "common/clock.h"

namespace baton {

// Transactions begun, committed and rolled back per second over the last
// 15 minutes, for GetStats and the console's chart: kept in memory, from
// counters read once a second. Thread-safe.
class RecentRates {
 public:
  struct Totals {
    uint64_t begun = 0, committed = 0, rolled_back = 0;
  };
  static constexpr size_t kSeconds = 15 * 60;

  // `read` returns the counters' totals since the process started.
  explicit RecentRates(std::function<Totals()> read);
  // Stops the sampler, if started.
  ~RecentRates();

  RecentRates(const RecentRates&) = delete;
  RecentRates& operator=(const RecentRates&) = delete;

  // Samples once a second by `clock`'s wall time, which must outlive this,
  // until destroyed.
  void Start(Clock* clock);

  // Reads the counters and records what changed since the last Sample.
  // The first call only sets the baseline.
  void Sample(int64_t now_unix_ms);
  // The last `count` seconds (at most kSeconds), oldest first.
  std::vector<v1::SecondCounts> Recent(size_t count) const;

 private:
  const std::function<Totals()> read_;
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Totals last_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::SecondCounts> seconds_ ABSL_GUARDED_BY(mu_);
  std::thread sampler_;
};

// Several nodes' seconds as the cluster's: the counts of seconds that end
// within the same whole second of wall time add up. Oldest first.
std::vector<v1::SecondCounts> SumSeconds(
    const std::vector<std::vector<v1::SecondCounts>>& by_node);

}  // namespace baton

#endif  // BATON_COORDINATOR_RECENT_RATES_H_
