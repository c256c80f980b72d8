// The bank invariant under random SIGKILLs. Concurrent transfers run across
// several bank processes while batond and the banks are killed and restarted
// at random. When the faults stop, every transaction must reach a terminal
// status within a bound, each account must equal its seed plus exactly the
// committed transfers (nothing lost, nothing applied twice), every transfer
// the caller saw committed must be committed, and no hold may remain.
//
// BATON_CHAOS_SECONDS sets how long faults are injected (default 30).
#define BOOST_TEST_MODULE chaos
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

namespace baton::testing {
namespace {

constexpr int kBanks = 3;
constexpr int kAccountsPerBank = 4;
constexpr int64_t kSeed = 1000;
constexpr int kWorkers = 6;

std::string BankName(int bank) {
  return std::string("bank-") + char('a' + bank);
}
std::string Account(int bank, int i) {
  return std::string(1, char('a' + bank)) + std::to_string(i);
}

struct Transfer {
  std::string xid;
  int from_bank, from_account, to_bank, to_account;
  int64_t amount;
  bool caller_saw_commit;
};

struct Ledger {
  std::mutex mu;
  std::vector<Transfer> transfers;
  std::atomic<int> begun{0}, caller_commits{0}, caller_failures{0};
};

class Worker {
 public:
  Worker(int id, const std::string& coordinator,
         const std::vector<std::string>& bank_addresses, Ledger* ledger)
      : rng_(id * 7919 + 17), ledger_(ledger) {
    auto client = TransactionClient::Connect(
        {.coordinator = coordinator, .call_timeout = 2s, .max_attempts = 2});
    client_ = std::move(*client);
    for (const std::string& address : bank_addresses) {
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
               std::uniform_int_distribution<int64_t>(1, 50)(rng_),
               false};
    if (t.from_bank == t.to_bank && t.from_account == t.to_account) return;
    v1::BeginRequest begin;
    begin.set_name("chaos-transfer");
    begin.set_timeout_ms(5000);
    auto response = client_->BeginRaw(begin);
    if (!response.ok()) {
      ++ledger_->caller_failures;
      return;
    }
    t.xid = response->xid();
    ++ledger_->begun;
    bool ok =
        Move(t.from_bank, Account(t.from_bank, t.from_account), -t.amount,
             t.xid) &&
        Move(t.to_bank, Account(t.to_bank, t.to_account), t.amount, t.xid);
    if (ok) {
      t.caller_saw_commit = client_->Commit(t.xid, false).ok();
    } else {
      client_->Rollback(t.xid, "a leg failed", false).IgnoreError();
    }
    if (t.caller_saw_commit) {
      ++ledger_->caller_commits;
    } else {
      ++ledger_->caller_failures;
    }
    std::lock_guard<std::mutex> lock(ledger_->mu);
    ledger_->transfers.push_back(t);
  }

  bool Move(int bank, const std::string& account, int64_t delta,
            const std::string& xid) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 3s);
    InjectXid(&context, xid);
    samples::bank::MoveRequest request;
    request.set_account(account);
    request.set_amount(delta < 0 ? -delta : delta);
    samples::bank::MoveReply reply;
    grpc::Status s = delta < 0
                         ? stubs_[bank]->Debit(&context, request, &reply)
                         : stubs_[bank]->Credit(&context, request, &reply);
    return s.ok();
  }

  std::mt19937 rng_;
  Ledger* ledger_;
  std::unique_ptr<TransactionClient> client_;
  std::vector<std::unique_ptr<samples::bank::Bank::Stub>> stubs_;
};

