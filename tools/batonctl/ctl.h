#ifndef BATON_TOOLS_BATONCTL_CTL_H_
#define BATON_TOOLS_BATONCTL_CTL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "baton/v1/admin_service.grpc.pb.h"
#include "baton/v1/topology.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "common/fleet.h"
#include "common/tls.h"
#include "fmt/format.h"
#include "google/protobuf/util/json_util.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "tools/batonctl/table.h"
#include "tools/batonctl/token_lookup.h"

// batonctl's calls and views: one Ctl per run, on the main thread.
namespace baton::ctl {

struct Options {
  std::string coordinator = "127.0.0.1:7420";
  std::string token_file;
  std::string data_dir;
  FoundToken token;  // Found from the two above and the environment.
  bool json = false;
  TlsFiles tls;  // Environment already applied.
};

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whether `s` may mean the call never reached batond.
inline bool MayNotHaveReached(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// One readable line for a failed call. UNAVAILABLE from a coordinator that
// answered (still loading after a restart, say) is its message, not "cannot
// reach".
inline int Fail(const Options& o, const grpc::Status& s, bool reached) {
  if (MayNotHaveReached(s) && !reached) {
    // Over TLS, gRPC's own words say whether the handshake failed (a CA or
    // a client certificate that does not match).
    std::cerr << fmt::format(
        "batonctl: cannot reach the coordinator at {} (is batond running?{})"
        "\n",
        o.coordinator,
        o.tls.client_enabled()
            ? " are --tls-ca and --tls-cert the ones it expects? " +
                  s.error_message()
            : "");
  } else if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
             o.token.token.empty()) {
    std::cerr << fmt::format("batonctl: {}; {}\n", s.error_message(),
                             NoTokenHint());
  } else {
    std::cerr << fmt::format("batonctl: {}\n", s.error_message());
  }
  return 1;
}

// "serving" from SHARD_STATE_SERVING: an enum value's name without its
// type's prefix, in lower case.
inline std::string ShortName(const std::string& full, std::string_view prefix) {
  std::string name =
      full.starts_with(prefix) ? full.substr(prefix.size()) : full;
  for (char& c : name) c = c == '_' ? '-' : std::tolower(c);
  return name;
}

inline std::string ShardStateName(v1::ShardState state) {
  return ShortName(v1::ShardState_Name(state), "SHARD_STATE_");
}

inline std::string NodeHealthName(v1::NodeHealth health) {
  return ShortName(v1::NodeHealth_Name(health), "NODE_HEALTH_");
}

inline void PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json;
}

class Ctl {
 public:
  explicit Ctl(Options options) : o_(std::move(options)) {}

  // Stubs for one node, made on first use.
  struct Node {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::AdminService::Stub> admin;
    std::unique_ptr<v1::TransactionService::Stub> txns;
    std::unique_ptr<v1::TopologyService::Stub> topology;
  };

  Node& At(const std::string& address) {
    std::unique_ptr<Node>& node = nodes_[address];
    if (node == nullptr) {
      node = std::make_unique<Node>();
      node->channel =
          grpc::CreateChannel(address, MakeChannelCredentials(o_.tls));
      node->admin = v1::AdminService::NewStub(node->channel);
      node->txns = v1::TransactionService::NewStub(node->channel);
      node->topology = v1::TopologyService::NewStub(node->channel);
    }
    return *node;
  }

  // The nodes, from the entry node's topology (asked once).
  const Fleet& fleet() {
    if (!fleet_) {
      v1::Topology topology;
      grpc::Status s =
          At(o_.coordinator)
              .topology->GetTopology(Context().get(), {}, &topology);
      fleet_ = std::make_shared<const Fleet>(Fleet::From(
          o_.coordinator, s.ok() ? std::optional(topology) : std::nullopt));
    }
    return *fleet_;
  }
  std::shared_ptr<const Fleet> shared_fleet() {
    fleet();
    return fleet_;
  }

