// The bank invariant with PostgreSQL participants under random SIGKILLs.
// Concurrent transfers run across three bank services, each keeping its
// accounts in its own database on one real PostgreSQL server, while batond
// and the bank services are killed and restarted at random (the database
// server itself stays up, as it would in production). When the faults stop:
// every transaction is terminal, each account equals its seed plus exactly
// the committed transfers, every transfer the caller saw committed is
// committed, the money is conserved, and pg_prepared_xacts is empty in every
// database.
//
// The load, the fault loop and the reckoning are shared with chaos_test
// (tests/support/bank_chaos.h); here prepared branches and balances are read
// from the databases themselves.
//
// BATON_PG_CHAOS_SECONDS sets how long faults are injected (default 20).
#define BOOST_TEST_MODULE postgres_chaos
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <iostream>

#include "tests/support/bank_chaos.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

std::string Database(int bank) { return "chaos_" + std::string(1, 'a' + bank); }

// Starts (or restarts) bank b's service on its database. Only the first
// start seeds: a restart must find the committed balances, not reset them.
void StartBank(BankCluster& cluster, PgCluster& server, int b, bool seed) {
  std::vector<std::string> args = {
      "--resource",        ChaosBankName(b),
      "--postgres",        server.ConnInfo(Database(b)),
      "--lock-timeout-ms", "500"};
  for (const std::string& account : ChaosSeed(b)) {
    if (!seed) break;
    args.push_back("--seed");
    args.push_back(account);
  }
  cluster.StartService(ChaosBankName(b), "bank_service", args);
}

// Whether no database holds a prepared transaction, so none holds locks.
bool NothingPrepared(PgCluster& server) {
  for (int b = 0; b < kChaosBanks; ++b) {
    if (!server.PreparedGids(Database(b)).empty()) return false;
  }
  return true;
}

BOOST_AUTO_TEST_CASE(money_is_conserved_and_nothing_stays_prepared) {
  const char* env = std::getenv("BATON_PG_CHAOS_SECONDS");
  const auto fault_time = std::chrono::seconds(env ? std::atoi(env) : 20);

  PgCluster server;
  BankCluster cluster;
  cluster.StartCoordinator();
  std::vector<std::string> addresses;
  for (int b = 0; b < kChaosBanks; ++b) {
    server.CreateDatabase(Database(b));
    StartBank(cluster, server, b, true);
    addresses.push_back(cluster.BankAddress(ChaosBankName(b)));
  }

  TransferLoad load({.name = "pg-chaos-transfer", .workers = 4, .seed = 3},
                    cluster.CoordinatorAddress(), addresses);
  FaultCounts faults = InjectFaults(&cluster, fault_time, 4242, [&](int b) {
    StartBank(cluster, server, b, false);
  });
  std::vector<Transfer> transfers = load.Stop();
  auto faults_stopped = std::chrono::steady_clock::now();

  // Every prepared transaction is resolved: none left holding locks.
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return NothingPrepared(server); }, 60s),
                        "prepared transactions remain 60 s after the faults "
                        "stopped\n"
                            << cluster.Logs());
  int64_t recovery_ms = MillisecondsSince(faults_stopped);

  auto status = WaitForTerminal(&cluster, transfers, 60s);
  BOOST_REQUIRE_MESSAGE(status.ok(), status.status().message()
                                         << "\n"
                                         << cluster.Logs());

  Reckoning r = Reckon(transfers, *status);
  for (const std::string& xid : r.lost_commits) {
    BOOST_ERROR(xid << ": the caller saw it commit, the coordinator did not");
  }
  // Read from the databases themselves, after every branch resolved.
  int64_t total = 0;
  for (int b = 0; b < kChaosBanks; ++b) {
    auto rows = server.Query(Database(b),
                             "SELECT id, balance FROM accounts ORDER BY id");
    BOOST_REQUIRE(rows.ok());
    BOOST_REQUIRE(rows->size() == kChaosAccountsPerBank);
    for (int i = 0; i < kChaosAccountsPerBank; ++i) {
      int64_t got = std::stoll((*rows)[i][1]);
      BOOST_TEST((*rows)[i][0] == ChaosAccount(b, i));
      int64_t want = r.expected[{b, i}];
      BOOST_TEST(got == want, ChaosAccount(b, i));
      total += got;
    }
  }
  BOOST_TEST(total == kChaosTotal);
  std::cout << "postgres chaos: " << fault_time.count() << " s of faults, "
            << faults.coordinator_kills << " batond kills, "
            << faults.participant_kills << " participant kills; "
            << transfers.size() << " transactions (" << r.committed
            << " committed); every prepared transaction resolved "
            << recovery_ms << " ms after the faults stopped" << std::endl;
  BOOST_TEST(r.committed > 0);
}

}  // namespace
}  // namespace baton::testing
