#ifndef BATON_COORDINATOR_SHARD_DIRECTORY_H_
#define BATON_COORDINATOR_SHARD_DIRECTORY_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "baton/v1/topology.pb.h"
#include "common/wrong_shard.h"

namespace baton {

// Who owns the shards this process does not host, and where new keyed
// transactions belong. The manager asks it when
// a call names an xid of a shard it does not host: a known owner elsewhere
// means the call is refused with a WrongShard naming it, rather than looked
// for in a store that never held it. ClusterView implements it.
//
// Thread-safe; Elsewhere must not block (it is asked on gRPC threads).
class ShardDirectory {
 public:
  virtual ~ShardDirectory() = default;
  // The refusal for `shard` if another node owns it, or may (a shard no
  // node announced still gets one, without an owner address, once this
  // node is part of a cluster); nullopt if this node stands alone.
  virtual std::optional<v1::WrongShard> Elsewhere(uint32_t shard) const = 0;
  // The shard, cluster-wide, that a new transaction with idempotency key
  // `key` belongs to (KeyShard in common/stable_hash.h); nullopt if this
  // node stands alone, when its own shards decide.
  virtual std::optional<uint32_t> ShardForKey(std::string_view key) const = 0;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_SHARD_DIRECTORY_H_
