#ifndef BATON_COMMON_LOG_SUMMARY_H_
#define BATON_COMMON_LOG_SUMMARY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace baton {

// Keeps a condition that repeats per transaction (100,000 transactions
// waiting for one missing participant, say) from flooding the log. Lines
// share a key (for instance "waits for 'ghost'"); the first line of a key
// in each period is logged as it comes, the others are only counted, and
// Flush logs one summary per key with its count and the latest line.
//
// Thread-safe. Time comes from `now_ms` (steady, in milliseconds), so tests
// step it by hand.
class LogSummary {
 public:
  using Clock = std::function<int64_t()>;

  explicit LogSummary(
      std::chrono::milliseconds period = std::chrono::seconds(10),
      Clock now_ms = SteadyNowMs);

  LogSummary(const LogSummary&) = delete;
  LogSummary& operator=(const LogSummary&) = delete;

  // Logs `line` at `level`, or counts it if `key` was logged less than a
  // period ago.
  void Log(spdlog::level::level_enum level, std::string_view key,
           std::string line);

  // Logs a summary for each key whose period is over and that counted
  // lines meanwhile, and forgets keys that went quiet. Call it regularly
  // (the recovery tick does).
  void Flush();

  static int64_t SteadyNowMs();

 private:
  struct Entry {
    int64_t logged_ms = 0;    // When a line or summary of it was last logged.
    uint64_t suppressed = 0;  // Counted since.
    spdlog::level::level_enum level = spdlog::level::info;
    std::string latest;
  };

  void FlushLocked(const std::string& key, Entry* entry, int64_t now);

  const int64_t period_ms_;
  const Clock now_ms_;
  absl::Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_COMMON_LOG_SUMMARY_H_
