// batonctl: the operator's command line for a Baton coordinator.
//
// Exit codes: 0 success, 1 the coordinator refused or could not be reached,
// 2 bad usage, 3 some nodes of a cluster did not answer (the output shows
// what the others said, and stderr names the shards missing).
//
// Against a cluster, list, stats and participants ask every node the
// topology names and merge the answers; a call about one xid goes to the
// owner of its shard.

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>

#include "common/list_filter.h"
#include "common/tls_flags.h"
#include "tools/batonctl/ctl.h"

namespace baton::ctl {
namespace {

// "user@host", for audit records.
std::string Actor() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return fmt::format("{}@{}", user != nullptr ? user : "unknown", host);
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
                 "File with the admin token (or set BATON_ADMIN_TOKEN, or "
                 "BATON_TOKEN_FILE); without any, batonctl uses the one "
                 "batond made in its data dir");
  app.add_option("--data-dir", options.data_dir,
                 "batond's data dir, where a batond on loopback keeps the "
                 "admin token it made (default BATON_DATA_DIR, else ./data)");
  app.add_flag("--json", options.json, "Machine-readable output");
  AddTlsClientFlags(&app, &options.tls);

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

  v1::DrainShardRequest drain;
  uint32_t drain_shard = 0;
  bool drain_undo = false;
  CLI::App* drain_cmd = app.add_subcommand(
      "drain",
      "Stop new transactions on a shard, so its node can go once nothing "
      "there is unfinished; --undo takes them again");
  drain_cmd->add_option("shard", drain_shard, "The shard")->required();
  drain_cmd->add_flag("--undo", drain_undo, "Take new transactions again");
  drain_cmd->add_option("--reason", *drain.mutable_reason(),
                        "Why, for the log");
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
  options.tls = WithTlsEnvironment(options.tls);
  absl::StatusOr<ctl::FoundToken> token =
      ctl::FindAdminToken(options.token_file, options.data_dir,
                          [](const char* name) { return std::getenv(name); });
  if (!token.ok()) {
    std::cerr << "batonctl: " << token.status().message() << "\n";
    return 2;
  }
  options.token = *std::move(token);

  ctl::Ctl ctl(options);
  std::string command = app.get_subcommands().front()->get_name();
  if (command == "show") return ctl.Show(xid);
  if (command == "participants") return ctl.Participants();
  if (command == "stats") return ctl.Stats();
  if (command == "topology") return ctl.Topology();
  if (command == "drain") {
    drain.set_shard(drain_shard);
    drain.set_undo(drain_undo);
    drain.set_actor(ctl::Actor());
    return ctl.Drain(drain);
  }
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
  for (const std::string& word : statuses) {
    if (!AddStatusWord(word, &request)) {
      std::cerr << "batonctl: unknown --status; see batonctl list --help\n";
      return 2;
    }
  }
  if (!protocol.empty()) {
    v1::Protocol p;
    if (!ProtocolWord(protocol, &p)) {
      std::cerr << "batonctl: --protocol must be 2pc, tcc or saga\n";
      return 2;
    }
    request.set_protocol(p);
  }
  int64_t age_ms = 0;
  if (!older_than.empty()) {
    if (!ParseDuration(older_than, &age_ms)) {
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
