#include "common/log_summary.h"

#include <vector>

namespace baton {

LogSummary::LogSummary(std::chrono::milliseconds period, Clock now_ms)
    : period_ms_(period.count()), now_ms_(std::move(now_ms)) {}

int64_t LogSummary::SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void LogSummary::Log(spdlog::level::level_enum level, std::string_view key,
                     std::string line) {
  int64_t now = now_ms_();
  {
    absl::MutexLock lock(&mu_);
    auto [it, fresh] = entries_.try_emplace(std::string(key));
    Entry& e = it->second;
    if (!fresh && now - e.logged_ms < period_ms_) {
      ++e.suppressed;
      e.level = std::max(e.level, level);
      e.latest = std::move(line);
      return;
    }
    FlushLocked(it->first, &e, now);
    e.logged_ms = now;
  }
  spdlog::log(level, "{}", line);
}

void LogSummary::Flush() {
  int64_t now = now_ms_();
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (now - e.logged_ms < period_ms_) {
      ++it;
    } else if (e.suppressed > 0) {
      FlushLocked(it->first, &e, now);
      ++it;
    } else {
      it = entries_.erase(it);
    }
  }
}

void LogSummary::FlushLocked(const std::string& key, Entry* entry,
                             int64_t now) {
  if (entry->suppressed == 0) return;
  spdlog::log(entry->level,
              "{} more like this in the last {} s ({}); latest: {}",
              entry->suppressed, (now - entry->logged_ms + 999) / 1000, key,
              entry->latest);
  entry->suppressed = 0;
  entry->logged_ms = now;
  entry->latest.clear();
}

}  // namespace baton
