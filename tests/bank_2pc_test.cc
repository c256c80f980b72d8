// Multi-process 2PC scenarios: batond, two bank services and bank_client as
// real processes on 127.0.0.1. After every scenario the money is conserved
// and no hold is left behind.
#define BOOST_TEST_MODULE bank_2pc
#include <boost/test/unit_test.hpp>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

constexpr int64_t kStart = 100;

// batond plus bank-a (alice) and bank-b (bob), each starting with 100.
struct TwoBanks {
  explicit TwoBanks(const std::vector<std::string>& coordinator_env = {},
                    const std::vector<std::string>& bank_a_env = {},
                    const std::vector<std::string>& coordinator_flags = {}) {
    cluster.StartCoordinator(coordinator_env, coordinator_flags);
    cluster.StartBank("bank-a", {"alice=100"}, bank_a_env);
    cluster.StartBank("bank-b", {"bob=100"});
  }

  // Both accounts settle at the expected balances, nothing is held, and the
  // total is what it was.
  void ExpectSettled(int64_t alice, int64_t bob) {
    BOOST_TEST(alice + bob == 2 * kStart);
    BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", alice),
               "alice did not settle at " << alice << "\n"
                                          << cluster.Logs());
    BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", bob),
               "bob did not settle at " << bob << "\n"
                                        << cluster.Logs());
  }

  void ExpectStatus(const std::string& xid, v1::GlobalStatus status) {
    BOOST_TEST(cluster.WaitForStatus(xid, status),
               "xid " << xid << " never became "
                      << v1::GlobalStatus_Name(status) << "\n"
                      << cluster.Logs());
  }

  BankCluster cluster;
};

BOOST_AUTO_TEST_CASE(commit_moves_the_money) {
  TwoBanks banks;
  auto t = banks.cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30);
  BOOST_TEST(t.exit_code == 0, t.output << banks.cluster.Logs());
  BOOST_TEST(t.outcome == "committed");
  banks.ExpectStatus(t.xid, v1::GLOBAL_STATUS_COMMITTED);
  banks.ExpectSettled(70, 130);
  auto txn = banks.cluster.GetTransaction(t.xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->branches_size() == 2);
  for (const v1::Branch& b : txn->branches()) {
    BOOST_TEST(b.status() == v1::BRANCH_STATUS_COMMITTED);
  }
}

BOOST_AUTO_TEST_CASE(rollback_leaves_the_balances_as_they_were) {
  TwoBanks banks;
  auto t = banks.cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30,
                                  {"--rollback"});
  BOOST_TEST(t.exit_code == 2, t.output);
  BOOST_TEST(t.outcome == "rolled-back");
  banks.ExpectStatus(t.xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  banks.ExpectSettled(100, 100);
}

BOOST_AUTO_TEST_CASE(an_overdraw_fails_in_prepare_and_rolls_back) {
  TwoBanks banks;
  auto t = banks.cluster.Transfer("bank-a", "alice", "bank-b", "bob", 500);
  BOOST_TEST(t.exit_code == 2, t.output);
  BOOST_TEST(t.output.find("insufficient funds") != std::string::npos,
             t.output);
  banks.ExpectStatus(t.xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  auto txn = banks.cluster.GetTransaction(t.xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_REQUIRE(txn->branches_size() == 1);  // The credit never ran.
  BOOST_TEST(txn->branches(0).status() == v1::BRANCH_STATUS_ROLLED_BACK);
  banks.ExpectSettled(100, 100);
}

BOOST_AUTO_TEST_CASE(several_transfers_add_up) {
  TwoBanks banks;
  for (int i = 0; i < 5; ++i) {
    auto t = banks.cluster.Transfer("bank-a", "alice", "bank-b", "bob", 10);
    BOOST_TEST(t.exit_code == 0, t.output);
  }
  auto back = banks.cluster.Transfer("bank-b", "bob", "bank-a", "alice", 5);
  BOOST_TEST(back.exit_code == 0, back.output);
  banks.ExpectSettled(55, 145);
}

// One batond hosting two shards: transfers spread over both, each shard's
// phase-two commands reach the same participants on the same streams, and
// every one commits promptly (colliding command ids across shards once
// left branches waiting out the 30 s command timeout).
BOOST_AUTO_TEST_CASE(transfers_spread_over_two_shards_all_commit) {
  TwoBanks banks({}, {}, {"--shards", "2"});
  constexpr int kThreads = 6, kEach = 4;
  std::mutex mu;
  std::set<std::string> shards_used;
  std::vector<std::string> xids;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kEach; ++j) {
        auto t = banks.cluster.Transfer("bank-a", "alice", "bank-b", "bob", 1);
        std::lock_guard<std::mutex> lock(mu);
        BOOST_TEST(t.outcome == "committed", t.output);
        xids.push_back(t.xid);
        shards_used.insert(t.xid.substr(0, t.xid.find('-')));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  BOOST_TEST((shards_used == std::set<std::string>{"0", "1"}));
  banks.ExpectSettled(kStart - kThreads * kEach, kStart + kThreads * kEach);
  // After a crash and a restart both shards' records are still found.
  banks.cluster.coordinator().Signal(SIGKILL);
  BOOST_REQUIRE(banks.cluster.coordinator().WaitExit(10s) != -1);
  banks.cluster.StartCoordinator({}, {"--shards", "2"});
  for (const std::string& xid : xids) {
    banks.ExpectStatus(xid, v1::GLOBAL_STATUS_COMMITTED);
  }
}

// Crashes of batond and of participants at every fault point, including
// the two the foundation asks for (a participant killed after prepare, batond
// killed after the decision), are in crash_test.cc.

}  // namespace
}  // namespace baton::testing
