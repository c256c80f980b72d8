#include "common/fleet.h"

#include <algorithm>
#include <charconv>
#include <tuple>
#include <utility>

#include "fmt/format.h"
#include "protocols/transitions.h"

namespace baton {

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
        fleet.owners_[s.id()] = 0;
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
    fleet.owners_[s.id()] = it->second;
  }
  return fleet;
}

std::string Fleet::AddressFor(std::string_view xid) const {
  return AddressForShard(Fleet::ShardOf(xid));
}

std::string Fleet::AddressForShard(uint32_t shard) const {
  const FleetNode* owner = OwnerOf(shard);
  return owner == nullptr ? entry_ : owner->address;
}

const FleetNode* Fleet::OwnerOf(uint32_t shard) const {
  auto it = owners_.find(shard);
  return it == owners_.end() ? nullptr : &nodes_[it->second];
}

const FleetNode& Fleet::Entry() const {
  for (const FleetNode& node : nodes_) {
    if (node.address == entry_) return node;
  }
  return nodes_.front();
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

std::optional<FleetListing> FleetListing::Start(
    std::shared_ptr<const Fleet> fleet,
    const v1::ListTransactionsRequest& request) {
  FleetToken token;
  if (!DecodeFleetToken(request.page_token(), &token)) return std::nullopt;
  return FleetListing(std::move(fleet), request, std::move(token));
}

FleetListing::FleetListing(std::shared_ptr<const Fleet> fleet,
                           v1::ListTransactionsRequest request,
                           FleetToken token)
    : fleet_(std::move(fleet)),
      request_(std::move(request)),
      limit_(request_.limit() == 0 ? 100 : request_.limit()),
      token_(std::move(token)) {
  for (const FleetNode& node : fleet_->nodes()) {
    if (token_.done[node.id]) continue;
    v1::ListTransactionsRequest asked = request_;
    asked.set_page_token(token_.next[node.id]);
    asked.set_limit(limit_);
    first_.push_back({&node, std::move(asked)});
  }
}

void FleetListing::Answered(uint32_t node,
                            const v1::ListTransactionsResponse& response) {
  pages_.push_back(
      {node, {response.transactions().begin(), response.transactions().end()}});
  next_.push_back(response.next_page_token());
}

std::vector<FleetListing::Ask> FleetListing::Merge() {
  std::vector<size_t> taken = MergePages(pages_, limit_, &merged_);
  std::vector<Ask> again;
  for (size_t i = 0; i < pages_.size(); ++i) {
    const uint32_t id = pages_[i].node;
    if (taken[i] == pages_[i].transactions.size()) {
      token_.done[id] = next_[i].empty();
      token_.next[id] = next_[i];
    } else if (taken[i] > 0) {
      auto node = std::find_if(first_.begin(), first_.end(),
                               [&](const Ask& a) { return a.node->id == id; });
      v1::ListTransactionsRequest part = node->request;
      part.set_limit(static_cast<uint32_t>(taken[i]));
      again.push_back({node->node, std::move(part)});
    }
  }
  return again;
}

void FleetListing::Reanswered(uint32_t node,
                              const v1::ListTransactionsResponse& response) {
  token_.next[node] = response.next_page_token();
  token_.done[node] = response.next_page_token().empty();
}

v1::ListTransactionsResponse FleetListing::Finish() {
  v1::ListTransactionsResponse out;
  for (v1::Transaction& t : merged_) out.add_transactions()->Swap(&t);
  bool more = false;
  for (const FleetNode& node : fleet_->nodes()) {
    token_.next.try_emplace(node.id, "");
    more = more || !token_.done[node.id];
  }
  if (more) out.set_next_page_token(EncodeFleetToken(token_));
  return out;
}

v1::GetStatsResponse MergeStats(
    const std::map<uint32_t, v1::GetStatsResponse>& by_node) {
  v1::GetStatsResponse total;
  std::map<std::pair<int, int>, uint64_t> counts;  // (status, protocol).
  std::string errors;
  for (const auto& [node, r] : by_node) {
    total.set_store_syncs(total.store_syncs() + r.store_syncs());
    total.set_store_batches(total.store_batches() + r.store_batches());
    total.set_live_transactions(total.live_transactions() +
                                r.live_transactions());
    total.set_cpu_seconds(total.cpu_seconds() + r.cpu_seconds());
    total.set_resident_bytes(total.resident_bytes() + r.resident_bytes());
    total.set_retry_backlog(total.retry_backlog() + r.retry_backlog());
    for (const v1::StatusCount& c : r.unfinished()) {
      counts[{c.status(), c.protocol()}] += c.count();
    }
    if (!r.oldest_unfinished_xid().empty() &&
        (total.oldest_unfinished_xid().empty() ||
         r.oldest_unfinished_begun_unix_ms() <
             total.oldest_unfinished_begun_unix_ms())) {
      total.set_oldest_unfinished_xid(r.oldest_unfinished_xid());
      total.set_oldest_unfinished_begun_unix_ms(
          r.oldest_unfinished_begun_unix_ms());
    }
    if (!r.store_error().empty()) {
      errors += fmt::format("{}node {}: {}", errors.empty() ? "" : "; ", node,
                            r.store_error());
    }
  }
  for (const auto& [key, count] : counts) {
    v1::StatusCount* c = total.add_unfinished();
    c->set_status(static_cast<v1::GlobalStatus>(key.first));
    c->set_protocol(static_cast<v1::Protocol>(key.second));
    c->set_count(count);
  }
  total.set_store_error(errors);
  return total;
}

v1::ListParticipantsResponse MergeParticipants(
    const std::map<uint32_t, v1::ListParticipantsResponse>& by_node,
    std::map<std::string, std::string>* attached_to) {
  v1::ListParticipantsResponse merged;
  std::map<std::string, int> index;  // Instance to position in `merged`.
  for (const auto& [node, r] : by_node) {
    for (const v1::Participant& p : r.participants()) {
      std::string& attached = (*attached_to)[p.instance_id()];
      attached += (attached.empty() ? "" : ",") + std::to_string(node);
      auto [it, fresh] =
          index.try_emplace(p.instance_id(), merged.participants_size());
      if (fresh) {
        *merged.add_participants() = p;
        continue;
      }
      v1::Participant* seen = merged.mutable_participants(it->second);
      seen->set_commands_in_flight(seen->commands_in_flight() +
                                   p.commands_in_flight());
      seen->set_attached_unix_ms(
          std::min(seen->attached_unix_ms(), p.attached_unix_ms()));
      seen->set_last_seen_unix_ms(
          std::max(seen->last_seen_unix_ms(), p.last_seen_unix_ms()));
    }
  }
  return merged;
}

}  // namespace baton
