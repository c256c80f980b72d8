// What spans the shards of a cluster: each node asked, the answers merged,
// and the nodes that did not answer named rather than left out silently.

#include "tools/batonctl/ctl.h"

namespace baton::ctl {

int Ctl::ReportMissing(const std::vector<Missing>& missing) {
  for (const Missing& m : missing) {
    std::string shards;
    for (uint32_t shard : m.node->shards) {
      shards += (shards.empty() ? "" : ",") + std::to_string(shard);
    }
    std::cerr << fmt::format(
        "batonctl: node {} at {} did not answer ({}); missing shard(s) {}\n",
        m.node->id, m.node->address, m.status.error_message(),
        shards.empty() ? "-" : shards);
  }
  return missing.empty() ? 0 : 3;
}

// Each node lists from its own token; the merged page takes the first
// `limit` in the cluster's order. A node whose page was taken only in part
// is asked again for just that part, so its token is its own (tokens are
// opaque) and stands where the merged page stopped.
int Ctl::ListAcross(const v1::ListTransactionsRequest& request) {
  FleetToken token;
  if (!DecodeFleetToken(request.page_token(), &token)) {
    std::cerr << "batonctl: --page-token is not one batonctl printed for this "
                 "cluster\n";
    return 2;
  }
  const uint32_t limit = request.limit() == 0 ? 100 : request.limit();
  std::vector<NodePage> pages;
  std::vector<const FleetNode*> paged;
  std::vector<std::string> next;
  std::vector<Missing> missing;
  for (const FleetNode& node : fleet().nodes()) {
    if (token.done[node.id]) continue;
    v1::ListTransactionsRequest asked = request;
    asked.set_page_token(token.next[node.id]);
    asked.set_limit(limit);
    v1::ListTransactionsResponse response;
    grpc::Status s =
        At(node.address)
            .admin->ListTransactions(Context().get(), asked, &response);
    if (!s.ok()) {
      missing.push_back({&node, s});
      continue;
    }
    pages.push_back(
        {node.id,
         {response.transactions().begin(), response.transactions().end()}});
    paged.push_back(&node);
    next.push_back(response.next_page_token());
  }
  if (pages.empty() && !missing.empty()) {
    ReportMissing(missing);
    return 1;
  }
  v1::ListTransactionsResponse merged;
  std::vector<v1::Transaction> out;
  std::vector<size_t> taken = MergePages(pages, limit, &out);
  for (v1::Transaction& t : out) merged.add_transactions()->Swap(&t);
  for (size_t i = 0; i < pages.size(); ++i) {
    const uint32_t id = pages[i].node;
    if (taken[i] == pages[i].transactions.size()) {
      token.done[id] = next[i].empty();
      token.next[id] = next[i];
    } else if (taken[i] > 0) {
      v1::ListTransactionsRequest part = request;
      part.set_page_token(token.next[id]);
      part.set_limit(static_cast<uint32_t>(taken[i]));
      v1::ListTransactionsResponse response;
      grpc::Status s =
          At(paged[i]->address)
              .admin->ListTransactions(Context().get(), part, &response);
      if (!s.ok()) {
        missing.push_back({paged[i], s});
        continue;
      }
      token.next[id] = response.next_page_token();
      token.done[id] = response.next_page_token().empty();
    }
  }
  bool more = false;
  for (const FleetNode& node : fleet().nodes()) {
    token.next.try_emplace(node.id, "");
    more = more || !token.done[node.id];
  }
  if (more) merged.set_next_page_token(EncodeFleetToken(token));
  PrintList(merged);
  return ReportMissing(missing);
}

int Ctl::StatsAcross() {
  v1::GetStatsResponse total;
  std::vector<Missing> missing;
  std::map<std::pair<int, int>, uint64_t> counts;  // (status, protocol).
  std::string errors;
  for (const FleetNode& node : fleet().nodes()) {
    v1::GetStatsResponse r;
    grpc::Status s = At(node.address).admin->GetStats(Context().get(), {}, &r);
    if (!s.ok()) {
      missing.push_back({&node, s});
      continue;
    }
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
      errors += fmt::format("{}node {}: {}", errors.empty() ? "" : "; ",
                            node.id, r.store_error());
    }
  }
  if (missing.size() == fleet().nodes().size()) {
    ReportMissing(missing);
    return 1;
  }
  for (const auto& [key, count] : counts) {
    v1::StatusCount* c = total.add_unfinished();
    c->set_status(static_cast<v1::GlobalStatus>(key.first));
    c->set_protocol(static_cast<v1::Protocol>(key.second));
    c->set_count(count);
  }
  total.set_store_error(errors);
  PrintStats(total);
  return ReportMissing(missing);
}

// A participant attaches to every node, so it is listed once, with the
// nodes it is attached to; its in-flight commands add up.
int Ctl::ParticipantsAcross() {
  v1::ListParticipantsResponse merged;
  std::map<std::string, int> index;  // Instance to position in `merged`.
  std::map<std::string, std::string> nodes;
  std::vector<Missing> missing;
  for (const FleetNode& node : fleet().nodes()) {
    v1::ListParticipantsResponse r;
    grpc::Status s =
        At(node.address).admin->ListParticipants(Context().get(), {}, &r);
    if (!s.ok()) {
      missing.push_back({&node, s});
      continue;
    }
    for (const v1::Participant& p : r.participants()) {
      std::string& attached = nodes[p.instance_id()];
      attached += (attached.empty() ? "" : ",") + std::to_string(node.id);
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
  if (missing.size() == fleet().nodes().size()) {
    ReportMissing(missing);
    return 1;
  }
  PrintParticipants(merged, nodes);
  return ReportMissing(missing);
}

}  // namespace baton::ctl
