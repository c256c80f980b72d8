// The bank invariant with PostgreSQL participants under random SIGKILLs.
// Concurrent transfers run across three bank services, each keeping its
// accounts in its own database on one real PostgreSQL server, while batond
// and the bank services are killed and restarted at random (the database
// server itself stays up, as it would in production). When the faults stop:
// every transaction is terminal, each account equals its seed plus exactly
// the committed transfers, the money is conserved, and pg_prepared_xacts is
// empty in every database.
//
// BATON_PG_CHAOS_SECONDS sets how long faults are injected (default 20).
#define BOOST_TEST_MODULE postgres_chaos
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "bank.grpc.pb.h"
#include "baton/propagation.h"
#include "tests/support/bank_cluster.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

constexpr int kBanks = 3;
constexpr int kAccountsPerBank = 4;
constexpr int64_t kSeed = 1000;
constexpr int kWorkers = 4;

std::string BankName(int bank) {
  return std::string("bank-") + char('a' + bank);
}
std::string Database(int bank) { return "chaos_" + std::string(1, 'a' + bank); }
std::string Account(int bank, int i) {
  return std::string(1, char('a' + bank)) + std::to_string(i);
}

struct Transfer {
  std::string xid;
  int from_bank, from_account, to_bank, to_account;
  int64_t amount;
  bool caller_saw_commit = false;
};

// What the workers did, for the final reckoning.
struct Journal {
  std::mutex mu;
  std::vector<Transfer> transfers;  // Guarded by mu.
};

// Runs random transfers (debit, credit, commit) until told to stop.
class Worker {
 public:
  Worker(int id, const std::string& coordinator,
         const std::vector<std::string>& banks, Journal* journal)
      : rng_(id * 104729 + 3), journal_(journal) {
    client_ = std::move(*TransactionClient::Connect(
        {.coordinator = coordinator, .call_timeout = 2s, .max_attempts = 2}));
    for (const std::string& address : banks) {
      stubs_.push_back(samples::bank::Bank::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials())));
    }
  }

  void RunUntil(const std::atomic<bool>& stop) {
    while (!stop.load()) RunOne();
  }

 private:
  void RunOne() {
    std::uniform_int_distribution<int> bank(0, kBanks - 1);
    std::uniform_int_distribution<int> account(0, kAccountsPerBank - 1);
    Transfer t{"",
               bank(rng_),
               account(rng_),
               bank(rng_),
               account(rng_),
               std::uniform_int_distribution<int64_t>(1, 50)(rng_)};
    if (t.from_bank == t.to_bank && t.from_account == t.to_account) return;
    v1::BeginRequest begin;
    begin.set_name("pg-chaos-transfer");
    begin.set_timeout_ms(5000);
    auto response = client_->BeginRaw(begin);
    if (!response.ok()) return;  // batond is down; nothing was begun.
    t.xid = response->xid();
    bool moved = Move(t.from_bank, t.from_account, t.amount, true, t.xid) &&
                 Move(t.to_bank, t.to_account, t.amount, false, t.xid);
    if (moved) {
      t.caller_saw_commit = client_->Commit(t.xid, false).ok();
    } else {
      client_->Rollback(t.xid, "a leg failed", false).IgnoreError();
    }
    std::lock_guard<std::mutex> lock(journal_->mu);
    journal_->transfers.push_back(t);
  }

  bool Move(int bank, int account, int64_t amount, bool debit,
            const std::string& xid) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 3s);
    InjectXid(&context, xid);
    samples::bank::MoveRequest request;
    request.set_account(Account(bank, account));
    request.set_amount(amount);
    samples::bank::MoveReply reply;
    auto* stub = stubs_[bank].get();
    return (debit ? stub->Debit(&context, request, &reply)
                  : stub->Credit(&context, request, &reply))
        .ok();
  }

  std::mt19937 rng_;
  Journal* journal_;
  std::unique_ptr<TransactionClient> client_;
  std::vector<std::unique_ptr<samples::bank::Bank::Stub>> stubs_;
};

