#include "common/list_filter.h"

#include <charconv>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace baton {

bool AddStatusWord(std::string_view word,
                   v1::ListTransactionsRequest* request) {
  static const auto* const names =
      new std::map<std::string, std::vector<v1::GlobalStatus>, std::less<>>{
          {"begun", {v1::GLOBAL_STATUS_BEGUN}},
          {"committing", {v1::GLOBAL_STATUS_COMMITTING}},
          {"committed", {v1::GLOBAL_STATUS_COMMITTED}},
          {"rolling-back", {v1::GLOBAL_STATUS_ROLLING_BACK}},
          {"rolled-back", {v1::GLOBAL_STATUS_ROLLED_BACK}},
          {"commit-stuck", {v1::GLOBAL_STATUS_COMMIT_STUCK}},
          {"rollback-stuck", {v1::GLOBAL_STATUS_ROLLBACK_STUCK}},
          {"needs-attention",
           {v1::GLOBAL_STATUS_COMMIT_STUCK, v1::GLOBAL_STATUS_ROLLBACK_STUCK}},
      };
  auto it = names->find(word);
  if (it == names->end()) return false;
  for (v1::GlobalStatus s : it->second) request->add_statuses(s);
  return true;
}

bool ProtocolWord(std::string_view word, v1::Protocol* protocol) {
  if (word == "2pc") {
    *protocol = v1::PROTOCOL_TWO_PHASE;
  } else if (word == "tcc") {
    *protocol = v1::PROTOCOL_TCC;
  } else if (word == "saga") {
    *protocol = v1::PROTOCOL_SAGA;
  } else {
    return false;
  }
  return true;
}

bool ParseDuration(std::string_view text, int64_t* ms) {
  int64_t value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || value < 0) return false;
  std::string_view unit(p, text.data() + text.size() - p);
  const int64_t scale = unit.empty() || unit == "ms" ? 1
                        : unit == "s"                ? 1000
                        : unit == "m"                ? 60'000
                        : unit == "h"                ? 3'600'000
                        : unit == "d"                ? 86'400'000
                                                     : 0;
  if (scale == 0 || value > INT64_MAX / scale) return false;
  *ms = value * scale;
  return true;
}

}  // namespace baton
