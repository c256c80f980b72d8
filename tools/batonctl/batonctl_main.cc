// batonctl: the operator's command line for a Baton coordinator.
//
// Exit codes: 0 success, 1 the coordinator refused or could not be reached,
// 2 bad usage.

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>

#include "baton/v1/admin_service.grpc.pb.h"
#include "baton/v1/topology.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "fmt/format.h"
#include "google/protobuf/util/json_util.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "tools/batonctl/table.h"

namespace baton::ctl {
namespace {

struct Options {
  std::string coordinator = "127.0.0.1:7420";
  std::string token_file;
  bool json = false;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One readable line for a failed call. UNAVAILABLE from a coordinator that
// answered (still loading after a restart, say) is its message, not "cannot
// reach".
int Fail(const Options& o, const grpc::Status& s, bool reached) {
  bool transport = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                   s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  if (transport && !reached) {
    std::cerr << fmt::format(
        "batonctl: cannot reach the coordinator at {} (is batond running?)\n",
        o.coordinator);
  } else {
    std::cerr << fmt::format("batonctl: {}\n", s.error_message());
  }
  return 1;
}

// "serving" from SHARD_STATE_SERVING: an enum value's name without its
// type's prefix, in lower case.
std::string ShortName(const std::string& full, std::string_view prefix) {
  std::string name =
      full.starts_with(prefix) ? full.substr(prefix.size()) : full;
  for (char& c : name) c = c == '_' ? '-' : std::tolower(c);
  return name;
}

std::string ShardStateName(v1::ShardState state) {
  return ShortName(v1::ShardState_Name(state), "SHARD_STATE_");
}

std::string NodeHealthName(v1::NodeHealth health) {
  return ShortName(v1::NodeHealth_Name(health), "NODE_HEALTH_");
}

void PrintJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json;
}

class Ctl {
 public:
  explicit Ctl(Options options)
      : o_(std::move(options)),
        channel_(grpc::CreateChannel(o_.coordinator,
                                     grpc::InsecureChannelCredentials())),
        admin_(v1::AdminService::NewStub(channel_)),
        txns_(v1::TransactionService::NewStub(channel_)),
        topology_(v1::TopologyService::NewStub(channel_)) {}