BOOST_AUTO_TEST_CASE(money_is_conserved_and_nothing_stays_prepared) {
  const char* env = std::getenv("BATON_PG_CHAOS_SECONDS");
  const auto fault_time = std::chrono::seconds(env ? std::atoi(env) : 20);

  PgCluster server;
  BankCluster cluster;
  cluster.StartCoordinator();
  auto start_bank = [&](int b, bool seed) {
    std::vector<std::string> args = {
        "--resource",        BankName(b),
        "--postgres",        server.ConnInfo(Database(b)),
        "--lock-timeout-ms", "500"};
    for (int i = 0; seed && i < kAccountsPerBank; ++i) {
      args.push_back("--seed");
      args.push_back(Account(b, i) + "=" + std::to_string(kSeed));
    }
    cluster.StartService(BankName(b), "bank_service", args);
  };
  std::vector<std::string> addresses;
  for (int b = 0; b < kBanks; ++b) {
    server.CreateDatabase(Database(b));
    start_bank(b, true);
    addresses.push_back(cluster.BankAddress(BankName(b)));
  }

  Journal journal;
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.emplace_back([&, i] {
      Worker(i, cluster.CoordinatorAddress(), addresses, &journal)
          .RunUntil(stop);
    });
  }

  std::mt19937 rng(4242);
  int coordinator_kills = 0, participant_kills = 0;
  auto fault_end = std::chrono::steady_clock::now() + fault_time;
  while (std::chrono::steady_clock::now() < fault_end) {
    // Pacing between faults; nothing waits on this for correctness.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(300, 1500)(rng)));
    int victim = std::uniform_int_distribution<int>(0, kBanks)(rng);
    ChildProcess& process = victim == kBanks ? cluster.coordinator()
                                             : cluster.bank(BankName(victim));
    process.Signal(SIGKILL);
    BOOST_REQUIRE(process.WaitExit(10s) >= 0);
    if (victim == kBanks) {
      cluster.StartCoordinator();
      ++coordinator_kills;
    } else {
      start_bank(victim, false);
      ++participant_kills;
    }
  }
  stop = true;
  for (std::thread& w : workers) w.join();
  auto faults_stopped = std::chrono::steady_clock::now();

  // Every prepared transaction is resolved: none left holding locks.
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              for (int b = 0; b < kBanks; ++b) {
                                if (!server.PreparedGids(Database(b)).empty())
                                  return false;
                              }
                              return true;
                            },
                            60s),
                        "prepared transactions remain 60 s after the faults "
                        "stopped\n"
                            << cluster.Logs());
  auto recovery_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - faults_stopped)
                         .count();

  std::map<std::string, v1::GlobalStatus> final_status;
  for (const Transfer& t : journal.transfers) {
    bool terminal = WaitFor(
        [&] {
          auto txn = cluster.GetTransaction(t.xid);
          if (!txn.ok()) return false;
          final_status[t.xid] = txn->status();
          return txn->status() == v1::GLOBAL_STATUS_COMMITTED ||
                 txn->status() == v1::GLOBAL_STATUS_ROLLED_BACK;
        },
        60s);
    BOOST_REQUIRE_MESSAGE(
        terminal, "xid " << t.xid << " stuck in "
                         << v1::GlobalStatus_Name(final_status[t.xid]) << "\n"
                         << cluster.Logs());
  }

  std::map<std::pair<int, int>, int64_t> expected;
  int committed = 0;
  for (const Transfer& t : journal.transfers) {
    if (t.caller_saw_commit) {
      BOOST_TEST(final_status[t.xid] == v1::GLOBAL_STATUS_COMMITTED, t.xid);
    }
    if (final_status[t.xid] != v1::GLOBAL_STATUS_COMMITTED) continue;
    ++committed;
    expected[{t.from_bank, t.from_account}] -= t.amount;
    expected[{t.to_bank, t.to_account}] += t.amount;
  }
  // Read from the databases themselves, after every branch resolved.
  int64_t total = 0;
  for (int b = 0; b < kBanks; ++b) {
    auto rows = server.Query(Database(b),
                             "SELECT id, balance FROM accounts ORDER BY id");
    BOOST_REQUIRE(rows.ok());
    BOOST_REQUIRE(rows->size() == kAccountsPerBank);
    for (int i = 0; i < kAccountsPerBank; ++i) {
      int64_t got = std::stoll((*rows)[i][1]);
      BOOST_TEST((*rows)[i][0] == Account(b, i));
      int64_t want = kSeed + expected[{b, i}];
      BOOST_TEST(got == want, Account(b, i));
      total += got;
    }
  }
  BOOST_TEST(total == kBanks * kAccountsPerBank * kSeed);
  std::cout << "postgres chaos: " << fault_time.count() << " s of faults, "
            << coordinator_kills << " batond kills, " << participant_kills
            << " participant kills; " << journal.transfers.size()
            << " transactions (" << committed
            << " committed); every prepared transaction resolved "
            << recovery_ms << " ms after the faults stopped" << std::endl;
  BOOST_TEST(committed > 0);
}

}  // namespace
}  // namespace baton::testing
