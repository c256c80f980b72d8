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

int Ctl::ListAcross(const v1::ListTransactionsRequest& request) {
  std::optional<FleetListing> listing =
      FleetListing::Start(shared_fleet(), request);
  if (!listing) {
    std::cerr << "batonctl: --page-token is not one batonctl printed for this "
                 "cluster\n";
    return 2;
  }
  std::vector<Missing> missing;
  // Asks each node its part; `answered` takes each answer.
  auto ask_all = [&](const std::vector<FleetListing::Ask>& asks,
                     auto answered) {
    for (const FleetListing::Ask& ask : asks) {
      v1::ListTransactionsResponse response;
      grpc::Status s =
          At(ask.node->address)
              .admin->ListTransactions(Context().get(), ask.request, &response);
      if (!s.ok()) {
        missing.push_back({ask.node, s});
        continue;
      }
      answered(ask.node->id, response);
    }
  };
  ask_all(listing->FirstRound(), [&](uint32_t node, const auto& response) {
    listing->Answered(node, response);
  });
  if (missing.size() == listing->FirstRound().size() && !missing.empty()) {
    ReportMissing(missing);
    return 1;
  }
  ask_all(listing->Merge(), [&](uint32_t node, const auto& response) {
    listing->Reanswered(node, response);
  });
  PrintList(listing->Finish());
  return ReportMissing(missing);
}

int Ctl::StatsAcross() {
  std::map<uint32_t, v1::GetStatsResponse> by_node;
  std::vector<Missing> missing;
  for (const FleetNode& node : fleet().nodes()) {
    v1::GetStatsResponse r;
    grpc::Status s = At(node.address).admin->GetStats(Context().get(), {}, &r);
    if (!s.ok()) {
      missing.push_back({&node, s});
      continue;
    }
    by_node[node.id] = std::move(r);
  }
  if (missing.size() == fleet().nodes().size()) {
    ReportMissing(missing);
    return 1;
  }
  PrintStats(MergeStats(by_node));
  return ReportMissing(missing);
}

int Ctl::ParticipantsAcross() {
  std::map<uint32_t, v1::ListParticipantsResponse> by_node;
  std::vector<Missing> missing;
  for (const FleetNode& node : fleet().nodes()) {
    v1::ListParticipantsResponse r;
    grpc::Status s =
        At(node.address).admin->ListParticipants(Context().get(), {}, &r);
    if (!s.ok()) {
      missing.push_back({&node, s});
      continue;
    }
    by_node[node.id] = std::move(r);
  }
  if (missing.size() == fleet().nodes().size()) {
    ReportMissing(missing);
    return 1;
  }
  std::map<std::string, std::string> nodes;
  v1::ListParticipantsResponse merged = MergeParticipants(by_node, &nodes);
  PrintParticipants(merged, nodes);
  return ReportMissing(missing);
}

}  // namespace baton::ctl
