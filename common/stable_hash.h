#ifndef BATON_COMMON_STABLE_HASH_H_
#define BATON_COMMON_STABLE_HASH_H_

#include <cstdint>
#include <string_view>
#include <vector>

namespace baton {

// FNV-1a, 64 bits: the same in every process and on every machine, unlike
// std::hash, so a key lands on the same shard wherever it is hashed.
inline uint64_t StableHash(std::string_view key) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// The shard a new transaction's idempotency key belongs to among `shards`
// (ordered by id, not empty). batond and every client use this one rule
// (topology.proto), so a retried key reaches the shard that remembers it.
inline uint32_t KeyShard(std::string_view key,
                         const std::vector<uint32_t>& shards) {
  return shards[StableHash(key) % shards.size()];
}

}  // namespace baton

#endif  // BATON_COMMON_STABLE_HASH_H_
