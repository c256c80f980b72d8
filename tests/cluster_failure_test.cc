// A node of three dies under its callers and participant. New transactions
// go to the other two at once; the dead shard's transactions wait for it,
// each finishes all committed or all rolled back once it is back, and no
// caller is told an outcome that did not happen. A participant that starts
// while the node is down gets that node's commands once it returns.
#define BOOST_TEST_MODULE cluster_failure
#include <signal.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "baton/client.h"
#include "baton/participant.h"
#include "common/stable_hash.h"
#include "tests/support/recording_resource.h"
#include "tests/support/three_nodes.h"

namespace baton {
namespace {

using Outcome = RecordingResource::Outcome;

// A transaction begun on `shard`: its key drawn until KeyShard puts it
// there.
std::string BeginOnShard(TransactionClient& client, uint32_t shard,
                         std::chrono::milliseconds timeout) {
  std::string key = client.NewIdempotencyKey();
  while (KeyShard(key, {0, 1, 2}) != shard) key = client.NewIdempotencyKey();
  v1::BeginRequest request;
  request.set_name("dies-with-its-node");
  request.set_request_id(key);
  request.set_timeout_ms(timeout.count());
  auto begun = client.BeginRaw(request);
  BOOST_REQUIRE_MESSAGE(begun.ok(), begun.status().ToString());
  BOOST_REQUIRE(begun->xid()[0] == static_cast<char>('0' + shard));
  return begun->xid();
}

// The same, with one branch of "ledger" enlisted through `participant`.
std::string BeginWithBranchOn(TransactionClient& client,
                              Participant& participant, uint32_t shard,
                              std::chrono::milliseconds timeout) {
  std::string xid = BeginOnShard(client, shard, timeout);
  BOOST_REQUIRE(participant.Enlist(xid, "ledger", "").ok());
  return xid;
}

v1::GlobalStatus StatusOf(TransactionClient& client, const std::string& xid) {
  auto record = client.GetTransaction(xid);
  return record.ok() ? record->status() : v1::GLOBAL_STATUS_UNSPECIFIED;
}

BOOST_AUTO_TEST_CASE(the_others_take_new_work_and_the_dead_shard_finishes) {
  ThreeNodes cluster({.cluster_shards = 3});
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  RecordingResource ledger;
  auto participant = Participant::Create(
      {.seeds = {cluster.node(0).address}, .service = "ledger"});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("ledger", &ledger).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(0).address}, .call_timeout = 2s});
  BOOST_REQUIRE(client.ok());
  TransactionClient& c = **client;

  // On shard 2 when it dies: one transaction decided whose phase two the
  // participant has not applied, and one with a prepared branch and no
  // decision.
  ledger.HoldCommits(true);
  std::string decided = BeginWithBranchOn(c, **participant, 2, 60s);
  auto decision = c.Commit(decided, /*wait=*/false);
  BOOST_REQUIRE(decision.ok());
  BOOST_REQUIRE(*decision == v1::GLOBAL_STATUS_COMMITTING);
  std::string undecided = BeginWithBranchOn(c, **participant, 2, 60s);

  cluster.process(2).Signal(SIGKILL);
  BOOST_REQUIRE(WaitFor([&] { return cluster.process(2).HasExited(); }, 10s));
  // Every Begin after the kill succeeds on another node within a second,
  // the first included (a third of fresh keys belong to the dead shard
  // until the client learns it is gone): the client neither waits for the
  // dead node nor for its peers to notice.
  std::chrono::milliseconds slowest{0};
  for (int i = 0; i < 20; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto txn = c.Begin("while-node-2-is-dead");
    slowest =
        std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start));
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    BOOST_TEST((*txn)->xid()[0] != '2');
    BOOST_TEST((*txn)->Commit().ok());
  }
  std::cout << "slowest Begin after the kill: " << slowest.count() << " ms"
            << std::endl;
  BOOST_TEST(slowest < 1s);
  // The dead shard's transactions wait: a decision asked for now is not
  // made up by another node.
  auto early = c.Commit(undecided, /*wait=*/false);
  BOOST_TEST(!early.ok());
  BOOST_TEST(absl::IsUnavailable(early.status()), early.status());

  ledger.HoldCommits(false);
  cluster.Restart(2);
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  // The decision stands: phase two resumes and the participant commits.
  BOOST_TEST(WaitFor(
      [&] { return StatusOf(c, decided) == v1::GLOBAL_STATUS_COMMITTED; },
      30s));
  BOOST_TEST((ledger.OutcomeOf(decided) == Outcome::kCommitted));
  // The undecided one was never decided: the restart rolls it back, as a
  // restart of a lone batond does, its branch is told so, and a caller
  // asking to commit it now is refused with what became of it.
  BOOST_TEST(WaitFor(
      [&] { return StatusOf(c, undecided) == v1::GLOBAL_STATUS_ROLLED_BACK; },
      30s));
  BOOST_TEST(WaitFor(
      [&] { return ledger.OutcomeOf(undecided) == Outcome::kRolledBack; },
      20s));
  auto late = c.Commit(undecided, /*wait=*/false);
  BOOST_TEST(absl::IsFailedPrecondition(late.status()), late.status());
  BOOST_TEST(late.status().message().find("rolled back") != std::string::npos);
  // New transactions reach shard 2 again.
  BOOST_TEST(WaitFor(
      [&] {
        auto txn = c.Begin("after-the-restart");
        return txn.ok() && (*txn)->Commit().ok() && (*txn)->xid()[0] == '2';
      },
      20s));
}

// A participant that starts while a node is down attaches to the others,
// and to that node once it is back, which then sends it the phase two it
// owes: a branch registered and prepared before the node died, of a
// transaction decided then.
BOOST_AUTO_TEST_CASE(a_participant_started_while_a_node_is_down_gets_its_work) {
  ThreeNodes cluster({.cluster_shards = 3});
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(0).address}, .call_timeout = 2s});
  BOOST_REQUIRE(client.ok());
  TransactionClient& c = **client;
  std::string xid = BeginOnShard(c, 2, 60s);
  v1::RegisterBranchRequest branch;
  branch.set_xid(xid);
  branch.set_resource("ledger");
  auto id = c.RegisterBranch(branch);
  BOOST_REQUIRE_MESSAGE(id.ok(), id.status().ToString());
  BOOST_REQUIRE(
      c.ReportBranch(xid, *id, v1::PHASE_ONE_OUTCOME_PREPARED, "").ok());
  auto decision = c.Commit(xid, /*wait=*/false);
  BOOST_REQUIRE(decision.ok());
  BOOST_REQUIRE(*decision == v1::GLOBAL_STATUS_COMMITTING);

  cluster.process(2).Signal(SIGKILL);
  BOOST_REQUIRE(
      WaitFor([&] { return cluster.AllAgree(2, v1::SHARD_STATE_DOWN); }, 20s));
  RecordingResource ledger;
  auto participant = Participant::Create({.seeds = {cluster.node(0).address},
                                          .topology_refresh = 200ms,
                                          .service = "ledger"});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("ledger", &ledger).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  // Not attached everywhere while node 2 is down.
  BOOST_TEST(!(*participant)->WaitAttached(500ms));

  cluster.Restart(2);
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  BOOST_TEST(WaitFor(
      [&] { return ledger.OutcomeOf(xid) == Outcome::kCommitted; }, 20s));
  BOOST_TEST(WaitFor(
      [&] { return StatusOf(c, xid) == v1::GLOBAL_STATUS_COMMITTED; }, 20s));
}

}  // namespace
}  // namespace baton
