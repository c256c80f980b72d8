#include "coordinator/recent_rates.h"

#include <algorithm>

namespace baton {

RecentRates::RecentRates(std::function<Totals()> read)
    : read_(std::move(read)) {}

RecentRates::~RecentRates() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (sampler_.joinable()) sampler_.join();
}

void RecentRates::Start(Clock* clock) {
  sampler_ = std::thread([this, clock] {
    while (true) {
      Sample(clock->WallMs());
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1));
      if (stopping_) return;
    }
  });
}

void RecentRates::Sample(int64_t now_unix_ms) {
  Totals now = read_();
  absl::MutexLock lock(&mu_);
  if (started_) {
    v1::SecondCounts second;
    second.set_end_unix_ms(now_unix_ms);
    second.set_begun(now.begun - last_.begun);
    second.set_committed(now.committed - last_.committed);
    second.set_rolled_back(now.rolled_back - last_.rolled_back);
    seconds_.push_back(std::move(second));
    if (seconds_.size() > kSeconds) seconds_.pop_front();
  }
  started_ = true;
  last_ = now;
}

std::vector<v1::SecondCounts> RecentRates::Recent(size_t count) const {
  absl::MutexLock lock(&mu_);
  count = std::min(count, seconds_.size());
  return {seconds_.end() - static_cast<std::ptrdiff_t>(count), seconds_.end()};
}

std::vector<v1::SecondCounts> SumSeconds(
    const std::vector<std::vector<v1::SecondCounts>>& by_node) {
  std::map<int64_t, v1::SecondCounts> by_second;
  for (const std::vector<v1::SecondCounts>& node : by_node) {
    for (const v1::SecondCounts& s : node) {
      const int64_t second = s.end_unix_ms() / 1000;
      v1::SecondCounts& sum = by_second[second];
      sum.set_end_unix_ms(second * 1000);
      sum.set_begun(sum.begun() + s.begun());
      sum.set_committed(sum.committed() + s.committed());
      sum.set_rolled_back(sum.rolled_back() + s.rolled_back());
    }
  }
  std::vector<v1::SecondCounts> out;
  out.reserve(by_second.size());
  for (auto& [second, sum] : by_second) out.push_back(std::move(sum));
  return out;
}

}  // namespace baton
