#ifndef BATON_COORDINATOR_LEASE_KEEPER_H_
#define BATON_COORDINATOR_LEASE_KEEPER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/steady_cond_var.h"
#include "coordinator/shard_fences.h"
#include "coordinator/shard_leases.h"

namespace baton {

// Keeps this node's share of the shard leases (the PostgreSQL mode:
// docs/CLUSTER.md). Each round it beats its heartbeat and reads the table,
// renews what it holds, drops what was taken over, gives back what it holds
// beyond its share (PlanLeases) and takes free or expired shards up to it.
// The fencing number of every shard it holds is in `fences`, which the
// store sends with each write.
//
// If the database cannot be reached, the leases are let go locally once a
// lease's length has passed since the last renewal began: by then another
// node may hold them, so this one must stop answering for them even though
// it cannot hear so.
//
// RunOnce is for one thread at a time (the keeper's own, once started). The
// hooks run on that thread, never under a lock, in the order the changes
// happened.
class LeaseKeeper {
 public:
  struct Hooks {
    // Leased here with this fencing number (also in `fences` by now): load
    // the shard's unfinished transactions and serve it.
    std::function<void(uint32_t shard, int64_t fencing)> acquired;
    // No longer leased here (already out of `fences`): stop serving it at
    // once and forget what memory holds of it.
    std::function<void(uint32_t shard)> lost;
    // Asked before giving a shard back: stop new work on it and answer
    // true once its writes in flight are done. False: ask again next round.
    std::function<bool(uint32_t shard)> quiesce;
    // Whether this node can write now. While it cannot (its store failed),
    // it holds no lease: every one is let go, and `revive` is asked each
    // round to make it write again, before any is taken.
    std::function<bool()> can_serve;
    std::function<absl::Status()> revive;
  };
  struct Options {
    uint32_t shards = 1;  // The cluster's: 0..shards-1.
    int64_t lease_ms = 5000;
    // Rounds come this often; a third of the lease leaves two tries to
    // renew before it runs out.
    int64_t round_ms = 0;    // 0: lease_ms / 3.
    Clock* clock = nullptr;  // Null: SystemClock().
  };

  // `table` is owned; `fences` must outlive the keeper.
  LeaseKeeper(std::unique_ptr<ShardLeaseTable> table, ShardFences* fences,
              const Options& options, Hooks hooks);
  ~LeaseKeeper();  // Stop().

  // One round now; the status of the database's answer (hooks ran for what
  // changed either way).
  absl::Status RunOnce();

  // Rounds on a thread of its own until Stop; Stop gives back nothing, so
  // the leases run out (a restart of this node takes its own back at once).
  void Start();
  void Stop();

 private:
  absl::Status Renew(std::vector<uint32_t>* lost);
  void Run();

  const std::unique_ptr<ShardLeaseTable> table_;
  ShardFences* const fences_;
  const Options options_;
  Clock* const clock_;
  const Hooks hooks_;
  // When the last successful renewal began (steady ms); -1: never.
  int64_t renewed_at_ms_ = -1;
  bool shards_made_ = false;

  absl::Mutex wait_mu_;
  SteadyCondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(wait_mu_) = false;
  std::thread thread_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_LEASE_KEEPER_H_
