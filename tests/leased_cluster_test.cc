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
#include <fstream>
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
  explicit Leased(uint32_t shards,
                  std::map<uint32_t, std::string> failpoints = {}) {
    postgres.CreateDatabase("baton");
    cluster = std::make_unique<ThreeNodes>(
        ClusterFlags{.cluster_shards = shards,
                     .failpoints = std::move(failpoints),
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

  // Whether the lease table reaches `owners` within `timeout`.
  bool OwnersBecome(const std::map<std::string, int>& owners,
                    std::chrono::milliseconds timeout) {
    return WaitFor([&] { return Owners() == owners; }, timeout);
  }

  testing::PgCluster postgres;
  std::unique_ptr<ThreeNodes> cluster;
};

BOOST_AUTO_TEST_CASE(three_nodes_share_twelve_shards_four_each) {
  Leased leased(12);
  const std::map<std::string, int> balanced = {
      {"node-0", 4}, {"node-1", 4}, {"node-2", 4}};
  BOOST_TEST(leased.OwnersBecome(balanced, 30s), leased.cluster->Logs());
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

// Two callers committing transfers with one branch each through the SDK,
// until Finish; what each was told is kept.
class Load {
 public:
  explicit Load(ThreeNodes& cluster)
      : seeds_({cluster.node(0).address, cluster.node(2).address,
                cluster.node(1).address}) {
    auto participant =
        Participant::Create({.seeds = seeds_, .service = "ledger"});
    BOOST_REQUIRE(participant.ok());
    participant_ = std::move(*participant);
    BOOST_REQUIRE(participant_->AddXaResource("ledger", &ledger_).ok());
    BOOST_REQUIRE(participant_->Start().ok());
    BOOST_REQUIRE(participant_->WaitAttached(20s));
    auto client =
        TransactionClient::Connect({.seeds = seeds_, .call_timeout = 3s});
    BOOST_REQUIRE(client.ok());
    client_ = std::move(*client);
    for (int i = 0; i < 2; ++i) callers_.emplace_back([this] { Call(); });
  }
  ~Load() { Finish(); }

  size_t committed() {
    absl::MutexLock lock(&mu_);
    return committed_.size();
  }
  // Waits until `more` transfers beyond those committed so far commit.
  bool CommitsGoOn(size_t more, std::chrono::seconds timeout) {
    const size_t from = committed();
    return WaitFor([&] { return committed() >= from + more; }, timeout);
  }

  void Finish() {
    stop_ = true;
    for (std::thread& t : callers_) {
      if (t.joinable()) t.join();
    }
  }

  // Every acknowledged outcome holds at the coordinator and at the
  // participant, and no transaction was told both.
  void CheckOutcomes() {
    Finish();
    absl::MutexLock lock(&mu_);
    std::cout << committed_.size() << " committed, " << rolled_back_.size()
              << " rolled back, " << errors_ << " calls failed" << std::endl;
    for (const std::string& xid : committed_) {
      BOOST_TEST(WaitFor(
                     [&] {
                       auto record = client_->GetTransaction(xid);
                       return record.ok() &&
                              record->status() == v1::GLOBAL_STATUS_COMMITTED &&
                              ledger_.Committed(xid);
                     },
                     30s),
                 xid);
    }
    for (const std::string& xid : rolled_back_) {
      BOOST_TEST(!ledger_.Committed(xid), xid);
    }
    BOOST_TEST(ledger_.Conflicts().empty());
  }

 private:
  void Call() {
    while (!stop_) {
      auto txn = client_->Begin("transfer");
      if (!txn.ok() ||
          !participant_->Enlist((*txn)->xid(), "ledger", "").ok()) {
        Failed();
        continue;
      }
      const std::string xid = (*txn)->xid();
      auto outcome = client_->Commit(xid, /*wait=*/false);
      absl::MutexLock lock(&mu_);
      if (outcome.ok() && (*outcome == v1::GLOBAL_STATUS_COMMITTING ||
                           *outcome == v1::GLOBAL_STATUS_COMMITTED)) {
        committed_.push_back(xid);
      } else if (outcome.ok() && *outcome == v1::GLOBAL_STATUS_ROLLED_BACK) {
        rolled_back_.push_back(xid);
      } else {
        ++errors_;
      }
    }
  }
  void Failed() {
    absl::MutexLock lock(&mu_);
    ++errors_;
  }

  std::vector<std::string> seeds_;
  DecisionLog ledger_;
  std::unique_ptr<Participant> participant_;
  std::unique_ptr<TransactionClient> client_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<std::string> committed_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> rolled_back_ ABSL_GUARDED_BY(mu_);
  int errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> callers_;
};

// Six shards after node-1 is gone.
const std::map<std::string, int> kWithoutNode1 = {{"node-0", 3}, {"node-2", 3}};

const std::map<std::string, int> kBalancedSix = {
    {"node-0", 2}, {"node-1", 2}, {"node-2", 2}};

BOOST_AUTO_TEST_CASE(a_node_killed_under_load_has_its_shards_moved) {
  Leased leased(6);
  ThreeNodes& cluster = *leased.cluster;
  BOOST_REQUIRE_MESSAGE(leased.OwnersBecome(kBalancedSix, 30s), cluster.Logs());
  Load load(cluster);
  BOOST_REQUIRE(load.CommitsGoOn(50, 30s));

  cluster.process(1).Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  BOOST_REQUIRE_MESSAGE(
      leased.OwnersBecome(kWithoutNode1,
                          std::chrono::milliseconds(kLeaseMs) + 5s),
      cluster.Logs());
  const auto moved = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  std::cout << "node-1's shards leased by the others " << moved.count()
            << " ms after its kill (lease " << kLeaseMs << " ms)" << std::endl;
  BOOST_TEST(load.CommitsGoOn(50, 20s));
  load.CheckOutcomes();
}

// The database goes away under load and comes back: nodes stop
// acknowledging, let their shards go, and once it answers write again by
// themselves, without a restart.
BOOST_AUTO_TEST_CASE(the_database_restarted_under_load) {
  Leased leased(6);
  ThreeNodes& cluster = *leased.cluster;
  BOOST_REQUIRE_MESSAGE(leased.OwnersBecome(kBalancedSix, 30s), cluster.Logs());
  Load load(cluster);
  BOOST_REQUIRE(load.CommitsGoOn(50, 30s));
  leased.postgres.Stop();
  // Nothing is acknowledged while it is down (a call already past its
  // commit may still be answered).
  BOOST_REQUIRE(WaitFor(
      [&] {
        const size_t before = load.committed();
        return !load.CommitsGoOn(1, 1s) && load.committed() == before;
      },
      10s));
  leased.postgres.Restart();
  BOOST_TEST(load.CommitsGoOn(50, 30s), cluster.Logs());
  BOOST_TEST(leased.OwnersBecome(kBalancedSix, 30s));
  for (uint32_t id = 0; id < 3; ++id) {
    BOOST_TEST(!cluster.process(id).HasExited(), id);
  }
  load.CheckOutcomes();
}

// The split-brain case: a node paused past its lease, then resumed. Its
// shards are served by the others meanwhile; its late writes are refused
// by the fencing check; it notices, drops those shards and rejoins.
BOOST_AUTO_TEST_CASE(a_node_paused_past_its_lease_is_fenced_and_rejoins) {
  Leased leased(6);
  ThreeNodes& cluster = *leased.cluster;
  BOOST_REQUIRE_MESSAGE(leased.OwnersBecome(kBalancedSix, 30s), cluster.Logs());
  Load load(cluster);
  BOOST_REQUIRE(load.CommitsGoOn(50, 30s));
  cluster.process(1).Signal(SIGSTOP);
  BOOST_REQUIRE_MESSAGE(
      leased.OwnersBecome(kWithoutNode1,
                          std::chrono::milliseconds(kLeaseMs) + 5s),
      cluster.Logs());
  BOOST_TEST(load.CommitsGoOn(50, 20s));
  cluster.process(1).Signal(SIGCONT);
  // It notices: by its renewal coming back without them, or by its own
  // write having hung past a lease while it was stopped.
  BOOST_TEST(WaitFor(
      [&] {
        const std::string log = cluster.process(1).Stderr();
        return log.find("lease lost") != std::string::npos ||
               log.find("letting its lease go") != std::string::npos;
      },
      10s));
  BOOST_TEST(leased.OwnersBecome(kBalancedSix, 30s), cluster.Logs());
  BOOST_TEST(load.CommitsGoOn(50, 20s));
  BOOST_TEST(!cluster.process(1).HasExited());
  load.CheckOutcomes();
}

// A node killed between a write's fencing check and its commit: the
// database drops the transaction with the connection, its locks go with
// it, and the others take the shards over.
BOOST_AUTO_TEST_CASE(a_crash_between_the_fencing_check_and_the_commit) {
  Leased leased(6, {{1, "store_between_fence_check_and_commit=40:crash"}});
  ThreeNodes& cluster = *leased.cluster;
  BOOST_REQUIRE_MESSAGE(leased.OwnersBecome(kBalancedSix, 30s), cluster.Logs());
  Load load(cluster);
  BOOST_REQUIRE_MESSAGE(
      WaitFor([&] { return cluster.process(1).HasExited(); }, 30s),
      cluster.Logs());
  BOOST_TEST(cluster.process(1).Stderr().find(
                 "failpoint store_between_fence_check_and_commit") !=
             std::string::npos);
  BOOST_REQUIRE_MESSAGE(
      leased.OwnersBecome(kWithoutNode1,
                          std::chrono::milliseconds(kLeaseMs) + 5s),
      cluster.Logs());
  BOOST_TEST(load.CommitsGoOn(50, 20s));
  load.CheckOutcomes();
}

// A node stalled there instead, holding its check's locks: the takeover
// waits until the database ends the stalled transaction, and the node,
// once it goes on, finds its commit lost with the session, drops every
// shard, reloads and rejoins.
BOOST_AUTO_TEST_CASE(a_stall_between_the_fencing_check_and_the_commit) {
  TempDir dir;
  const std::string release = (dir.path() / "release").string();
  Leased leased(6, {{1, "store_between_fence_check_and_commit=40:wait_file(" +
                            release + ")"}});
  ThreeNodes& cluster = *leased.cluster;
  BOOST_REQUIRE_MESSAGE(leased.OwnersBecome(kBalancedSix, 30s), cluster.Logs());
  Load load(cluster);
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              return cluster.process(1).Stderr().find(
                                         "waiting for") != std::string::npos;
                            },
                            30s),
                        cluster.Logs());
  BOOST_REQUIRE_MESSAGE(leased.OwnersBecome(kWithoutNode1, 30s),
                        cluster.Logs());
  BOOST_TEST(load.CommitsGoOn(50, 20s));
  { std::ofstream(release).put('\n'); }
  BOOST_TEST(leased.OwnersBecome(kBalancedSix, 30s), cluster.Logs());
  BOOST_TEST(load.CommitsGoOn(50, 20s));
  BOOST_TEST(!cluster.process(1).HasExited());
  load.CheckOutcomes();
}

}  // namespace
}  // namespace baton
