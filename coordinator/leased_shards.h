#ifndef BATON_COORDINATOR_LEASED_SHARDS_H_
#define BATON_COORDINATOR_LEASED_SHARDS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/cluster_view.h"
#include "coordinator/group_commit.h"
#include "coordinator/lease_keeper.h"
#include "coordinator/shard_fences.h"
#include "coordinator/transaction_manager.h"
#include "recovery/recovery_loop.h"

namespace baton {

// The PostgreSQL mode's wiring (docs/CLUSTER.md): a LeaseKeeper whose
// hooks serve a shard once leased (its unfinished records resumed from the
// store, new xids under the lease's fencing number), stop serving one
// lost, and let one go only after its writes in flight are done. A store
// that failed (the database went away) holds no lease until it writes
// again: every shard is dropped first, so nothing from before is trusted.
struct LeasedShards {
  std::string conninfo;
  std::string node;     // Unique and stable across restarts of this node.
  std::string address;  // Where clients and peers reach it.
  uint32_t shards = 1;  // The cluster's.
  int64_t lease_ms = 5000;
  // All must outlive the keeper.
  ShardFences* fences = nullptr;
  TransactionManager* manager = nullptr;
  RecoveryLoop* recovery = nullptr;
  GroupCommitter* committer = nullptr;
  ClusterView* cluster = nullptr;
  TransactionStore* store = nullptr;
  // Runs once the store writes again after a failure.
  std::function<void()> revived;
};

// Opens the lease table and starts the keeper's rounds.
absl::StatusOr<std::unique_ptr<LeaseKeeper>> StartLeaseKeeper(
    const LeasedShards& leased);

}  // namespace baton

#endif  // BATON_COORDINATOR_LEASED_SHARDS_H_
