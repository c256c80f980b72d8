#include "participant_sdk/internal/router.h"

#include <charconv>
#include <numeric>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "baton/v1/topology.grpc.pb.h"
#include "common/stable_hash.h"
#include "participant_sdk/internal/rpc.h"

namespace baton::internal {
namespace {

bool ShardOf(std::string_view xid, uint32_t* shard) {
  auto [end, ec] = std::from_chars(xid.data(), xid.data() + xid.size(), *shard);
  return ec == std::errc() && end != xid.data() &&
         end < xid.data() + xid.size() && *end == '-';
}

}  // namespace

std::vector<std::string> SeedList(const std::string& coordinator,
                                  const std::vector<std::string>& seeds) {
  if (!seeds.empty()) return seeds;
  std::vector<std::string> list =
      absl::StrSplit(coordinator, ',', absl::SkipWhitespace());
  for (std::string& address : list) {
    address = std::string(absl::StripAsciiWhitespace(address));
  }
  if (list.empty()) list.push_back(coordinator);
  return list;
}

Router::Router(std::vector<std::string> seeds,
               std::chrono::milliseconds timeout, TlsFiles tls,
               std::chrono::milliseconds refresh_every,
               std::chrono::milliseconds max_age)
    : seeds_(std::move(seeds)),
      timeout_(timeout),
      tls_(std::move(tls)),
      refresh_every_(refresh_every),
      max_age_(max_age) {}

void Router::EnsureLoaded() {
  bool stale;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!tried_) {
      stale = false;
    } else {
      stale = std::chrono::steady_clock::now() - last_refresh_ > max_age_;
      if (!stale) return;
    }
  }
  if (!stale) return Refresh(/*force=*/true);
  // Callers do not queue behind a refresh that is only for freshness.
  if (!refresh_mu_.TryLock()) return;
  RefreshLocked(/*force=*/false);
  refresh_mu_.Unlock();
}

std::string Router::ForXid(std::string_view xid) {
  return OwnerOf(xid).value_or(seeds_.front());
}

std::optional<std::string> Router::OwnerOf(std::string_view xid) {
  EnsureLoaded();
  uint32_t shard;
  absl::ReaderMutexLock lock(&mu_);
  if (ShardOf(xid, &shard)) {
    auto it = shards_.find(shard);
    if (it != shards_.end() && !it->second.owner.empty()) {
      return it->second.owner;
    }
  }
  // Talking to a lone coordinator (or one from before topologies): it owns
  // everything.
  if (nodes_.size() <= 1 && shards_.empty()) return seeds_.front();
  return std::nullopt;
}

std::vector<std::string> Router::Addresses() {
  EnsureLoaded();
  absl::ReaderMutexLock lock(&mu_);
  if (nodes_.empty()) return {seeds_.front()};
  std::vector<std::string> out;
  for (const auto& [id, address] : nodes_) out.push_back(address);
  return out;
}

const Router::Shard* Router::ShardForKeyLocked(std::string_view key) const {
  if (key_shards_.empty()) return nullptr;
  auto it = shards_.find(KeyShard(key, key_shards_));
  return it == shards_.end() ? nullptr : &it->second;
}

std::string Router::ForKey(std::string_view key) {
  EnsureLoaded();
  absl::ReaderMutexLock lock(&mu_);
  const Shard* shard = ShardForKeyLocked(key);
  // An owner nobody announced yet: any node refuses with what it knows.
  return shard != nullptr && !shard->owner.empty() ? shard->owner
                                                   : seeds_.front();
}

bool Router::ServingForKey(std::string_view key) {
  EnsureLoaded();
  absl::ReaderMutexLock lock(&mu_);
  if (key_shards_.empty()) return true;
  const Shard* shard = ShardForKeyLocked(key);
  return shard != nullptr && shard->serving;
}

bool Router::clustered() const {
  absl::ReaderMutexLock lock(&mu_);
  return nodes_.size() > 1;
}

void Router::Learn(const v1::WrongShard& refusal) {
  {
    absl::MutexLock lock(&mu_);
    if (refusal.draining()) {
      shards_[refusal.shard()].serving = false;
      return;
    }
    if (!refusal.owner_address().empty()) {
      shards_[refusal.shard()].owner = refusal.owner_address();
    }
  }
  Refresh(/*force=*/refusal.owner_address().empty());
}

void Router::Unreachable(const std::string& address) {
  {
    absl::MutexLock lock(&mu_);
    unreachable_[address] = std::chrono::steady_clock::now() + max_age_;
    for (auto& [id, shard] : shards_) {
      if (shard.owner == address) shard.serving = false;
    }
  }
  Refresh();
}

void Router::Refresh(bool force) {
  absl::MutexLock one_at_a_time(&refresh_mu_);
  RefreshLocked(force);
}

void Router::RefreshLocked(bool force) {
  std::vector<std::string> targets = seeds_;
  {
    absl::MutexLock lock(&mu_);
    auto now = std::chrono::steady_clock::now();
    if (tried_ && !force && now - last_refresh_ < refresh_every_) return;
    tried_ = true;
    last_refresh_ = now;
    for (const auto& [id, address] : nodes_) targets.push_back(address);
  }
  for (const std::string& address : targets) {
    auto stub =
        v1::TopologyService::NewStub(MakeCoordinatorChannel(address, tls_));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout_);
    v1::Topology topology;
    grpc::Status s = stub->GetTopology(&context, {}, &topology);
    // A coordinator from before topologies: it alone is the coordinator.
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) return;
    if (!s.ok() || topology.nodes_size() == 0) continue;
    absl::MutexLock lock(&mu_);
    AdoptLocked(topology, address);
    return;
  }
}

void Router::AdoptLocked(const v1::Topology& topology,
                         const std::string& dialed) {
  nodes_.clear();
  shards_.clear();
  key_shards_.clear();
  // One node: keep dialling the address that answered. The node's
  // advertised address may not be reachable from here (a port mapped by a
  // container runtime, say).
  bool alone = topology.nodes_size() == 1;
  for (const v1::TopologyNode& n : topology.nodes()) {
    nodes_[n.id()] = alone ? dialed : n.address();
  }
  auto now = std::chrono::steady_clock::now();
  std::erase_if(unreachable_, [&](const auto& e) { return e.second <= now; });
  for (const v1::TopologyShard& s : topology.shards()) {
    auto it = nodes_.find(s.node());
    std::string owner = it != nodes_.end() ? it->second : "";
    shards_[s.id()] = {owner, s.state() == v1::SHARD_STATE_SERVING &&
                                  !unreachable_.contains(owner)};
    key_shards_.push_back(s.id());
  }
  if (topology.cluster_shards() > 0) {
    key_shards_.resize(topology.cluster_shards());
    std::iota(key_shards_.begin(), key_shards_.end(), 0u);
  } else if (alone) {
    // A node alone spreads keys over its own shards itself.
    key_shards_.clear();
  }
}

}  // namespace baton::internal
