// batonctl against three nodes: list, stats and participants fanned out and
// merged, show and forced outcomes routed to the xid's owner, missing shards
// named (and a call about a dead node's shard told so), and a shard drained
// and undrained.
#define BOOST_TEST_MODULE cluster_admin
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "baton/client.h"
#include "baton/v1/admin_service.pb.h"
#include "common/grpc_status.h"
#include "common/stable_hash.h"
#include "common/wrong_shard.h"
#include "fmt/format.h"
#include "google/protobuf/struct.pb.h"
#include "tests/support/http_client.h"
#include "tests/support/three_nodes.h"

namespace baton {
namespace {

// The xids in a `batonctl list` table, in order.
std::vector<std::string> ListedXids(const std::string& table) {
  std::vector<std::string> xids;
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::string first = line.substr(0, line.find(' '));
    if (!first.empty() && std::isdigit(first[0])) xids.push_back(first);
  }
  return xids;
}

std::string PageToken(const std::string& table) {
  size_t at = table.find("--page-token ");
  if (at == std::string::npos) return "";
  size_t start = at + std::string("--page-token ").size();
  return table.substr(start, table.find('\n', start) - start);
}

// From any node, batonctl lists every node's transactions in one order and
// pages across them, sums stats, routes `show` to the owner, and names the
// shards of a node that does not answer instead of leaving them out.
BOOST_AUTO_TEST_CASE(batonctl_fans_out_and_names_missing_shards) {
  ThreeNodes cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  std::vector<std::string> begun;
  for (uint32_t id : {2u, 0u, 1u}) {
    for (int i = 0; i < 2; ++i)
      begun.push_back(BeginOn(cluster.node(id).address));
  }
  CtlRun first = Ctl(cluster, 1, {"list", "--limit", "4"});
  BOOST_REQUIRE_MESSAGE(first.code == 0, first.err);
  std::vector<std::string> listed = ListedXids(first.out);
  BOOST_REQUIRE(listed.size() == 4u);
  std::string token = PageToken(first.out);
  BOOST_REQUIRE(!token.empty());
  CtlRun second =
      Ctl(cluster, 1, {"list", "--limit", "4", "--page-token", token});
  BOOST_REQUIRE_MESSAGE(second.code == 0, second.err);
  for (const std::string& xid : ListedXids(second.out)) listed.push_back(xid);
  BOOST_TEST(PageToken(second.out).empty());
  // Every one once, shard by shard.
  BOOST_REQUIRE(listed.size() == 6u);
  BOOST_TEST(std::set<std::string>(listed.begin(), listed.end()) ==
             std::set<std::string>(begun.begin(), begun.end()));
  BOOST_TEST(std::is_sorted(
      listed.begin(), listed.end(),
      [](const std::string& a, const std::string& b) { return a[0] < b[0]; }));

  CtlRun stats = Ctl(cluster, 0, {"stats"});
  BOOST_REQUIRE_MESSAGE(stats.code == 0, stats.err);
  BOOST_TEST(stats.out.find("unfinished         6") != std::string::npos,
             stats.out);
  CtlRun show = Ctl(cluster, 0, {"show", begun[0]});
  BOOST_REQUIRE_MESSAGE(show.code == 0, show.err);
  BOOST_TEST(show.out.find(begun[0]) != std::string::npos);

  cluster.process(2).Signal(SIGKILL);
  BOOST_REQUIRE(
      WaitFor([&] { return cluster.AllAgree(2, v1::SHARD_STATE_DOWN); }, 20s));
  CtlRun partial = Ctl(cluster, 0, {"list"});
  BOOST_TEST(partial.code == 3);
  BOOST_TEST(ListedXids(partial.out).size() == 4u);
  BOOST_TEST(partial.err.find("missing shard(s) 2") != std::string::npos,
             partial.err);
  CtlRun partial_stats = Ctl(cluster, 0, {"stats"});
  BOOST_TEST(partial_stats.code == 3);
  BOOST_TEST(
      partial_stats.out.find("unfinished         4") != std::string::npos,
      partial_stats.out);
  BOOST_TEST(partial_stats.err.find("missing shard(s) 2") != std::string::npos,
             partial_stats.err);

  // Forced outcomes from any node reach the owner, while a node is down; one
  // about the dead node's shard is refused with what to do, not guessed.
  std::string on_shard_0 = begun[2], on_shard_1 = begun[4];
  BOOST_REQUIRE(on_shard_0[0] == '0' && on_shard_1[0] == '1');
  CtlRun commit =
      Ctl(cluster, 1, {"commit", on_shard_0, "--reason", "operator test"});
  BOOST_TEST(commit.code == 0, commit.err);
  CtlRun rollback =
      Ctl(cluster, 0, {"rollback", on_shard_1, "--reason", "operator test"});
  BOOST_TEST(rollback.code == 0, rollback.err);
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(0).address}, .max_attempts = 1});
  BOOST_REQUIRE(client.ok());
  BOOST_TEST(WaitFor(
      [&] {
        auto a = (*client)->GetTransaction(on_shard_0);
        auto b = (*client)->GetTransaction(on_shard_1);
        return a.ok() && b.ok() && a->status() == v1::GLOBAL_STATUS_COMMITTED &&
               b->status() == v1::GLOBAL_STATUS_ROLLED_BACK;
      },
      20s));
  CtlRun shown = Ctl(cluster, 1, {"show", on_shard_0});
  BOOST_TEST(shown.out.find("operator test") != std::string::npos, shown.out);
  CtlRun dead =
      Ctl(cluster, 0, {"commit", begun[0], "--reason", "operator test"});
  BOOST_TEST(dead.code != 0);
  BOOST_TEST(dead.err.find("owns shard 2") != std::string::npos, dead.err);
}

