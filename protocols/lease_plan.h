#ifndef BATON_PROTOCOLS_LEASE_PLAN_H_
#define BATON_PROTOCOLS_LEASE_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

namespace baton {

// Which shard leases a node should take and give back, from one reading of
// the lease table (the PostgreSQL mode: docs/CLUSTER.md).
//
// Shares are deterministic, so every node computes the same ones from the
// same reading: with S shards and L live nodes, each live node's share is
// S / L, and the first S % L of them in name order get one more. A node
// takes free or expired shards while it holds fewer than its share, and
// gives back what it holds beyond it, so a cluster rebalances when a node
// joins, leaves or returns. Whether a lease has expired is the database's
// call (its clock), made when the table was read.

struct ShardLease {
  uint32_t shard = 0;
  std::string owner;  // Empty: nobody holds it.
  int64_t fencing = 0;
  bool expired = false;  // Past its expiry by the database's clock.
};

struct LeasePlan {
  std::vector<uint32_t> take;  // Free or expired, lowest first.
  // Held here beyond the share, highest first: give back once in-flight
  // writes are done.
  std::vector<uint32_t> give_back;
  uint32_t share = 0;
};

// `live` are the nodes whose heartbeats have not expired; `self` counts as
// live whether or not it is listed. Shards held by `self` whose lease
// expired still count as held: renewing them is not a takeover.
LeasePlan PlanLeases(const std::string& self,
                     const std::vector<std::string>& live,
                     const std::vector<ShardLease>& leases);

}  // namespace baton

#endif  // BATON_PROTOCOLS_LEASE_PLAN_H_
