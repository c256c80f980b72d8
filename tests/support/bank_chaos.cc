#include "tests/support/bank_chaos.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <memory>
#include <random>
#include <stdexcept>

#include "absl/status/status.h"
#include "bank.grpc.pb.h"
#include "baton/propagation.h"

namespace baton::testing {

std::string ChaosBankName(int bank) {
  return std::string("bank-") + char('a' + bank);
}

std::string ChaosAccount(int bank, int i) {
  return std::string(1, char('a' + bank)) + std::to_string(i);
}

std::vector<std::string> ChaosSeed(int bank) {
  std::vector<std::string> seed;
  for (int i = 0; i < kChaosAccountsPerBank; ++i) {
    seed.push_back(ChaosAccount(bank, i) + "=" + std::to_string(kChaosSeed));
  }
  return seed;
}

// One thread's client and stubs. Not shared: each worker owns its own
// channels, so a killed bank stalls only the workers that were calling it.
class TransferLoad::Worker {
 public:
  Worker(const Options& options, int id, const std::string& coordinator,
         const std::vector<std::string>& bank_addresses, TransferLoad* load)
      : name_(options.name), rng_(options.seed + id), load_(load) {
    // Short calls and few attempts: a dead batond should fail the transfer
    // quickly, not hold the worker through a restart.
    client_ = std::move(*TransactionClient::Connect(
        {.coordinator = coordinator, .call_timeout = 2s, .max_attempts = 2}));
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
    std::uniform_int_distribution<int> bank(0, kChaosBanks - 1);
    std::uniform_int_distribution<int> account(0, kChaosAccountsPerBank - 1);
    Transfer t;
    t.from_bank = bank(rng_);
    t.from_account = account(rng_);
    t.to_bank = bank(rng_);
    t.to_account = account(rng_);
    t.amount = std::uniform_int_distribution<int64_t>(1, 50)(rng_);
    if (t.from_bank == t.to_bank && t.from_account == t.to_account) return;
    v1::BeginRequest begin;
    begin.set_name(name_);
    begin.set_timeout_ms(5000);
    // As the SDK's Begin: a fresh key, on a shard the client believes is
    // serving, so over many nodes new transfers spread and avoid a dead one.
    begin.set_request_id(client_->NewIdempotencyKey());
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
    // Journaled whatever happened: an xid the caller gave up on may still
    // commit through recovery, and the reckoning must count it then.
    load_->Record(t);
  }

  bool Move(int bank, int account, int64_t amount, bool debit,
            const std::string& xid) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 3s);
    InjectXid(&context, xid);
    samples::bank::MoveRequest request;
    request.set_account(ChaosAccount(bank, account));
    request.set_amount(amount);
    samples::bank::MoveReply reply;
    auto* stub = stubs_[bank].get();
    return (debit ? stub->Debit(&context, request, &reply)
                  : stub->Credit(&context, request, &reply))
        .ok();
  }

  const std::string name_;
  std::mt19937 rng_;
  TransferLoad* const load_;
  std::unique_ptr<TransactionClient> client_;
  std::vector<std::unique_ptr<samples::bank::Bank::Stub>> stubs_;
};

TransferLoad::TransferLoad(const Options& options,
                           const std::string& coordinator,
                           const std::vector<std::string>& bank_addresses) {
  for (int i = 0; i < options.workers; ++i) {
    threads_.emplace_back([=, this] {
      Worker(options, i, coordinator, bank_addresses, this).RunUntil(stop_);
    });
  }
}

TransferLoad::~TransferLoad() { Stop(); }

std::vector<Transfer> TransferLoad::Stop() {
  stop_ = true;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  return transfers_;
}

void TransferLoad::Record(const Transfer& transfer) {
  std::lock_guard<std::mutex> lock(mu_);
  transfers_.push_back(transfer);
}

FaultCounts InjectFaults(BankCluster* cluster,
                         std::chrono::milliseconds duration, uint32_t seed,
                         const std::function<void(int bank)>& restart_bank,
                         bool pauses) {
  std::mt19937 rng(seed);
  FaultCounts counts;
  auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
    // Pacing between faults; nothing waits on this for correctness.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(300, 1500)(rng)));
    int victim = std::uniform_int_distribution<int>(
        0, kChaosBanks + cluster->coordinator_nodes() - 1)(rng);
    bool coordinator = victim >= kChaosBanks;
    ChildProcess& process = coordinator
                                ? cluster->coordinator(victim - kChaosBanks)
                                : cluster->bank(ChaosBankName(victim));
    if (pauses && std::uniform_int_distribution<int>(0, 2)(rng) == 0) {
      process.Signal(SIGSTOP);
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::uniform_int_distribution<int>(500, 3500)(rng)));
      process.Signal(SIGCONT);
      ++counts.pauses;
      continue;
    }
    process.Signal(SIGKILL);
    // Restarting before the old process is gone would race it for the port.
    if (process.WaitExit(10s) < 0) {
      throw std::runtime_error("a SIGKILLed process did not exit\n" +
                               cluster->Logs());
    }
    if (coordinator) {
      cluster->StartCoordinator();
      ++counts.coordinator_kills;
    } else {
      restart_bank(victim);
      ++counts.participant_kills;
    }
  }
  return counts;
}

absl::StatusOr<std::map<std::string, v1::GlobalStatus>> WaitForTerminal(
    BankCluster* cluster, const std::vector<Transfer>& transfers,
    std::chrono::milliseconds timeout) {
  std::map<std::string, v1::GlobalStatus> status;
  for (const Transfer& t : transfers) {
    bool terminal = WaitFor(
        [&] {
          auto txn = cluster->GetTransaction(t.xid);
          if (!txn.ok()) return false;
          status[t.xid] = txn->status();
          return txn->status() == v1::GLOBAL_STATUS_COMMITTED ||
                 txn->status() == v1::GLOBAL_STATUS_ROLLED_BACK;
        },
        timeout);
    if (!terminal) {
      return absl::DeadlineExceededError("xid " + t.xid + " stuck in " +
                                         v1::GlobalStatus_Name(status[t.xid]));
    }
  }
  return status;
}

Reckoning Reckon(const std::vector<Transfer>& transfers,
                 const std::map<std::string, v1::GlobalStatus>& status) {
  Reckoning r;
  for (int b = 0; b < kChaosBanks; ++b) {
    for (int i = 0; i < kChaosAccountsPerBank; ++i) {
      r.expected[{b, i}] = kChaosSeed;
    }
  }
  for (const Transfer& t : transfers) {
    auto it = status.find(t.xid);
    bool committed =
        it != status.end() && it->second == v1::GLOBAL_STATUS_COMMITTED;
    if (t.caller_saw_commit && !committed) r.lost_commits.push_back(t.xid);
    if (!committed) continue;
    ++r.committed;
    r.expected[{t.from_bank, t.from_account}] -= t.amount;
    r.expected[{t.to_bank, t.to_account}] += t.amount;
  }
  return r;
}

int64_t MillisecondsSince(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - since)
      .count();
}

}  // namespace baton::testing