std::string QueryEscaped(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The console on any node spans the cluster as batonctl does: counts and
// the chart summed, one listing paged across every node, a transaction
// shown and acted on at its owner, and a node that does not answer named
// with its shards.
BOOST_AUTO_TEST_CASE(the_console_on_any_node_spans_the_cluster) {
  ThreeNodes cluster({.console = true});
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  std::vector<std::string> begun;
  for (uint32_t id : {2u, 0u, 1u}) {
    for (int i = 0; i < 2; ++i)
      begun.push_back(BeginOn(cluster.node(id).address));
  }
  testing::ConsoleSession console(cluster.node(1).console_port);
  testing::HttpReply signed_in = console.SignIn(kAdminToken);
  BOOST_REQUIRE_MESSAGE(signed_in.status == 200, signed_in.body);

  testing::HttpReply overview = console.Get("/api/overview");
  BOOST_REQUIRE_MESSAGE(overview.status == 200, overview.body);
  google::protobuf::Struct parsed;
  BOOST_REQUIRE(testing::ParseJsonBody(overview.body, &parsed));
  const auto& fields = parsed.fields();
  BOOST_TEST(fields.at("stats")
                     .struct_value()
                     .fields()
                     .at("live_transactions")
                     .string_value() == "6",
             overview.body);
  BOOST_TEST(fields.at("topology")
                 .struct_value()
                 .fields()
                 .at("nodes")
                 .list_value()
                 .values_size() == 3);
  BOOST_TEST(fields.at("missing").list_value().values_size() == 0);
  // The chart adds up the six begun on three nodes, once each node has
  // counted its second.
  auto begun_in_chart = [&] {
    google::protobuf::Struct body;
    if (!testing::ParseJsonBody(console.Get("/api/overview").body, &body)) {
      return 0.0;
    }
    double sum = 0;
    for (const auto& second : body.fields().at("rate").list_value().values()) {
      sum += second.struct_value().fields().at("begun").number_value();
    }
    return sum;
  };
  BOOST_TEST(WaitFor([&] { return begun_in_chart() == 6; }, 10s),
             begun_in_chart() << " begun in the chart");

  // Pages of 3 from nodes holding 2 each: the second node's page is taken
  // in part, so the console asks it again for its own token.
  std::vector<std::string> listed;
  std::string token;
  for (int page = 0; page < 2; ++page) {
    testing::HttpReply list = console.Get(
        "/api/transactions?limit=3" +
        (token.empty() ? "" : "&page_token=" + QueryEscaped(token)));
    BOOST_REQUIRE_MESSAGE(list.status == 200, list.body);
    v1::ListTransactionsResponse response;
    BOOST_REQUIRE(testing::ParseJsonBody(list.body, &response));
    BOOST_TEST(response.transactions_size() == 3);
    for (const v1::Transaction& t : response.transactions()) {
      listed.push_back(t.xid());
    }
    token = response.next_page_token();
    BOOST_TEST((page == 0) == !token.empty(), list.body);
  }
  BOOST_REQUIRE(listed.size() == 6u);
  BOOST_TEST(std::set<std::string>(listed.begin(), listed.end()) ==
             std::set<std::string>(begun.begin(), begun.end()));

  // begun[0] is on shard 2, so node 2 answers for it.
  testing::HttpReply shown = console.Get("/api/transactions/" + begun[0]);
  BOOST_REQUIRE_MESSAGE(shown.status == 200, shown.body);
  v1::Transaction one;
  BOOST_REQUIRE(testing::ParseJsonBody(shown.body, &one));
  BOOST_TEST(one.xid() == begun[0]);
  testing::HttpReply rolled_back =
      console.Post("/api/transactions/" + begun[0] + "/force-rollback",
                   R"({"reason": "console across nodes"})");
  BOOST_REQUIRE_MESSAGE(rolled_back.status == 200, rolled_back.body);
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(2).address}, .max_attempts = 1});
  BOOST_REQUIRE(client.ok());
  BOOST_TEST(WaitFor(
      [&] {
        auto t = (*client)->GetTransaction(begun[0]);
        return t.ok() && t->status() == v1::GLOBAL_STATUS_ROLLED_BACK &&
               t->audit_size() == 1 && t->audit(0).actor() == "console";
      },
      20s));

  cluster.process(2).Signal(SIGKILL);
  BOOST_REQUIRE(
      WaitFor([&] { return cluster.AllAgree(2, v1::SHARD_STATE_DOWN); }, 20s));
  testing::HttpReply partial = console.Get("/api/transactions");
  BOOST_REQUIRE_MESSAGE(partial.status == 200, partial.body);
  v1::ListTransactionsResponse rest;
  BOOST_REQUIRE(testing::ParseJsonBody(partial.body, &rest));
  BOOST_TEST(rest.transactions_size() == 4);
  BOOST_TEST(Has(partial.body, R"("missing":[{"node":2,)"), partial.body);
  BOOST_TEST(Has(partial.body, R"("shards":[2])"), partial.body);
  for (const char* target : {"/api/overview", "/api/participants"}) {
    testing::HttpReply r = console.Get(target);
    BOOST_TEST(r.status == 200, r.body);
    BOOST_TEST(Has(r.body, R"("missing":[{"node":2,)"), r.body);
  }
  testing::HttpReply gone = console.Get("/api/transactions/" + begun[1]);
  BOOST_TEST(gone.status == 503, gone.body);
  BOOST_TEST(Has(gone.body, "did not answer"), gone.body);
}

