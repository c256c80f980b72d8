// The bank invariant under random SIGKILLs. Concurrent transfers run across
// several bank processes while batond and the banks are killed and restarted
// at random. When the faults stop, every transaction must reach a terminal
// status within a bound, each account must equal its seed plus exactly the
// committed transfers (nothing lost, nothing applied twice), every transfer
// the caller saw committed must be committed, and no hold may remain.
//
// The load, the fault loop and the reckoning are shared with
// postgres_chaos_test (tests/support/bank_chaos.h); here the banks keep
// their ledgers in LevelDB, so holds and balances are read through the
// bank's own Balance RPC.
//
// It runs against one batond and against a cluster of three nodes, where
// any node may be the one killed.
//
// BATON_CHAOS_SECONDS sets how long faults are injected (default 30 for one
// node, 25 for the cluster).
#define BOOST_TEST_MODULE chaos
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <set>

#include "tests/support/bank_chaos.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

// Whether every bank reports no open hold: each prepared branch resolved.
bool NoHoldsRemain(BankCluster& cluster) {
  for (int b = 0; b < kChaosBanks; ++b) {
    auto h = cluster.GetBalance(ChaosBankName(b), ChaosAccount(b, 0));
    if (!h.ok() || h->open_holds != 0) return false;
  }
  return true;
}

// The whole run against `nodes` batond nodes: a cluster when more than one,
// each node a victim of the fault loop like every bank. `setup` may set
// the cluster up further before it starts; `pauses` adds SIGSTOPs.
void RunChaos(int nodes, std::chrono::seconds fault_time,
              const std::function<void(BankCluster&)>& setup = nullptr,
              bool pauses = false) {
  BankCluster cluster;
  cluster.SetCoordinatorNodes(nodes);
  if (setup) setup(cluster);
  cluster.StartCoordinator();
  std::vector<std::string> addresses;
  for (int b = 0; b < kChaosBanks; ++b) {
    cluster.StartBank(ChaosBankName(b), ChaosSeed(b));
    addresses.push_back(cluster.BankAddress(ChaosBankName(b)));
  }

  TransferLoad load({.name = "chaos-transfer", .workers = 6, .seed = 17},
                    cluster.CoordinatorAddress(), addresses);
  // A restarted bank reopens its LevelDB; the seed applies to a first start.
  FaultCounts faults = InjectFaults(
      &cluster, fault_time, 12345,
      [&](int b) { cluster.StartBank(ChaosBankName(b), {}); }, pauses);
  std::vector<Transfer> transfers = load.Stop();
  auto faults_stopped = std::chrono::steady_clock::now();

  // Recovered: no bank holds a prepared branch any more.
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return NoHoldsRemain(cluster); }, 60s),
                        "holds remain 60 s after the faults stopped\n"
                            << cluster.Logs());
  int64_t recovery_ms = MillisecondsSince(faults_stopped);

  // Every transaction reaches a terminal status within the bound.
  auto status = WaitForTerminal(&cluster, transfers, 60s);
  BOOST_REQUIRE_MESSAGE(status.ok(), status.status().message()
                                         << "\n"
                                         << cluster.Logs());

  // Balances equal the seed plus exactly the committed transfers.
  Reckoning r = Reckon(transfers, *status);
  for (const std::string& xid : r.lost_commits) {
    BOOST_ERROR(xid << ": the caller saw it commit, the coordinator did not");
  }
  int64_t total = 0;
  for (const auto& [account, want] : r.expected) {
    const auto& [b, i] = account;
    BOOST_TEST(
        cluster.WaitForSettled(ChaosBankName(b), ChaosAccount(b, i), want, 30s),
        ChaosAccount(b, i) << " should settle at " << want);
    auto got = cluster.GetBalance(ChaosBankName(b), ChaosAccount(b, i));
    if (got.ok()) total += got->balance;
  }
  BOOST_TEST(total == kChaosTotal);

  auto caller_commits =
      std::count_if(transfers.begin(), transfers.end(),
                    [](const Transfer& t) { return t.caller_saw_commit; });
  std::set<char> shards;
  for (const Transfer& t : transfers) shards.insert(t.xid[0]);
  BOOST_TEST(shards.size() == static_cast<size_t>(cluster.cluster_shards()));
  std::cout << "chaos over " << nodes << " node(s): " << fault_time.count()
            << " s of faults, " << faults.coordinator_kills << " batond kills, "
            << faults.participant_kills << " participant kills, "
            << faults.pauses << " pauses; " << transfers.size()
            << " transactions (" << r.committed << " committed, "
            << transfers.size() - r.committed << " rolled back; caller saw "
            << caller_commits << " commits); every hold resolved "
            << recovery_ms << " ms after the faults stopped" << std::endl;
  BOOST_TEST(r.committed > 0);
}

std::chrono::seconds FaultTime(int fallback) {
  const char* env = std::getenv("BATON_CHAOS_SECONDS");
  return std::chrono::seconds(env ? std::atoi(env) : fallback);
}

BOOST_AUTO_TEST_CASE(money_is_conserved_under_random_kills) {
  RunChaos(1, FaultTime(30));
}

// Three nodes, one shard each; the transfers spread over them, and any node
// may die. A dead node's transfers wait for it and finish once it is back.
BOOST_AUTO_TEST_CASE(money_is_conserved_when_cluster_nodes_die) {
  RunChaos(3, FaultTime(25));
}

// Three nodes leasing four shards kept in one PostgreSQL: a node killed or
// paused past its lease has its shards taken over, and money is conserved
// all the same.
BOOST_AUTO_TEST_CASE(money_is_conserved_when_leased_nodes_die_and_stall) {
  PgCluster postgres;
  postgres.CreateDatabase("baton");
  RunChaos(
      3, FaultTime(25),
      [&](BankCluster& cluster) {
        cluster.SetClusterShards(4);
        cluster.SetCoordinatorFlags({"--store", "postgres", "--postgres",
                                     postgres.ConnInfo("baton"), "--lease-ms",
                                     "2000"});
      },
      /*pauses=*/true);
}

}  // namespace
}  // namespace baton::testing