BOOST_AUTO_TEST_CASE(money_is_conserved_under_random_kills) {
  const char* env = std::getenv("BATON_CHAOS_SECONDS");
  const auto fault_time = std::chrono::seconds(env ? std::atoi(env) : 30);

  BankCluster cluster;
  cluster.StartCoordinator();
  std::vector<std::string> addresses;
  for (int b = 0; b < kBanks; ++b) {
    std::vector<std::string> seed;
    for (int i = 0; i < kAccountsPerBank; ++i) {
      seed.push_back(Account(b, i) + "=" + std::to_string(kSeed));
    }
    cluster.StartBank(BankName(b), seed);
    addresses.push_back(cluster.BankAddress(BankName(b)));
  }

  Ledger ledger;
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.emplace_back([&, i] {
      Worker(i, cluster.CoordinatorAddress(), addresses, &ledger)
          .RunUntil(stop);
    });
  }

  // Faults: kill a random process, restart it, repeat.
  std::mt19937 rng(12345);
  int coordinator_kills = 0, participant_kills = 0;
  auto fault_end = std::chrono::steady_clock::now() + fault_time;
  while (std::chrono::steady_clock::now() < fault_end) {
    // Pacing between faults; nothing waits on this for correctness.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(300, 1500)(rng)));
    int victim = std::uniform_int_distribution<int>(0, kBanks)(rng);
    if (victim == kBanks) {
      cluster.coordinator().Signal(SIGKILL);
      BOOST_REQUIRE(cluster.coordinator().WaitExit(10s) >= 0);
      cluster.StartCoordinator();
      ++coordinator_kills;
    } else {
      cluster.bank(BankName(victim)).Signal(SIGKILL);
      BOOST_REQUIRE(cluster.bank(BankName(victim)).WaitExit(10s) >= 0);
      cluster.StartBank(BankName(victim), {});
      ++participant_kills;
    }
  }
  stop = true;
  for (std::thread& w : workers) w.join();
  auto faults_stopped = std::chrono::steady_clock::now();

  // Recovered: no bank holds a prepared branch any more.
  BOOST_REQUIRE_MESSAGE(WaitFor(
                            [&] {
                              for (int b = 0; b < kBanks; ++b) {
                                auto h = cluster.GetBalance(BankName(b),
                                                            Account(b, 0));
                                if (!h.ok() || h->open_holds != 0) return false;
                              }
                              return true;
                            },
                            60s),
                        "holds remain 60 s after the faults stopped\n"
                            << cluster.Logs());
  auto recovery_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - faults_stopped)
                         .count();

  // Every transaction reaches a terminal status within the bound.
  std::map<std::string, v1::GlobalStatus> final_status;
  for (const Transfer& t : ledger.transfers) {
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

  // Balances equal the seed plus exactly the committed transfers.
  std::map<std::pair<int, int>, int64_t> expected;
  int committed = 0;
  for (const Transfer& t : ledger.transfers) {
    if (t.caller_saw_commit) {
      BOOST_TEST(final_status[t.xid] == v1::GLOBAL_STATUS_COMMITTED, t.xid);
    }
    if (final_status[t.xid] != v1::GLOBAL_STATUS_COMMITTED) continue;
    ++committed;
    expected[{t.from_bank, t.from_account}] -= t.amount;
    expected[{t.to_bank, t.to_account}] += t.amount;
  }
  int64_t total = 0;
  for (int b = 0; b < kBanks; ++b) {
    for (int i = 0; i < kAccountsPerBank; ++i) {
      int64_t want = kSeed + expected[{b, i}];
      BOOST_TEST(cluster.WaitForSettled(BankName(b), Account(b, i), want, 30s),
                 Account(b, i) << " should settle at " << want);
      auto got = cluster.GetBalance(BankName(b), Account(b, i));
      if (got.ok()) total += got->balance;
    }
  }
  BOOST_TEST(total == kBanks * kAccountsPerBank * kSeed);
  std::cout << "chaos: " << fault_time.count() << " s of faults, "
            << coordinator_kills << " batond kills, " << participant_kills
            << " participant kills; " << ledger.transfers.size()
            << " transactions (" << committed << " committed, "
            << ledger.transfers.size() - committed
            << " rolled back; caller saw " << ledger.caller_commits.load()
            << " commits); every hold resolved " << recovery_ms
            << " ms after the faults stopped" << std::endl;
  BOOST_TEST(committed > 0);
}

}  // namespace
}  // namespace baton::testing