  // With `shard`, the call went to that shard's owner: when it cannot be
  // reached, the line says whose node is gone and that its transactions
  // wait for it.
  int Fail(const grpc::Status& s, const std::string& address = "",
           std::optional<uint32_t> shard = std::nullopt) {
    Options at = o_;
    if (!address.empty()) at.coordinator = address;
    bool reached =
        At(at.coordinator).channel->GetState(false) == GRPC_CHANNEL_READY;
    if (shard && fleet().clustered() && MayNotHaveReached(s) && !reached) {
      std::cerr << fmt::format(
          "batonctl: cannot reach {}, the node that owns shard {}; that "
          "shard's transactions wait for it: start it again on its data dir, "
          "then retry\n",
          at.coordinator, *shard);
      return 1;
    }
    return ctl::Fail(at, s, reached);
  }
  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    if (!o_.token.token.empty())
      context->AddMetadata("authorization", "Bearer " + o_.token.token);
    return context;
  }

  int List(const v1::ListTransactionsRequest& request) {
    if (fleet().clustered()) return ListAcross(request);
    v1::ListTransactionsResponse response;
    grpc::Status s =
        At(o_.coordinator)
            .admin->ListTransactions(Context().get(), request, &response);
    if (!s.ok()) return Fail(s);
    PrintList(response);
    return 0;
  }

  void PrintList(const v1::ListTransactionsResponse& response) {
    if (o_.json) {
      PrintJson(response);
      return;
    }
    Table table(
        {"XID", "STATUS", "PROTOCOL", "AGE", "BRANCHES", "NAME", "REASON"});
    int64_t now = NowMs();
    for (const v1::Transaction& t : response.transactions()) {
      table.Add({t.xid(), std::string(GlobalStatusName(t.status())),
                 ProtocolName(t.protocol()), FormatAge(now - t.begun_unix_ms()),
                 t.has_saga() ? fmt::format("{} steps", t.saga().steps_size())
                              : std::to_string(t.branches_size()),
                 t.name(), t.reason()});
    }
    std::cout << table.Render();
    if (!response.next_page_token().empty()) {
      std::cout << "more: --page-token " << response.next_page_token() << "\n";
    }
  }

  int Drain(const v1::DrainShardRequest& request) {
    std::string address = fleet().AddressForShard(request.shard());
    v1::DrainShardResponse response;
    grpc::Status s =
        At(address).admin->DrainShard(Context().get(), request, &response);
    if (!s.ok()) return Fail(s, address, request.shard());
    if (o_.json) {
      PrintJson(response);
      return 0;
    }
    std::cout << fmt::format(
        "shard {} at {}: {}, {} unfinished{}\n", response.shard(), address,
        response.draining() ? "draining" : "serving", response.unfinished(),
        response.draining() && response.unfinished() == 0
            ? "; nothing left, its node may go"
            : "");
    return 0;
  }

  int ListAcross(const v1::ListTransactionsRequest& request);
  int StatsAcross();
  int ParticipantsAcross();

  int Show(const std::string& xid) {
    v1::GetTransactionRequest request;
    request.set_xid(xid);
    v1::GetTransactionResponse response;
    std::string address = fleet().AddressFor(xid);
    grpc::Status s =
        At(address).txns->GetTransaction(Context().get(), request, &response);
    if (!s.ok()) return Fail(s, address, Fleet::ShardOf(xid));
    if (o_.json) {
      PrintJson(response.transaction());
      return 0;
    }
    const v1::Transaction& t = response.transaction();
    Table head({"xid", t.xid()});
    head.Add({"name", t.name()});
    head.Add({"protocol", ProtocolName(t.protocol())});
    head.Add({"status", std::string(GlobalStatusName(t.status()))});
    head.Add({"reason", t.reason().empty() ? "-" : t.reason()});
    head.Add({"begun", FormatTime(t.begun_unix_ms())});
    head.Add({"deadline", FormatTime(t.deadline_unix_ms())});
    head.Add({"decided", FormatTime(t.decided_unix_ms())});
    head.Add({"finished", FormatTime(t.finished_unix_ms())});
    head.Add({"next action", FormatTime(t.next_action_unix_ms())});
    std::cout << head.Render() << "\n";
    std::cout << (t.has_saga() ? StepTable(t) : BranchTable(t)).Render();
    if (t.paused())
      std::cout << "\npaused by an operator: no commands go out\n";
    if (t.audit_size() > 0) {
      Table audit({"WHEN", "ACTION", "BY", "REASON", "DETAIL"});
      for (const v1::AuditRecord& a : t.audit()) {
        audit.Add({FormatTime(a.unix_ms()), a.action(),
                   a.actor().empty() ? "-" : a.actor(), a.reason(),
                   a.detail()});
      }
      std::cout << "\n" << audit.Render();
    }
    return 0;
  }

  static Table BranchTable(const v1::Transaction& t) {
    Table table({"BRANCH", "RESOURCE", "STATUS", "ATTEMPTS", "LAST ERROR",
                 "NEXT RETRY", "INSTANCE"});
    for (const v1::Branch& b : t.branches()) {
      table.Add({std::to_string(b.branch_id()), b.resource(),
                 std::string(BranchStatusName(b.status())),
                 std::to_string(b.attempts()), OrDash(b.last_error()),
                 FormatTime(b.next_retry_unix_ms()), b.instance_id()});
    }
    return table;
  }

  // A saga's steps in definition order; ATTEMPTS counts actions, then
  // compensations after a "+".
  static Table StepTable(const v1::Transaction& t) {
    Table table({"STEP", "RESOURCE", "AFTER", "STATUS", "ATTEMPTS",
                 "LAST ERROR", "NEXT ATTEMPT"});
    const v1::SagaProgress& saga = t.saga();
    for (int i = 0; i < saga.steps_size(); ++i) {
      const v1::SagaStep& def = saga.definition().steps(i);
      const v1::StepProgress& p = saga.steps(i);
      std::string after;
      for (const std::string& d : def.depends_on()) {
        after += (after.empty() ? "" : ",") + d;
      }
      std::string attempts = std::to_string(p.attempts());
      if (p.compensation_attempts() > 0) {
        attempts += "+" + std::to_string(p.compensation_attempts());
      }
      table.Add({def.name(), def.action().resource(), OrDash(after),
                 std::string(StepStatusName(p.status())), attempts,
                 OrDash(p.last_error()), FormatTime(p.next_attempt_unix_ms())});
    }
    return table;
  }

  static std::string OrDash(const std::string& s) {
    return s.empty() ? "-" : s;
  }

  using OperatorRpc = grpc::Status (v1::AdminService::Stub::*)(
      grpc::ClientContext*, const v1::OperatorRequest&, v1::OperatorResponse*);

  int Operate(OperatorRpc rpc, const v1::OperatorRequest& request) {
    v1::OperatorResponse response;
    std::string address = fleet().AddressFor(request.xid());
    grpc::Status s =
        (At(address).admin.get()->*rpc)(Context().get(), request, &response);
    if (!s.ok()) return Fail(s, address, Fleet::ShardOf(request.xid()));
    const v1::Transaction& t = response.transaction();
    if (o_.json) {
      PrintJson(t);
      return 0;
    }
    std::string detail =
        t.audit_size() == 0 ? "" : t.audit().rbegin()->detail();
    std::cout << fmt::format(
        "{}: {}{}{}\n", t.xid(), GlobalStatusName(t.status()),
        t.paused() ? " (paused)" : "", detail.empty() ? "" : "; " + detail);
    return 0;
  }

  int Participants() {
    if (fleet().clustered()) return ParticipantsAcross();
    v1::ListParticipantsResponse response;
    grpc::Status s =
        At(o_.coordinator)
            .admin->ListParticipants(Context().get(), {}, &response);
    if (!s.ok()) return Fail(s);
    PrintParticipants(response, {});
    return 0;
  }

  // `nodes`: for a cluster, the nodes each instance is attached to.
  void PrintParticipants(const v1::ListParticipantsResponse& response,
                         const std::map<std::string, std::string>& nodes) {
    if (o_.json) {
      PrintJson(response);
      return;
    }
    std::vector<std::string> header = {"SERVICE",  "INSTANCE",  "RESOURCES",
                                       "ATTACHED", "LAST SEEN", "IN FLIGHT"};
    if (!nodes.empty()) header.push_back("NODES");
    Table table(header);
    int64_t now = NowMs();
    for (const v1::Participant& p : response.participants()) {
      std::string resources;
      for (const std::string& r : p.resources()) {
        resources += (resources.empty() ? "" : ",") + r;
      }
      std::vector<std::string> row = {
          p.service(),
          p.instance_id(),
          resources,
          FormatAge(now - p.attached_unix_ms()) + " ago",
          FormatAge(now - p.last_seen_unix_ms()) + " ago",
          std::to_string(p.commands_in_flight())};
      if (!nodes.empty()) {
        auto it = nodes.find(p.instance_id());
        row.push_back(it == nodes.end() ? "-" : it->second);
      }
      table.Add(std::move(row));
    }
    std::cout << table.Render();
  }

  // Needs no token: the topology names only addresses and health.
  int Topology() {
    v1::GetTopologyRequest request;
    v1::Topology topology;
    grpc::Status s =
        At(o_.coordinator)
            .topology->GetTopology(Context().get(), request, &topology);
    if (!s.ok()) return Fail(s);
    if (o_.json) {
      PrintJson(topology);
      return 0;
    }
    std::map<uint32_t, const v1::TopologyNode*> nodes;
    for (const v1::TopologyNode& n : topology.nodes()) nodes[n.id()] = &n;
    Table table({"SHARD", "STATE", "NODE", "ADDRESS", "HEALTH", "UNFINISHED",
                 "LAST SEEN"});
    for (const v1::TopologyShard& shard : topology.shards()) {
      auto it = nodes.find(shard.node());
      const v1::TopologyNode* n = it == nodes.end() ? nullptr : it->second;
      table.Add({std::to_string(shard.id()), ShardStateName(shard.state()),
                 std::to_string(shard.node()), n ? n->address() : "?",
                 n ? NodeHealthName(n->health()) : "?",
                 std::to_string(shard.unfinished()),
                 n && shard.node() != topology.answered_by()
                     ? FormatAge(n->last_seen_ms_ago()) + " ago"
                     : "-"});
    }
    std::cout << table.Render();
    std::cout << fmt::format("as node {} sees it, version {}\n",
                             topology.answered_by(), topology.version());
    return 0;
  }

  int Stats() {
    if (fleet().clustered()) return StatsAcross();
    v1::GetStatsResponse response;
    grpc::Status s =
        At(o_.coordinator).admin->GetStats(Context().get(), {}, &response);
    if (!s.ok()) return Fail(s);
    PrintStats(response);
    return 0;
  }

  void PrintStats(const v1::GetStatsResponse& response) {
    if (o_.json) {
      PrintJson(response);
      return;
    }
    Table counts({"STATUS", "PROTOCOL", "UNFINISHED"});
    for (const v1::StatusCount& c : response.unfinished()) {
      counts.Add({std::string(GlobalStatusName(c.status())),
                  ProtocolName(c.protocol()), std::to_string(c.count())});
    }
    std::cout << counts.Render() << "\n";
    Table totals({"unfinished", std::to_string(response.live_transactions())});
    totals.Add({"retry backlog", std::to_string(response.retry_backlog())});
    totals.Add(
        {"oldest unfinished",
         response.oldest_unfinished_xid().empty()
             ? "-"
             : fmt::format(
                   "{} (begun {} ago)", response.oldest_unfinished_xid(),
                   FormatAge(NowMs() -
                             response.oldest_unfinished_begun_unix_ms()))});
    totals.Add({"store syncs", std::to_string(response.store_syncs())});
    totals.Add({"store batches", std::to_string(response.store_batches())});
    totals.Add({"store", response.store_error().empty()
                             ? "ok"
                             : "FAILED: " + response.store_error()});
    std::cout << totals.Render();
  }

  static std::string ProtocolName(v1::Protocol p) {
    std::string_view name = ProtocolShortName(p);
    return name.empty() ? "-" : std::string(name);
  }

 private:
  // Says which nodes did not answer and which shards that leaves out;
  // returns the exit code.
  struct Missing {
    const FleetNode* node;
    grpc::Status status;
  };
  int ReportMissing(const std::vector<Missing>& missing);

  Options o_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::shared_ptr<const Fleet> fleet_;
};

}  // namespace baton::ctl

#endif  // BATON_TOOLS_BATONCTL_CTL_H_