// A drained shard takes no new transaction (the SDK's go to the others), its
// open ones finish, it stays drained through a kill -9, and --undo ends it.
BOOST_AUTO_TEST_CASE(a_drained_shard_takes_no_new_transactions_until_undone) {
  ThreeNodes cluster({.cluster_shards = 3});
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  std::string open = BeginOn(cluster.node(1).address);
  CtlRun drained = Ctl(cluster, 0, {"drain", "1", "--reason", "scale down"});
  BOOST_REQUIRE_MESSAGE(drained.code == 0, drained.err);
  BOOST_TEST(drained.out.find("draining, 1 unfinished") != std::string::npos,
             drained.out);
  BOOST_REQUIRE(WaitFor(
      [&] { return ShardIs(cluster, 1, v1::SHARD_STATE_DRAINING); }, 20s));

  auto stub = Transactions(cluster.node(1).address);
  {
    grpc::ClientContext context;
    v1::BeginRequest keyless;
    keyless.set_name("keyless");
    v1::BeginResponse ignored;
    grpc::Status s = stub->Begin(&context, keyless, &ignored);
    BOOST_TEST(static_cast<int>(s.error_code()) ==
               static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
    BOOST_TEST(s.error_message().find("draining") != std::string::npos);
  }
  std::string key = "order-0";
  for (int i = 1; KeyShard(key, {0, 1, 2}) != 1; ++i) {
    key = "order-" + std::to_string(i);
  }
  {
    grpc::ClientContext context;
    v1::BeginRequest keyed;
    keyed.set_name("keyed");
    keyed.set_request_id(key);
    v1::BeginResponse ignored;
    grpc::Status s = stub->Begin(&context, keyed, &ignored);
    std::optional<v1::WrongShard> refusal = WrongShardOf(FromRichGrpcStatus(s));
    BOOST_REQUIRE(refusal.has_value());
    BOOST_TEST(refusal->draining());
    BOOST_TEST(refusal->shard() == 1u);
  }
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(0).address}, .max_attempts = 1});
  BOOST_REQUIRE(client.ok());
  for (int i = 0; i < 30; ++i) {
    auto txn = (*client)->Begin("while draining");
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    BOOST_TEST((*txn)->xid()[0] != '1');
    BOOST_TEST((*txn)->Commit().ok());
  }
  // What it holds still finishes.
  BOOST_TEST((*client)->Commit(open, /*wait=*/true).ok());

  cluster.process(1).Signal(SIGKILL);
  cluster.Restart(1);
  BOOST_REQUIRE(WaitFor(
      [&] { return ShardIs(cluster, 1, v1::SHARD_STATE_DRAINING); }, 20s));

  CtlRun undone = Ctl(cluster, 2, {"drain", "1", "--undo"});
  BOOST_REQUIRE_MESSAGE(undone.code == 0, undone.err);
  BOOST_TEST(undone.out.find("serving") != std::string::npos, undone.out);
  BOOST_REQUIRE(WaitFor(
      [&] { return ShardIs(cluster, 1, v1::SHARD_STATE_SERVING); }, 20s));
  BOOST_TEST(WaitFor(
      [&] {
        auto txn = (*client)->Begin("after");
        return txn.ok() && (*txn)->Commit().ok() && (*txn)->xid()[0] == '1';
      },
      20s));
}

}  // namespace
}  // namespace baton
