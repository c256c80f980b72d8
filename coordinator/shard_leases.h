#ifndef BATON_COORDINATOR_SHARD_LEASES_H_
#define BATON_COORDINATOR_SHARD_LEASES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocols/lease_plan.h"

namespace baton {

// The shard lease table of the PostgreSQL mode (docs/CLUSTER.md), on a
// connection of its own: one row per shard with its owner, a fencing number
// raised on every change of owner, and an expiry; and one heartbeat row per
// node. Every time is the database's (now()), never a node's, so nodes
// with skewed clocks still agree on who holds what. The tables are made by
// OpenPostgresStore.
//
// Not thread-safe: one lease keeper drives it. Errors are those of
// baton/postgres.h (UNAVAILABLE when the database is unreachable); a lock
// held by a write in flight makes a call wait at most lock_timeout_ms, then
// ABORTED.
class ShardLeaseTable {
 public:
  struct Options {
    std::string conninfo;
    std::string node;     // This node's name, unique in the cluster.
    std::string address;  // Where clients and peers reach it.
    int64_t lease_ms = 5000;
    int64_t lock_timeout_ms = 1000;
  };
  struct Reading {
    std::vector<ShardLease> leases;  // By shard.
    std::vector<std::string> live;   // Nodes whose heartbeat holds.
  };

  static absl::StatusOr<std::unique_ptr<ShardLeaseTable>> Open(
      const Options& options);
  ~ShardLeaseTable();

  const std::string& node() const { return options_.node; }
  const std::string& address() const { return options_.address; }

  // Makes rows for shards 0..count-1 that are missing (free, fencing 0).
  absl::Status EnsureShards(uint32_t count);

  // Renews this node's heartbeat (with its address, for operators reading
  // the table), then reads every lease and live node.
  absl::StatusOr<Reading> Read();

  // Takes `shard` if it is still as read (`seen_fencing`) and free,
  // expired or this node's own: raises its fencing number and returns the
  // new one. nullopt if another node got there first.
  absl::StatusOr<std::optional<int64_t>> Take(uint32_t shard,
                                              int64_t seen_fencing);

  // Extends the leases this node holds with these numbers; returns the
  // shards still its own. One missing from the answer was taken over.
  absl::StatusOr<std::vector<uint32_t>> Renew(
      const std::map<uint32_t, int64_t>& held);

  // Frees a shard held with `fencing`, for another node to take at once.
  absl::Status GiveBack(uint32_t shard, int64_t fencing);

 private:
  struct Connection;
  explicit ShardLeaseTable(const Options& options,
                           std::unique_ptr<Connection> conn);

  const Options options_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_SHARD_LEASES_H_
