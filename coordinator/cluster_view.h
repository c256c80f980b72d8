#ifndef BATON_COORDINATOR_CLUSTER_VIEW_H_
#define BATON_COORDINATOR_CLUSTER_VIEW_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/topology.grpc.pb.h"
#include "common/clock.h"
#include "common/steady_cond_var.h"
#include "coordinator/shard_directory.h"

namespace baton {

// The ordinal ending a StatefulSet pod's name ("baton-2" is 2); nullopt if
// it does not end in "-N".
std::optional<uint32_t> PodOrdinal(std::string_view pod_name);

// What a node says of itself: asked at every topology call, so cheap.
struct SelfReport {
  v1::NodeHealth health = v1::NODE_HEALTH_NOT_SERVING;
  // Unfinished transactions per hosted shard, by shard id.
  std::map<uint32_t, uint64_t> unfinished;
  std::set<uint32_t> draining;  // Hosted shards that are draining.
  // The shards served now, where they come and go (the PostgreSQL mode's
  // leases); unset: ClusterOptions::shards.
  std::optional<std::vector<uint32_t>> serving;
};

struct ClusterOptions {
  uint32_t node_id = 0;
  std::vector<uint32_t> shards;  // Hosted by this node.
  // Other nodes' addresses ("host:port"). Nodes also learn of each other
  // from their topology calls (each names its caller), so a node started
  // later needs only the earlier ones here. A name that resolves to many
  // addresses (a headless Service) is looked up again at every poll, and
  // each address it gives is asked once who it is.
  std::vector<std::string> peers;
  // The cluster's shards are 0..cluster_shards-1, whether or not every
  // node has been heard from yet; 0: the shards heard of so far. Decides
  // which shard an idempotency key belongs to (ShardForKey).
  uint32_t cluster_shards = 0;
  int64_t poll_interval_ms = 1000;
  int64_t call_timeout_ms = 500;
  Clock* clock = nullptr;  // Null: SystemClock().
  // For the calls to peers; null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// This node's view of the cluster: itself, and every peer it polls or was
// polled by. A poller thread asks each known peer for its own part of the
// topology (GetTopology with self_only) every poll interval; a peer that
// does not answer is UNREACHABLE and its shards DOWN until it answers
// again. The version grows whenever an owner, address, health or shard
// state changes.
//
// Thread-safe. Lock order: this view's lock is taken last; `self` runs
// without it.
class ClusterView : public ShardDirectory {
 public:
  ClusterView(ClusterOptions options, std::function<SelfReport()> self);
  ~ClusterView() override;

  ClusterView(const ClusterView&) = delete;
  ClusterView& operator=(const ClusterView&) = delete;

  // Where others reach this node; known once the server has bound its port,
  // which is before Start.
  void SetSelfAddress(const std::string& address);
  // Starts polling peers.
  void Start();
  void Stop();

  // The answer to GetTopology. `caller` is the calling node's own part, if
  // the caller is a node: it is a peer from now on.
  v1::Topology Describe(bool self_only, const v1::Topology* caller);

  // This node's shards changed (a lease taken or lost): a new version.
  void SelfChanged();

  std::optional<v1::WrongShard> Elsewhere(uint32_t shard) const override;
  std::optional<uint32_t> ShardForKey(std::string_view key) const override;

 private:
  struct Peer {
    v1::TopologyNode node;
    std::vector<v1::TopologyShard> shards;
    int64_t last_heard_ms = 0;  // Steady clock.
  };

  v1::Topology SelfPart();
  void Run();
  void PollOnce();
  // Adds the addresses the configured names resolve to, when they resolve
  // to more than one. Blocks on the resolver.
  void DiscoverByName();
  // Records what a peer said of itself (from a poll or its own call).
  void HeardLocked(const v1::Topology& part, const std::string& dialed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnreachableLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddAddressLocked(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bumps the version if what it covers changed.
  void UpdateVersionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebuildKeyShardsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool clustered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !stubs_.empty() || !peers_.empty();
  }

  const ClusterOptions options_;
  Clock* const clock_;
  const std::function<SelfReport()> self_;

  mutable absl::Mutex mu_;
  std::string self_address_ ABSL_GUARDED_BY(mu_);
  // Every address polled, configured or learned.
  std::map<std::string, std::unique_ptr<v1::TopologyService::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, Peer> peers_ ABSL_GUARDED_BY(mu_);  // By node id.
  // Addresses found by DiscoverByName: polled until they answer once (the
  // node then has a stub under its own address), then settled and not
  // polled again.
  std::set<std::string> discovered_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> settled_ ABSL_GUARDED_BY(mu_);
  // Every shard known, ordered, for ShardForKey.
  std::vector<uint32_t> key_shards_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 1;
  std::string covered_ ABSL_GUARDED_BY(mu_);  // What version_ stands for.

  absl::Mutex wait_mu_;
  SteadyCondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(wait_mu_) = false;
  std::thread poller_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_CLUSTER_VIEW_H_
