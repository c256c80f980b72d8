#include "tools/batonctl/fleet.h"

#include <charconv>
#include <tuple>

#include "protocols/transitions.h"

namespace baton::ctl {

uint32_t Fleet::ShardOf(std::string_view xid) {
  uint32_t shard = 0;
  std::from_chars(xid.data(), xid.data() + xid.size(), shard);
  return shard;
}

namespace {

// Where `t` stands in a cluster-wide listing.
std::tuple<int, uint32_t, int64_t, std::string_view> OrderKey(
    const v1::Transaction& t) {
  if (IsTerminal(t.status())) {
    return {1, 0, t.finished_unix_ms(), t.xid()};
  }
  return {0, Fleet::ShardOf(t.xid()), 0, ""};
}

}  // namespace

Fleet Fleet::From(const std::string& entry,
                  const std::optional<v1::Topology>& topology) {
  Fleet fleet;
  fleet.entry_ = entry;
  if (!topology || topology->nodes_size() <= 1) {
    FleetNode alone{.address = entry};
    if (topology) {
      for (const v1::TopologyShard& s : topology->shards()) {
        alone.shards.push_back(s.id());
        fleet.owners_[s.id()] = entry;
      }
      if (topology->nodes_size() == 1) alone.id = topology->nodes(0).id();
    }
    fleet.nodes_.push_back(std::move(alone));
    return fleet;
  }
  std::map<uint32_t, size_t> index;
  for (const v1::TopologyNode& n : topology->nodes()) {
    index[n.id()] = fleet.nodes_.size();
    fleet.nodes_.push_back({.id = n.id(), .address = n.address()});
  }
  for (const v1::TopologyShard& s : topology->shards()) {
    auto it = index.find(s.node());
    if (it == index.end()) continue;
    fleet.nodes_[it->second].shards.push_back(s.id());
    fleet.owners_[s.id()] = fleet.nodes_[it->second].address;
  }
  return fleet;
}

std::string Fleet::AddressFor(std::string_view xid) const {
  return AddressForShard(Fleet::ShardOf(xid));
}

std::string Fleet::AddressForShard(uint32_t shard) const {
  auto it = owners_.find(shard);
  return it == owners_.end() ? entry_ : it->second;
}

std::string EncodeFleetToken(const FleetToken& token) {
  std::string out = "N|";
  bool first = true;
  for (const auto& [node, next] : token.next) {
    auto done = token.done.find(node);
    bool finished = done != token.done.end() && done->second;
    out += (first ? "" : ";") + std::to_string(node) + "=" +
           (finished ? "~" : next);
    first = false;
  }
  return out;
}

bool DecodeFleetToken(const std::string& text, FleetToken* token) {
  if (text.empty()) return true;
  if (!text.starts_with("N|")) return false;
  std::string_view rest(text);
  rest.remove_prefix(2);
  while (!rest.empty()) {
    size_t end = rest.find(';');
    std::string_view entry = rest.substr(0, end);
    rest = end == std::string_view::npos ? "" : rest.substr(end + 1);
    size_t eq = entry.find('=');
    uint32_t node = 0;
    if (eq == std::string_view::npos) return false;
    auto [p, ec] = std::from_chars(entry.data(), entry.data() + eq, node);
    if (ec != std::errc() || p != entry.data() + eq) return false;
    std::string_view value = entry.substr(eq + 1);
    token->done[node] = value == "~";
    token->next[node] = value == "~" ? "" : std::string(value);
  }
  return true;
}

std::vector<size_t> MergePages(const std::vector<NodePage>& pages,
                               uint32_t limit,
                               std::vector<v1::Transaction>* out) {
  std::vector<size_t> taken(pages.size(), 0);
  while (out->size() < limit) {
    std::optional<size_t> best;
    for (size_t i = 0; i < pages.size(); ++i) {
      if (taken[i] == pages[i].transactions.size()) continue;
      if (!best || OrderKey(pages[i].transactions[taken[i]]) <
                       OrderKey(pages[*best].transactions[taken[*best]])) {
        best = i;
      }
    }
    if (!best) break;
    out->push_back(pages[*best].transactions[taken[*best]++]);
  }
  return taken;
}

}  // namespace baton::ctl