  int Fail(const grpc::Status& s) {
    return ctl::Fail(o_, s, channel_->GetState(false) == GRPC_CHANNEL_READY);
  }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(10));
    std::string token;
    if (const char* env = std::getenv("BATON_ADMIN_TOKEN")) token = env;
    if (!o_.token_file.empty()) {
      std::ifstream in(o_.token_file);
      std::getline(in, token);
    }
    if (!token.empty())
      context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  int List(const v1::ListTransactionsRequest& request) {
    v1::ListTransactionsResponse response;
    grpc::Status s =
        admin_->ListTransactions(Context().get(), request, &response);
    if (!s.ok()) return Fail(s);
    if (o_.json) {
      PrintJson(response);
      return 0;
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
    return 0;
  }

  int Show(const std::string& xid) {
    v1::GetTransactionRequest request;
    request.set_xid(xid);
    v1::GetTransactionResponse response;
    grpc::Status s = txns_->GetTransaction(Context().get(), request, &response);
    if (!s.ok()) return Fail(s);
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
    grpc::Status s = (admin_.get()->*rpc)(Context().get(), request, &response);
    if (!s.ok()) return Fail(s);
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
    v1::ListParticipantsResponse response;
    grpc::Status s = admin_->ListParticipants(Context().get(), {}, &response);
    if (!s.ok()) return Fail(s);
    if (o_.json) {
      PrintJson(response);
      return 0;
    }
    Table table({"SERVICE", "INSTANCE", "RESOURCES", "ATTACHED", "LAST SEEN",
                 "IN FLIGHT"});
    int64_t now = NowMs();
    for (const v1::Participant& p : response.participants()) {
      std::string resources;
      for (const std::string& r : p.resources()) {
        resources += (resources.empty() ? "" : ",") + r;
      }
      table.Add({p.service(), p.instance_id(), resources,
                 FormatAge(now - p.attached_unix_ms()) + " ago",
                 FormatAge(now - p.last_seen_unix_ms()) + " ago",
                 std::to_string(p.commands_in_flight())});
    }
    std::cout << table.Render();
    return 0;
  }

  // Needs no token: the topology names only addresses and health.
  int Topology() {
    v1::GetTopologyRequest request;
    v1::Topology topology;
    grpc::Status s =
        topology_->GetTopology(Context().get(), request, &topology);
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
    v1::GetStatsResponse response;
    grpc::Status s = admin_->GetStats(Context().get(), {}, &response);
    if (!s.ok()) return Fail(s);
    if (o_.json) {
      PrintJson(response);
      return 0;
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
    return 0;
  }

  static std::string ProtocolName(v1::Protocol p) {
    switch (p) {
      case v1::PROTOCOL_TWO_PHASE:
        return "2pc";
      case v1::PROTOCOL_TCC:
        return "tcc";
      case v1::PROTOCOL_SAGA:
        return "saga";
      default:
        return "-";
    }
  }

 private:
  Options o_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<v1::TransactionService::Stub> txns_;
  std::unique_ptr<v1::TopologyService::Stub> topology_;
};

// "user@host", for audit records.
std::string Actor() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return fmt::format("{}@{}", user != nullptr ? user : "unknown", host);
}

// Maps --status words to statuses; "needs-attention" is both stuck states.
bool AddStatuses(const std::vector<std::string>& words,
                 v1::ListTransactionsRequest* request) {
  const std::map<std::string, std::vector<v1::GlobalStatus>> names = {
      {"begun", {v1::GLOBAL_STATUS_BEGUN}},
      {"committing", {v1::GLOBAL_STATUS_COMMITTING}},
      {"committed", {v1::GLOBAL_STATUS_COMMITTED}},
      {"rolling-back", {v1::GLOBAL_STATUS_ROLLING_BACK}},
      {"rolled-back", {v1::GLOBAL_STATUS_ROLLED_BACK}},
      {"commit-stuck", {v1::GLOBAL_STATUS_COMMIT_STUCK}},
      {"rollback-stuck", {v1::GLOBAL_STATUS_ROLLBACK_STUCK}},
      {"needs-attention",
       {v1::GLOBAL_STATUS_COMMIT_STUCK, v1::GLOBAL_STATUS_ROLLBACK_STUCK}},
  };
  for (const std::string& word : words) {
    auto it = names.find(word);
    if (it == names.end()) return false;
    for (v1::GlobalStatus s : it->second) request->add_statuses(s);
  }
  return true;
}

}  // namespace
}  // namespace baton::ctl

