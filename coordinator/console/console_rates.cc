#include "coordinator/console/console_rates.h"

namespace baton {

ConsoleRates::ConsoleRates(std::function<Totals()> read)
    : read_(std::move(read)) {}

void ConsoleRates::Sample(int64_t now_unix_ms) {
  Totals now = read_();
  absl::MutexLock lock(&mu_);
  if (started_) {
    seconds_.push_back(
        {now_unix_ms,
         {now.begun - last_.begun, now.committed - last_.committed,
          now.rolled_back - last_.rolled_back}});
    if (seconds_.size() > kSeconds) seconds_.pop_front();
  }
  started_ = true;
  last_ = now;
}

std::vector<ConsoleRates::Second> ConsoleRates::Recent() const {
  absl::MutexLock lock(&mu_);
  return {seconds_.begin(), seconds_.end()};
}

}  // namespace baton
