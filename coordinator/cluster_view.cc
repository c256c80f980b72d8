#include "coordinator/cluster_view.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <numeric>
#include <utility>

#include "common/resolve.h"
#include "common/stable_hash.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

v1::ShardState StateFor(v1::NodeHealth health) {
  return health == v1::NODE_HEALTH_SERVING ? v1::SHARD_STATE_SERVING
                                           : v1::SHARD_STATE_DOWN;
}

}  // namespace

std::optional<uint32_t> PodOrdinal(std::string_view pod_name) {
  size_t dash = pod_name.rfind('-');
  if (dash == std::string_view::npos || dash + 1 == pod_name.size()) {
    return std::nullopt;
  }
  uint32_t ordinal = 0;
  const char* begin = pod_name.data() + dash + 1;
  const char* end = pod_name.data() + pod_name.size();
  auto [stop, ec] = std::from_chars(begin, end, ordinal);
  if (ec != std::errc() || stop != end) return std::nullopt;
  return ordinal;
}

ClusterView::ClusterView(ClusterOptions options,
                         std::function<SelfReport()> self)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : SystemClock()),
      self_(std::move(self)) {
  absl::MutexLock lock(&mu_);
  for (const std::string& address : options_.peers) AddAddressLocked(address);
  RebuildKeyShardsLocked();
}

ClusterView::~ClusterView() { Stop(); }

void ClusterView::SetSelfAddress(const std::string& address) {
  absl::MutexLock lock(&mu_);
  self_address_ = address;
  // A peer list shared by every node (as a chart renders it) names this
  // node too.
  stubs_.erase(address);
}

void ClusterView::Start() {
  poller_ = std::thread([this] { Run(); });
}

void ClusterView::Stop() {
  {
    absl::MutexLock lock(&wait_mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (poller_.joinable()) poller_.join();
}

void ClusterView::Run() {
  for (;;) {
    PollOnce();
    absl::MutexLock lock(&wait_mu_);
    if (wake_.WaitFor(&wait_mu_,
                      std::chrono::milliseconds(options_.poll_interval_ms),
                      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait_mu_) {
                        return stopping_;
                      })) {
      return;
    }
  }
}

v1::Topology ClusterView::SelfPart() {
  SelfReport report = self_();
  v1::Topology part;
  part.set_answered_by(options_.node_id);
  v1::TopologyNode* node = part.add_nodes();
  node->set_id(options_.node_id);
  node->set_health(report.health);
  {
    absl::MutexLock lock(&mu_);
    node->set_address(self_address_);
  }
  for (uint32_t id : report.serving ? *report.serving : options_.shards) {
    v1::TopologyShard* shard = part.add_shards();
    shard->set_id(id);
    shard->set_node(options_.node_id);
    shard->set_state(StateFor(report.health));
    if (shard->state() == v1::SHARD_STATE_SERVING &&
        report.draining.contains(id)) {
      shard->set_state(v1::SHARD_STATE_DRAINING);
    }
    auto it = report.unfinished.find(id);
    shard->set_unfinished(it == report.unfinished.end() ? 0 : it->second);
  }
  return part;
}

// Blocking calls, each bounded by call_timeout_ms, on the poller's own
// thread; the lock is not held across them.
void ClusterView::PollOnce() {
  DiscoverByName();
  std::vector<std::pair<std::string, v1::TopologyService::Stub*>> targets;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [address, stub] : stubs_)
      targets.emplace_back(address, stub.get());
  }
  if (targets.empty()) return;
  v1::GetTopologyRequest request;
  request.set_self_only(true);
  *request.mutable_caller() = SelfPart();
  for (const auto& [address, stub] : targets) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.call_timeout_ms));
    v1::Topology reply;
    grpc::Status status = stub->GetTopology(&context, request, &reply);
    absl::MutexLock lock(&mu_);
    if (status.ok() && reply.nodes_size() == 1) {
      HeardLocked(reply, address);
      if (discovered_.erase(address) > 0) {
        stubs_.erase(address);
        settled_.insert(address);
      }
    } else {
      UnreachableLocked(address);
    }
  }
  absl::MutexLock lock(&mu_);
  UpdateVersionLocked();
}

void ClusterView::DiscoverByName() {
  std::vector<std::string> found;
  for (const std::string& name : options_.peers) {
    std::vector<std::string> addresses = ResolveAll(name);
    if (addresses.size() > 1) {
      found.insert(found.end(), addresses.begin(), addresses.end());
    }
  }
  absl::MutexLock lock(&mu_);
  for (const std::string& address : found) {
    if (settled_.contains(address) || stubs_.contains(address)) continue;
    AddAddressLocked(address);
    discovered_.insert(address);
  }
}

void ClusterView::AddAddressLocked(const std::string& address) {
  if (address.empty() || address == self_address_ || stubs_.contains(address))
    return;
  stubs_.emplace(
      address,
      v1::TopologyService::NewStub(grpc::CreateChannel(
          address, options_.credentials ? options_.credentials
                                        : grpc::InsecureChannelCredentials())));
}