int main(int argc, char** argv) {
  using namespace baton;
  ctl::Options options;
  CLI::App app{"batonctl: inspect and resolve Baton transactions"};
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--coordinator", options.coordinator, "batond address")
      ->capture_default_str();
  app.add_option("--token-file", options.token_file,
                 "File with the admin token (or set BATON_ADMIN_TOKEN)");
  app.add_flag("--json", options.json, "Machine-readable output");

  std::vector<std::string> statuses;
  std::string protocol, name, older_than, resource, page_token, xid;
  uint32_t limit = 100;
  CLI::App* list = app.add_subcommand("list", "List transactions");
  list->add_option(
      "--status", statuses,
      "begun, committing, committed, rolling-back, rolled-back, "
      "commit-stuck, rollback-stuck or needs-attention (repeatable)");
  list->add_option("--protocol", protocol, "2pc, tcc or saga");
  list->add_option("--name", name, "Exact transaction name");
  list->add_option("--older-than", older_than,
                   "Begun more than this ago: 30s, 5m, 2h, 1d");
  list->add_option("--resource", resource,
                   "Has a branch or saga step on this resource");
  list->add_option("--limit", limit, "At most this many (max 1000)")
      ->capture_default_str();
  list->add_option("--page-token", page_token, "Continue a previous listing");
  CLI::App* show =
      app.add_subcommand("show", "One transaction, with its branches");
  show->add_option("xid", xid, "The transaction")->required();
  app.add_subcommand("participants", "Attached participants");
  app.add_subcommand("stats", "Counts by status and protocol, backlog, oldest");
  app.add_subcommand("topology",
                     "Shards, the nodes that own them, their health and "
                     "unfinished transactions");

  v1::OperatorRequest op;
  op.set_actor(ctl::Actor());
  using Stub = v1::AdminService::Stub;
  const std::map<std::string, ctl::Ctl::OperatorRpc> operator_rpcs = {
      {"commit", &Stub::ForceCommit}, {"rollback", &Stub::ForceRollback},
      {"retry", &Stub::Retry},        {"pause", &Stub::Pause},
      {"resume", &Stub::Resume},      {"forget", &Stub::Forget}};
  const std::map<std::string, std::string> operator_help = {
      {"commit",
       "Force commit: decide it (every branch prepared) or finish a "
       "commit by marking its unfinished branches committed"},
      {"rollback",
       "Force rollback: decide it, or finish a rollback by "
       "marking its unfinished branches rolled back"},
      {"retry",
       "Send every owed phase-two command now; failed branches are "
       "owed again"},
      {"pause", "Stop phase-two commands for this transaction"},
      {"resume", "Restart phase-two commands, due now"},
      {"forget", "Drop a finished or needs-attention record (needs --force)"}};
  bool override_unprepared = false, force = false;
  for (const auto& [verb, help] : operator_help) {
    CLI::App* sub = app.add_subcommand(verb, help);
    sub->add_option("xid", *op.mutable_xid(), "The transaction")->required();
    CLI::Option* reason = sub->add_option("--reason", *op.mutable_reason(),
                                          "Why, for the audit record");
    if (verb == "commit" || verb == "rollback" || verb == "forget") {
      reason->required();
    }
    if (verb == "commit") {
      sub->add_flag("--override", override_unprepared,
                    "Treat branches that never reported as prepared");
    }
    if (verb == "forget") {
      sub->add_flag("--force", force,
                    "Confirm: the record is dropped for good");
    }
  }
  CLI11_PARSE(app, argc, argv);

  ctl::Ctl ctl(options);
  std::string command = app.get_subcommands().front()->get_name();
  if (command == "show") return ctl.Show(xid);
  if (command == "participants") return ctl.Participants();
  if (command == "stats") return ctl.Stats();
  if (command == "topology") return ctl.Topology();
  if (operator_rpcs.contains(command)) {
    if (command == "forget" && !force) {
      std::cerr << "batonctl: forget drops the record for good; add --force\n";
      return 2;
    }
    op.set_override_unprepared(override_unprepared);
    op.set_force(force);
    return ctl.Operate(operator_rpcs.at(command), op);
  }

  v1::ListTransactionsRequest request;
  if (!ctl::AddStatuses(statuses, &request)) {
    std::cerr << "batonctl: unknown --status; see batonctl list --help\n";
    return 2;
  }
  const std::map<std::string, v1::Protocol> protocols = {
      {"2pc", v1::PROTOCOL_TWO_PHASE},
      {"tcc", v1::PROTOCOL_TCC},
      {"saga", v1::PROTOCOL_SAGA}};
  if (!protocol.empty()) {
    if (!protocols.contains(protocol)) {
      std::cerr << "batonctl: --protocol must be 2pc, tcc or saga\n";
      return 2;
    }
    request.set_protocol(protocols.at(protocol));
  }
  int64_t age_ms = 0;
  if (!older_than.empty()) {
    if (!ctl::ParseDuration(older_than, &age_ms)) {
      std::cerr
          << "batonctl: --older-than takes 30s, 5m, 2h, 1d or milliseconds\n";
      return 2;
    }
    request.set_begun_before_unix_ms(ctl::NowMs() - age_ms);
  }
  request.set_name(name);
  request.set_resource(resource);
  request.set_limit(limit);
  request.set_page_token(page_token);
  return ctl.List(request);
}
