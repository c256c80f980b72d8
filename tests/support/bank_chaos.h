#ifndef BATON_TESTS_SUPPORT_BANK_CHAOS_H_
#define BATON_TESTS_SUPPORT_BANK_CHAOS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {

// The shared half of the bank chaos tests (chaos_test, postgres_chaos_test):
// a random transfer load through the bank sample's gRPC API, a fault loop
// that SIGKILLs and restarts batond or a bank, and the reckoning that turns
// the transfers into the balance every account must end at. What the
// participants store, and so how holds and balances are checked, stays in
// each test.

// The bank under test: kChaosBanks services named ChaosBankName(b), each
// owning accounts ChaosAccount(b, 0..kChaosAccountsPerBank-1) seeded with
// kChaosSeed. Money only moves between them, so the sum stays kChaosTotal.
inline constexpr int kChaosBanks = 3;
inline constexpr int kChaosAccountsPerBank = 4;
inline constexpr int64_t kChaosSeed = 1000;
inline constexpr int64_t kChaosTotal =
    kChaosBanks * kChaosAccountsPerBank * kChaosSeed;

std::string ChaosBankName(int bank);           // "bank-a", "bank-b", ...
std::string ChaosAccount(int bank, int i);     // "a0", "a1", ..., "b0", ...
std::vector<std::string> ChaosSeed(int bank);  // {"a0=1000", ...}

// One transfer a worker began: a debit at `from` and a credit at `to` in
// one global transaction.
struct Transfer {
  std::string xid;
  int from_bank = 0, from_account = 0, to_bank = 0, to_account = 0;
  int64_t amount = 0;
  bool caller_saw_commit = false;  // Commit returned OK to the worker.
};

// Runs random transfers from several threads until Stop(). Each worker has
// its own TransactionClient (2 s calls, 2 attempts) and Bank stubs; it
// begins a transaction named `name`, debits, credits, then commits, or rolls
// back if a leg failed. Every transfer that got an xid is journaled, whatever
// became of it; one whose Begin failed was never begun and is not. Failures
// are expected (processes are being killed) and are not errors here.
class TransferLoad {
 public:
  struct Options {
    std::string name;   // The transactions' name, for traces and logs.
    int workers = 4;    // Threads.
    uint32_t seed = 1;  // Worker i draws from seed + i: repeatable mixes.
  };

  // Starts the workers against the coordinator and the banks, where
  // bank_addresses[b] serves ChaosBankName(b).
  TransferLoad(const Options& options, const std::string& coordinator,
               const std::vector<std::string>& bank_addresses);
  // Stops and joins the workers if Stop() was not called, so a test that
  // fails mid-way does not terminate on a joinable thread.
  ~TransferLoad();
  TransferLoad(const TransferLoad&) = delete;
  TransferLoad& operator=(const TransferLoad&) = delete;

  // Lets each worker finish its transfer in flight, joins them, and returns
  // every journaled transfer. Call from the thread that owns the load; a
  // second call returns the same transfers.
  std::vector<Transfer> Stop();

 private:
  class Worker;
  void Record(const Transfer& transfer);

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<Transfer> transfers_;  // Guarded by mu_.
};

// How many processes the fault loop killed.
struct FaultCounts {
  int coordinator_kills = 0;
  int participant_kills = 0;
  int pauses = 0;  // SIGSTOP, then SIGCONT.
};

// Until `duration` has passed: sleeps 0.3-1.5 s, then picks a batond node
// or one of the kChaosBanks banks uniformly (drawing from `seed`), SIGKILLs
// it, waits for it to exit and restarts it: a node via StartCoordinator(),
// bank b via restart_bank(b), since how a bank starts is the test's
// business.
// With `pauses`, one fault in three is a SIGSTOP of 0.5-3.5 s and a
// SIGCONT instead (past a lease of 2 s, sometimes).
// Throws std::runtime_error if a killed process does not exit within 10 s.
FaultCounts InjectFaults(BankCluster* cluster,
                         std::chrono::milliseconds duration, uint32_t seed,
                         const std::function<void(int bank)>& restart_bank,
                         bool pauses = false);

// Waits, up to `timeout` for each, until the coordinator reports every
// transfer COMMITTED or ROLLED_BACK, and returns each xid's final status.
// On timeout, the error names the first xid still open and its status.
absl::StatusOr<std::map<std::string, v1::GlobalStatus>> WaitForTerminal(
    BankCluster* cluster, const std::vector<Transfer>& transfers,
    std::chrono::milliseconds timeout);

// What the transfers' final statuses imply.
struct Reckoning {
  int committed = 0;
  // Every account, (bank, i), mapped to kChaosSeed plus exactly the
  // committed transfers into it, minus those out of it.
  std::map<std::pair<int, int>, int64_t> expected;
  // Xids whose Commit returned OK to the caller but which did not commit:
  // must be empty, or an acknowledged commit was lost.
  std::vector<std::string> lost_commits;
};
Reckoning Reckon(const std::vector<Transfer>& transfers,
                 const std::map<std::string, v1::GlobalStatus>& status);

// Milliseconds from `since` to now, for the tests' recovery-time lines.
int64_t MillisecondsSince(std::chrono::steady_clock::time_point since);

}  // namespace baton::testing

#endif  // BATON_TESTS_SUPPORT_BANK_CHAOS_H_
