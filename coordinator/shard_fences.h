#ifndef BATON_COORDINATOR_SHARD_FENCES_H_
#define BATON_COORDINATOR_SHARD_FENCES_H_

#include <cstdint>
#include <map>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace baton {

// The fencing number this node holds for each shard it has leased (the
// PostgreSQL mode: docs/CLUSTER.md). The lease keeper sets and drops them;
// the store sends them with every write, and the database refuses a write
// whose number is no longer the shard's. Thread-safe.
class ShardFences {
 public:
  void Set(uint32_t shard, int64_t fencing) {
    absl::MutexLock lock(&mu_);
    held_[shard] = fencing;
  }
  void Drop(uint32_t shard) {
    absl::MutexLock lock(&mu_);
    held_.erase(shard);
  }
  // nullopt if the shard is not leased here.
  std::optional<int64_t> Get(uint32_t shard) const {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(shard);
    if (it == held_.end()) return std::nullopt;
    return it->second;
  }
  std::map<uint32_t, int64_t> All() const {
    absl::MutexLock lock(&mu_);
    return held_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<uint32_t, int64_t> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_COORDINATOR_SHARD_FENCES_H_
