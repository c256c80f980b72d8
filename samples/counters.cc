#include "samples/counters.h"

#include "fmt/format.h"

namespace baton::samples {

int64_t ReadCounter(leveldb::DB* db, const std::string& key) {
  std::string value;
  if (!db->Get(leveldb::ReadOptions(), key, &value).ok()) return 0;
  return std::stoll(value);
}

absl::StatusOr<int64_t> ReadCounter(LocalTransaction& local,
                                    const std::string& key) {
  std::string value;
  leveldb::Status s = LevelDbBarrier::Get(local, key, &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return absl::UnavailableError(s.ToString());
  return std::stoll(value);
}

absl::Status AddToCounters(
    LocalTransaction& local, const std::string& key,
    std::initializer_list<std::pair<const char*, int64_t>> deltas) {
  for (const auto& [counter, delta] : deltas) {
    std::string k = fmt::format("{}/{}", counter, key);
    absl::StatusOr<int64_t> count = ReadCounter(local, k);
    if (!count.ok()) return count.status();
    LevelDbBarrier::Batch(local)->Put(k, std::to_string(*count + delta));
  }
  return absl::OkStatus();
}

}  // namespace baton::samples
