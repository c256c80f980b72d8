#include "participant_sdk/internal/router.h"

#include <charconv>

#include "baton/v1/topology.grpc.pb.h"
#include "common/stable_hash.h"
#include "participant_sdk/internal/rpc.h"

namespace baton::internal {
namespace {

// The node for a key: from the hash's high half, because the node spreads
// keys over its own shards by the low bits (TransactionManager::TableForNew);
// the same bits for both would send every key a node gets to one of its
// shards.
size_t NodeIndex(std::string_view key, size_t nodes) {
  return (StableHash(key) >> 32) % nodes;
}

bool ShardOf(std::string_view xid, uint32_t* shard) {
  auto [end, ec] = std::from_chars(xid.data(), xid.data() + xid.size(), *shard);
  return ec == std::errc() && end != xid.data() &&
         end < xid.data() + xid.size() && *end == '-';
}

}  // namespace

Router::Router(std::vector<std::string> seeds,
               std::chrono::milliseconds timeout,
               std::chrono::milliseconds refresh_every)
    : seeds_(std::move(seeds)),
      timeout_(timeout),
      refresh_every_(refresh_every) {}

void Router::EnsureLoaded() {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (tried_) return;
  }
  Refresh(/*force=*/true);
}

std::string Router::ForXid(std::string_view xid) {
  EnsureLoaded();
  uint32_t shard;
  absl::ReaderMutexLock lock(&mu_);
  if (ShardOf(xid, &shard)) {
    auto it = owners_.find(shard);
    if (it != owners_.end()) return it->second;
  }
  return seeds_.front();
}

const Router::Node* Router::NodeForKeyLocked(std::string_view key) const {
  if (nodes_.empty()) return nullptr;
  auto it = nodes_.begin();
  std::advance(it, NodeIndex(key, nodes_.size()));
  return &it->second;
}

std::string Router::ForKey(std::string_view key) {
  EnsureLoaded();
  absl::ReaderMutexLock lock(&mu_);
  const Node* node = NodeForKeyLocked(key);
  return node != nullptr ? node->address : seeds_.front();
}

bool Router::ServingForKey(std::string_view key) {
  EnsureLoaded();
  absl::ReaderMutexLock lock(&mu_);
  const Node* node = NodeForKeyLocked(key);
  return node == nullptr || node->serving;
}

bool Router::clustered() const {
  absl::ReaderMutexLock lock(&mu_);
  return nodes_.size() > 1;
}

void Router::Learn(const v1::WrongShard& refusal) {
  {
    absl::MutexLock lock(&mu_);
    if (!refusal.owner_address().empty()) {
      owners_[refusal.shard()] = refusal.owner_address();
    }
  }
  Refresh(/*force=*/refusal.owner_address().empty());
}

void Router::Unreachable(const std::string& address) {
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, node] : nodes_) {
      if (node.address == address) node.serving = false;
    }
  }
  Refresh();
}

void Router::Refresh(bool force) {
  absl::MutexLock one_at_a_time(&refresh_mu_);
  std::vector<std::string> targets = seeds_;
  {
    absl::MutexLock lock(&mu_);
    auto now = std::chrono::steady_clock::now();
    if (tried_ && !force && now - last_refresh_ < refresh_every_) return;
    tried_ = true;
    last_refresh_ = now;
    for (const auto& [id, node] : nodes_) targets.push_back(node.address);
  }
  for (const std::string& address : targets) {
    auto stub = v1::TopologyService::NewStub(MakeCoordinatorChannel(address));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout_);
    v1::Topology topology;
    grpc::Status s = stub->GetTopology(&context, {}, &topology);
    // A coordinator from before topologies: it alone is the coordinator.
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) return;
    if (!s.ok() || topology.nodes_size() == 0) continue;
    absl::MutexLock lock(&mu_);
    nodes_.clear();
    owners_.clear();
    // One node: keep dialling the seed. Its advertised address may not be
    // reachable from here (a port mapped by a container runtime, say).
    if (topology.nodes_size() == 1) return;
    for (const v1::TopologyNode& n : topology.nodes()) {
      nodes_[n.id()] = {n.address(), n.health() == v1::NODE_HEALTH_SERVING};
    }
    for (const v1::TopologyShard& shard : topology.shards()) {
      auto it = nodes_.find(shard.node());
      if (it != nodes_.end()) owners_[shard.id()] = it->second.address;
    }
    return;
  }
}

}  // namespace baton::internal
