// Three batond nodes sharing one PostgreSQL store, their shards leased
// (docs/CLUSTER.md, the highly available mode): they share the shards out
// evenly, and a node killed under load has its shards served by the others
// within a lease and a few seconds, nothing acknowledged lost and nothing
// decided twice.
#define BOOST_TEST_MODULE leased_cluster
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "baton/client.h"
#include "baton/participant.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/three_nodes.h"

namespace baton {
namespace {

constexpr int64_t kLeaseMs = 2000;

// Every phase-two call it gets, by xid: what a participant was told.
class DecisionLog : public XaResource {
 public:
  absl::Status Prepare(const BranchContext&) override {
    return absl::OkStatus();
  }
  PhaseTwoResult Commit(const BranchContext& branch) override {
    absl::MutexLock lock(&mu_);
    commits_[branch.xid]++;
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Rollback(const BranchContext& branch) override {
    absl::MutexLock lock(&mu_);
    rollbacks_[branch.xid]++;
    return PhaseTwoResult::Done();
  }
  bool Committed(const std::string& xid) {
    absl::MutexLock lock(&mu_);
    return commits_.contains(xid);
  }
  bool RolledBack(const std::string& xid) {
    absl::MutexLock lock(&mu_);
    return rollbacks_.contains(xid);
  }
  // Transactions told both to commit and to roll back.
  std::vector<std::string> Conflicts() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const auto& [xid, n] : commits_) {
      if (rollbacks_.contains(xid)) out.push_back(xid);
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> commits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> rollbacks_ ABSL_GUARDED_BY(mu_);
};

struct Leased {
  explicit Leased(uint32_t shards) {
    postgres.CreateDatabase("baton");
    cluster = std::make_unique<ThreeNodes>(
        ClusterFlags{.cluster_shards = shards,
                     .extra_args = {"--store", "postgres", "--postgres",
                                    postgres.ConnInfo("baton"), "--lease-ms",
                                    std::to_string(kLeaseMs)}});
  }

  // Shards per owner, as the lease table says (expired leases included).
  std::map<std::string, int> Owners() {
    auto rows = postgres.Query(
        "baton",
        "SELECT coalesce(owner, ''), count(*) FROM batond_shard_leases "
        "GROUP BY 1");
    std::map<std::string, int> out;
    if (!rows.ok()) return out;
    for (const auto& row : *rows) out[row[0]] = std::stoi(row[1]);
    return out;
  }

  testing::PgCluster postgres;
  std::unique_ptr<ThreeNodes> cluster;
};

BOOST_AUTO_TEST_CASE(three_nodes_share_twelve_shards_four_each) {
  Leased leased(12);
  const std::map<std::string, int> balanced = {
      {"node-0", 4}, {"node-1", 4}, {"node-2", 4}};
  BOOST_TEST(WaitFor([&] { return leased.Owners() == balanced; }, 30s),
             leased.cluster->Logs());
  // Every node's topology shows all twelve served.
  BOOST_TEST(WaitFor(
      [&] {
        for (uint32_t id = 0; id < 3; ++id) {
          v1::Topology t = leased.cluster->Topology(id);
          if (t.shards_size() != 12) return false;
          for (const v1::TopologyShard& shard : t.shards()) {
            if (shard.state() != v1::SHARD_STATE_SERVING) return false;
          }
        }
        return true;
      },
      20s));
}

BOOST_AUTO_TEST_CASE(a_node_killed_under_load_has_its_shards_moved) {
  Leased leased(6);
  ThreeNodes& cluster = *leased.cluster;
  const std::map<std::string, int> balanced = {
      {"node-0", 2}, {"node-1", 2}, {"node-2", 2}};
  BOOST_REQUIRE_MESSAGE(
      WaitFor([&] { return leased.Owners() == balanced; }, 30s),
      cluster.Logs());
  std::vector<std::string> seeds = {cluster.node(0).address,
                                    cluster.node(2).address,
                                    cluster.node(1).address};
  DecisionLog ledger;
  auto participant = Participant::Create({.seeds = seeds, .service = "ledger"});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("ledger", &ledger).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  auto client =
      TransactionClient::Connect({.seeds = seeds, .call_timeout = 3s});
  BOOST_REQUIRE(client.ok());

  // Two callers commit transfers with one branch each, until told to stop.
  absl::Mutex mu;
  std::vector<std::string> committed, rolled_back;
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  auto caller = [&] {
    while (!stop) {
      auto txn = (*client)->Begin("transfer");
      if (!txn.ok()) {
        ++errors;
        continue;
      }
      const std::string xid = (*txn)->xid();
      if (!(*participant)->Enlist(xid, "ledger", "").ok()) {
        ++errors;
        continue;
      }
      auto outcome = (*client)->Commit(xid, /*wait=*/false);
      absl::MutexLock lock(&mu);
      if (outcome.ok() && (*outcome == v1::GLOBAL_STATUS_COMMITTING ||
                           *outcome == v1::GLOBAL_STATUS_COMMITTED)) {
        committed.push_back(xid);
      } else if (outcome.ok() && *outcome == v1::GLOBAL_STATUS_ROLLED_BACK) {
        rolled_back.push_back(xid);
      } else {
        ++errors;
      }
    }
  };
  std::thread first(caller), second(caller);
  BOOST_REQUIRE(WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return committed.size() >= 50;
      },
      30s));

  cluster.process(1).Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  const std::map<std::string, int> survivors = {{"node-0", 3}, {"node-2", 3}};
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return leased.Owners() == survivors; },
                                std::chrono::milliseconds(kLeaseMs) + 5s),
                        cluster.Logs());
  const auto moved = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  std::cout << "node-1's shards leased by the others " << moved.count()
            << " ms after its kill (lease " << kLeaseMs << " ms)" << std::endl;
  // And served: committed transfers keep coming after the move.
  size_t at_move;
  {
    absl::MutexLock lock(&mu);
    at_move = committed.size();
  }
  BOOST_TEST(WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return committed.size() >= at_move + 50;
      },
      20s));
  stop = true;
  first.join();
  second.join();

  // Every acknowledged outcome holds, at the coordinator and at the
  // participant, and nothing was told both.
  absl::MutexLock lock(&mu);
  std::cout << committed.size() << " committed, " << rolled_back.size()
            << " rolled back, " << errors.load() << " calls failed"
            << std::endl;
  for (const std::string& xid : committed) {
    BOOST_TEST(WaitFor(
                   [&] {
                     auto record = (*client)->GetTransaction(xid);
                     return record.ok() &&
                            record->status() == v1::GLOBAL_STATUS_COMMITTED &&
                            ledger.Committed(xid);
                   },
                   30s),
               xid);
  }
  for (const std::string& xid : rolled_back) {
    BOOST_TEST(!ledger.Committed(xid), xid);
  }
  BOOST_TEST(ledger.Conflicts().empty());
}

}  // namespace
}  // namespace baton
