// Recovery behaviour on real processes: retries with persisted attempts, the
// needs-attention state, overdue commands, immediate dispatch on reattach,
// presumed abort for in-doubt branches, and a restart with a backlog.
#define BOOST_TEST_MODULE recovery
#include <signal.h>

#include <boost/test/unit_test.hpp>

#include "samples/bank/ledger.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

const std::vector<std::string> kFailCommits = {
    "BATON_FAILPOINTS=participant_before_commit=error"};

v1::Transaction MustGet(BankCluster& cluster, const std::string& xid) {
  auto txn = cluster.GetTransaction(xid);
  BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
  return *txn;
}

BOOST_AUTO_TEST_CASE(
    failing_commits_retry_persist_attempts_and_need_attention) {
  BankCluster cluster;
  cluster.StartCoordinator({}, {"--retry-window-ms", "1000"});
  cluster.StartBank("bank-a", {"alice=100"}, kFailCommits);
  cluster.StartBank("bank-b", {"bob=100"});
  auto t =
      cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30, {"--no-wait"});
  BOOST_REQUIRE_MESSAGE(t.exit_code == 0, t.output);

  BOOST_REQUIRE(cluster.WaitForStatus(t.xid, v1::GLOBAL_STATUS_COMMIT_STUCK));
  v1::Transaction stuck = MustGet(cluster, t.xid);
  const v1::Branch& failing = stuck.branches(0);
  BOOST_TEST(failing.resource() == "bank-a");
  BOOST_TEST(failing.attempts() >= 2u);
  BOOST_TEST(failing.last_error().find("failpoint") != std::string::npos);
  BOOST_TEST(failing.next_retry_unix_ms() > 0);
  BOOST_TEST(stuck.reason().find("bank-a") != std::string::npos);
  BOOST_TEST(stuck.branches(1).status() == v1::BRANCH_STATUS_COMMITTED);

  // Attempts survive a coordinator restart.
  cluster.coordinator().Signal(SIGKILL);
  BOOST_REQUIRE(cluster.coordinator().WaitExit(10s) >= 0);
  cluster.StartCoordinator({}, {"--retry-window-ms", "1000"});
  BOOST_TEST(MustGet(cluster, t.xid).branches(0).attempts() >=
             failing.attempts());
  BOOST_TEST(MustGet(cluster, t.xid).status() ==
             v1::GLOBAL_STATUS_COMMIT_STUCK);

  // Once the participant recovers, a retry finishes the stuck transaction.
  cluster.bank("bank-a").Signal(SIGKILL);
  BOOST_REQUIRE(cluster.bank("bank-a").WaitExit(10s) >= 0);
  cluster.StartBank("bank-a", {});
  BOOST_TEST(cluster.WaitForStatus(t.xid, v1::GLOBAL_STATUS_COMMITTED));
  BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", 70));
  BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", 130));
}

BOOST_AUTO_TEST_CASE(
    a_reattached_participant_gets_its_command_without_waiting_out_backoff) {
  BankCluster cluster;
  // A one-hour backoff: only the reattach can deliver the commit in time.
  cluster.StartCoordinator(
      {}, {"--retry-initial-ms", "3600000", "--retry-max-ms", "3600000"});
  cluster.StartBank("bank-a", {"alice=100"}, kFailCommits);
  cluster.StartBank("bank-b", {"bob=100"});
  auto t =
      cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30, {"--no-wait"});
  BOOST_REQUIRE_MESSAGE(t.exit_code == 0, t.output);
  BOOST_REQUIRE(WaitFor(
      [&] { return MustGet(cluster, t.xid).branches(0).attempts() >= 1; },
      20s));
  cluster.bank("bank-a").Signal(SIGKILL);
  BOOST_REQUIRE(cluster.bank("bank-a").WaitExit(10s) >= 0);
  cluster.StartBank("bank-a", {});
  BOOST_TEST(cluster.WaitForStatus(t.xid, v1::GLOBAL_STATUS_COMMITTED));
  BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", 70));
}

BOOST_AUTO_TEST_CASE(an_unanswered_command_times_out_and_is_retried) {
  BankCluster cluster;
  cluster.StartCoordinator({}, {"--command-timeout-ms", "300"});
  // The first commit at bank-a hangs for 2 s; later ones go through.
  cluster.StartBank(
      "bank-a", {"alice=100"},
      {"BATON_FAILPOINTS=participant_before_commit=1:delay(2000)"});
  cluster.StartBank("bank-b", {"bob=100"});
  auto t =
      cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30, {"--no-wait"});
  BOOST_REQUIRE_MESSAGE(t.exit_code == 0, t.output);
  BOOST_TEST(cluster.WaitForStatus(t.xid, v1::GLOBAL_STATUS_COMMITTED));
  v1::Transaction done = MustGet(cluster, t.xid);
  BOOST_TEST(done.branches(0).attempts() >= 2u);
  BOOST_TEST(done.branches(0).last_error().find("no answer within 300 ms") !=
             std::string::npos);
  BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", 70));
  BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", 130));
}

BOOST_AUTO_TEST_CASE(in_doubt_branches_without_a_record_are_presumed_aborted) {
  BankCluster cluster;
  cluster.StartCoordinator();
  {
    // Holds prepared for transactions batond never recorded: one of its own
    // node (0) and one of another coordinator node (7).
    std::unique_ptr<samples::Ledger> ledger;
    BOOST_REQUIRE(samples::Ledger::Open((cluster.dir() / "bank-a").string(),
                                        {{"alice", 100}}, &ledger)
                      .ok());
    std::string move = samples::Ledger::EncodeMove("alice", -40);
    BOOST_REQUIRE(ledger->Prepare({"0-999-1", 1, "bank-a", move}).ok());
    BOOST_REQUIRE(ledger->Prepare({"7-1-1", 1, "bank-a", move}).ok());
  }
  cluster.StartBank("bank-a", {});
  BOOST_TEST(WaitFor(
      [&] {
        auto b = cluster.GetBalance("bank-a", "alice");
        return b.ok() && b->open_holds == 1 && b->held == 40;
      },
      20s));
  auto b = cluster.GetBalance("bank-a", "alice");
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->balance == 100);
}

BOOST_AUTO_TEST_CASE(
    a_restart_with_a_backlog_rolls_back_every_open_transaction) {
  BankCluster cluster;
  cluster.StartCoordinator();
  constexpr int kBacklog = 2000;
  std::vector<std::string> xids;
  for (int i = 0; i < kBacklog; ++i) {
    v1::BeginRequest begin;
    begin.set_name("backlog");
    auto r = cluster.client().BeginRaw(begin);
    BOOST_REQUIRE(r.ok());
    xids.push_back(r->xid());
  }
  cluster.coordinator().Signal(SIGKILL);
  BOOST_REQUIRE(cluster.coordinator().WaitExit(10s) >= 0);
  cluster.StartCoordinator();
  // New traffic is served while the backlog resumes.
  auto fresh = cluster.client().Begin("after-restart");
  BOOST_REQUIRE(fresh.ok());
  BOOST_TEST((*fresh)->Commit(/*wait=*/true).ok());
  for (const std::string& xid :
       {xids.front(), xids[kBacklog / 2], xids.back()}) {
    BOOST_TEST(cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK));
  }
}

}  // namespace
}  // namespace baton::testing