void ClusterView::HeardLocked(const v1::Topology& part,
                              const std::string& dialed) {
  if (part.nodes_size() != 1 || part.answered_by() == options_.node_id) return;
  Peer& peer = peers_[part.answered_by()];
  bool was_unreachable = peer.node.health() == v1::NODE_HEALTH_UNREACHABLE;
  peer.node = part.nodes(0);
  if (peer.node.address().empty()) peer.node.set_address(dialed);
  peer.shards.assign(part.shards().begin(), part.shards().end());
  peer.last_heard_ms = clock_->SteadyMs();
  AddAddressLocked(peer.node.address());
  if (was_unreachable) {
    spdlog::info("node {} at {} answers again", part.answered_by(),
                 peer.node.address());
  }
}

void ClusterView::UnreachableLocked(const std::string& address) {
  for (auto& [id, peer] : peers_) {
    if (peer.node.address() != address ||
        peer.node.health() == v1::NODE_HEALTH_UNREACHABLE) {
      continue;
    }
    spdlog::warn("node {} at {} does not answer; its shards are down", id,
                 address);
    peer.node.set_health(v1::NODE_HEALTH_UNREACHABLE);
    for (v1::TopologyShard& shard : peer.shards) {
      shard.set_state(v1::SHARD_STATE_DOWN);
    }
  }
}

void ClusterView::SelfChanged() {
  absl::MutexLock lock(&mu_);
  ++version_;
}

void ClusterView::UpdateVersionLocked() {
  v1::Topology covered;
  for (const auto& [id, peer] : peers_) {
    v1::TopologyNode* node = covered.add_nodes();
    node->set_id(id);
    node->set_address(peer.node.address());
    node->set_health(peer.node.health());
    for (const v1::TopologyShard& shard : peer.shards) {
      v1::TopologyShard* s = covered.add_shards();
      s->set_id(shard.id());
      s->set_node(shard.node());
      s->set_state(shard.state());
    }
  }
  std::string serialized = covered.SerializeAsString();
  if (serialized == covered_) return;
  covered_ = std::move(serialized);
  ++version_;
  RebuildKeyShardsLocked();
}

void ClusterView::RebuildKeyShardsLocked() {
  if (options_.cluster_shards > 0) {
    key_shards_.resize(options_.cluster_shards);
    std::iota(key_shards_.begin(), key_shards_.end(), 0u);
    return;
  }
  key_shards_ = options_.shards;
  for (const auto& [id, peer] : peers_) {
    for (const v1::TopologyShard& shard : peer.shards) {
      key_shards_.push_back(shard.id());
    }
  }
  std::sort(key_shards_.begin(), key_shards_.end());
  key_shards_.erase(std::unique(key_shards_.begin(), key_shards_.end()),
                    key_shards_.end());
}

v1::Topology ClusterView::Describe(bool self_only, const v1::Topology* caller) {
  v1::Topology topology = SelfPart();
  absl::MutexLock lock(&mu_);
  if (caller != nullptr && caller->nodes_size() == 1) {
    HeardLocked(*caller, caller->nodes(0).address());
    UpdateVersionLocked();
  }
  topology.set_version(version_);
  topology.set_cluster_shards(options_.cluster_shards);
  if (self_only) return topology;
  const int64_t now = clock_->SteadyMs();
  // Where shards move (leases), a peer not heard from since may still
  // claim one another node serves now: this node's own word wins, then a
  // serving claim over a down one.
  std::map<uint32_t, v1::TopologyShard> claims;
  for (const v1::TopologyShard& shard : topology.shards()) {
    claims[shard.id()] = shard;
  }
  std::set<uint32_t> own_ids;
  for (const auto& [id, shard] : claims) own_ids.insert(id);
  for (const auto& [id, peer] : peers_) {
    v1::TopologyNode* node = topology.add_nodes();
    *node = peer.node;
    node->set_last_seen_ms_ago(now - peer.last_heard_ms);
    for (const v1::TopologyShard& shard : peer.shards) {
      if (own_ids.contains(shard.id())) continue;
      auto [it, fresh] = claims.emplace(shard.id(), shard);
      if (!fresh && it->second.state() != v1::SHARD_STATE_SERVING) {
        it->second = shard;
      }
    }
  }
  topology.clear_shards();
  for (auto& [id, shard] : claims) *topology.add_shards() = std::move(shard);
  return topology;
}

std::optional<v1::WrongShard> ClusterView::Elsewhere(uint32_t shard) const {
  absl::MutexLock lock(&mu_);
  if (!clustered()) return std::nullopt;
  v1::WrongShard refusal;
  refusal.set_shard(shard);
  refusal.set_topology_version(version_);
  for (const auto& [id, peer] : peers_) {
    for (const v1::TopologyShard& s : peer.shards) {
      if (s.id() != shard) continue;
      refusal.set_owner_node(id);
      refusal.set_owner_address(peer.node.address());
      return refusal;
    }
  }
  return refusal;
}

std::optional<uint32_t> ClusterView::ShardForKey(std::string_view key) const {
  absl::MutexLock lock(&mu_);
  if (!clustered() && options_.cluster_shards == 0) return std::nullopt;
  return KeyShard(key, key_shards_);
}

}  // namespace baton
