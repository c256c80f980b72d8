// The SDK's asynchronous phase one (Participant::EnlistAsync and TryAsync,
// TransactionClient::RegisterBranchAsync) against a real batond: the same
// outcomes as the blocking calls, retries while the coordinator restarts, a
// deadline when it stops answering, and CANCELLED when the client goes.
#define BOOST_TEST_MODULE async_phase_one
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <optional>

#include "baton/leveldb_barrier.h"
#include "baton/participant.h"
#include "baton/tcc.h"
#include "common/steady_cond_var.h"
#include "leveldb/db.h"
#include "samples/bank/ledger.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

// Where a `done` callback leaves its outcome, for the test thread to wait on.
template <typename T>
class Outcome {
 public:
  std::function<void(T)> Done() {
    return [this](T value) {
      absl::MutexLock lock(&mu_);
      value_ = std::move(value);
      ++calls_;
      arrived_.SignalAll();
    };
  }
  // The outcome, once it arrived within `timeout`.
  std::optional<T> Wait(std::chrono::milliseconds timeout = 30s) {
    absl::MutexLock lock(&mu_);
    arrived_.WaitFor(&mu_, timeout,
                     [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                       return value_.has_value();
                     });
    return value_;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  absl::Mutex mu_;
  SteadyCondVar arrived_;
  std::optional<T> value_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

using BranchOutcome = Outcome<absl::StatusOr<uint64_t>>;

// Whether `pid` is stopped by a signal (state T in /proc/PID/stat).
bool Stopped(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t end = line.rfind(')');  // The name may hold spaces and parens.
  return end != std::string::npos && end + 2 < line.size() &&
         line[end + 2] == 'T';
}

std::unique_ptr<Participant> Attached(
    BankCluster& cluster, const std::string& service,
    const std::function<void(Participant*)>& add_resources) {
  auto participant = Participant::Create(
      {.coordinator = cluster.CoordinatorAddress(), .service = service});
  BOOST_REQUIRE(participant.ok());
  add_resources(participant->get());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(10s));
  return std::move(*participant);
}

BOOST_AUTO_TEST_CASE(an_asynchronous_enlist_ends_as_a_blocking_one_would) {
  BankCluster cluster;
  cluster.StartCoordinator();
  std::unique_ptr<samples::Ledger> ledger;
  BOOST_REQUIRE(samples::Ledger::Open((cluster.dir() / "ledger").string(),
                                      {{"carol", 50}}, &ledger)
                    .ok());
  auto participant = Attached(cluster, "async-xa", [&](Participant* p) {
    BOOST_REQUIRE(p->AddXaResource("ledger", ledger.get()).ok());
  });

  auto txn = cluster.client().Begin("async-enlist");
  BOOST_REQUIRE(txn.ok());
  BranchOutcome enlisted;
  participant->EnlistAsync((*txn)->xid(), "ledger",
                           samples::Ledger::EncodeMove("carol", -20),
                           enlisted.Done());
  auto branch = enlisted.Wait();
  BOOST_REQUIRE(branch.has_value());
  BOOST_REQUIRE(branch->ok());
  BOOST_TEST(**branch == 1u);
  BOOST_TEST(ledger->GetBalance("carol")->open_holds == 1);
  BOOST_REQUIRE((*txn)->Commit(/*wait=*/true).ok());
  auto balance = ledger->GetBalance("carol");
  BOOST_REQUIRE(balance.ok());
  BOOST_TEST(balance->balance == 30);
  BOOST_TEST(balance->open_holds == 0);

  // Refused after the decision: what Prepare held is released before done.
  BranchOutcome late;
  participant->EnlistAsync((*txn)->xid(), "ledger",
                           samples::Ledger::EncodeMove("carol", -5),
                           late.Done());
  auto refused = late.Wait();
  BOOST_REQUIRE(refused.has_value());
  BOOST_TEST(absl::IsFailedPrecondition(refused->status()));
  BOOST_TEST(ledger->GetBalance("carol")->open_holds == 0);

  BranchOutcome unknown;
  participant->EnlistAsync((*txn)->xid(), "no-such-resource", "",
                           unknown.Done());
  auto invalid = unknown.Wait();
  BOOST_REQUIRE(invalid.has_value());
  BOOST_TEST(absl::IsInvalidArgument(invalid->status()));
  BOOST_TEST(late.calls() == 1);
  BOOST_TEST(enlisted.calls() == 1);
}

// Counts its hooks; holds nothing.
class CountingTcc : public TccResource {
 public:
  absl::Status Try(const TccContext& branch, LocalTransaction&) override {
    if (branch.action.at("units") == "too-many") {
      return absl::ResourceExhaustedError("not enough stock");
    }
    ++tries;
    return absl::OkStatus();
  }
  PhaseTwoResult Confirm(const TccContext&, LocalTransaction&) override {
    ++confirms;
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Cancel(const TccContext&, LocalTransaction&) override {
    ++cancels;
    return PhaseTwoResult::Done();
  }
  std::atomic<int> tries{0}, confirms{0}, cancels{0};
};

BOOST_AUTO_TEST_CASE(an_asynchronous_try_runs_behind_the_barrier) {
  BankCluster cluster;
  cluster.StartCoordinator();
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  BOOST_REQUIRE(
      leveldb::DB::Open(options, (cluster.dir() / "barrier").string(), &raw)
          .ok());
  std::unique_ptr<leveldb::DB> db(raw);
  LevelDbBarrier barrier(db.get());
  CountingTcc stock;
  auto participant = Attached(cluster, "async-tcc", [&](Participant* p) {
    BOOST_REQUIRE(p->AddTccResource("stock", &stock, &barrier).ok());
  });

  auto confirmed = cluster.client().Begin("async-try", 0ms, v1::PROTOCOL_TCC);
  BOOST_REQUIRE(confirmed.ok());
  BranchOutcome tried;
  participant->TryAsync((*confirmed)->xid(), "stock", {{"units", "2"}},
                        tried.Done());
  auto branch = tried.Wait();
  BOOST_REQUIRE(branch.has_value());
  BOOST_REQUIRE(branch->ok());
  BOOST_REQUIRE((*confirmed)->Commit(/*wait=*/true).ok());
  BOOST_TEST(stock.tries == 1);
  BOOST_TEST(stock.confirms == 1);

  // A failed try is reported failed, so the commit is refused and nothing
  // is confirmed; the try never completed, so the cancel has nothing to undo.
  auto cancelled = cluster.client().Begin("async-try", 0ms, v1::PROTOCOL_TCC);
  BOOST_REQUIRE(cancelled.ok());
  BranchOutcome failed;
  participant->TryAsync((*cancelled)->xid(), "stock", {{"units", "too-many"}},
                        failed.Done());
  auto refused = failed.Wait();
  BOOST_REQUIRE(refused.has_value());
  BOOST_TEST(absl::IsResourceExhausted(refused->status()));
  BOOST_TEST(!(*cancelled)->Commit(/*wait=*/true).ok());
  BOOST_TEST(cluster.WaitForStatus((*cancelled)->xid(),
                                   v1::GLOBAL_STATUS_ROLLED_BACK, 10s));
  BOOST_TEST(stock.confirms == 1);
}

BOOST_AUTO_TEST_CASE(
    an_asynchronous_call_retries_while_the_coordinator_restarts) {
  BankCluster cluster;
  cluster.StartCoordinator();
  auto client = TransactionClient::Connect(
      {.coordinator = cluster.CoordinatorAddress(), .max_attempts = 40});
  BOOST_REQUIRE(client.ok());
  // Decided before the restart, so the restarted coordinator still drives
  // it (an open one would be rolled back), and a repeated report is OK.
  auto txn = (*client)->Begin("restart");
  BOOST_REQUIRE(txn.ok());
  v1::RegisterBranchRequest request;
  request.set_xid((*txn)->xid());
  request.set_resource("ledger");
  auto branch = (*client)->RegisterBranch(request);
  BOOST_REQUIRE(branch.ok());
  BOOST_REQUIRE((*client)
                    ->ReportBranch((*txn)->xid(), *branch,
                                   v1::PHASE_ONE_OUTCOME_PREPARED, "")
                    .ok());
  BOOST_REQUIRE((*txn)->Commit(/*wait=*/false).ok());

  cluster.coordinator().Signal(SIGKILL);
  BOOST_REQUIRE(cluster.coordinator().WaitExit(10s) != -1);
  Outcome<absl::Status> reported;
  (*client)->ReportBranchAsync((*txn)->xid(), *branch,
                               v1::PHASE_ONE_OUTCOME_PREPARED, "",
                               reported.Done());
  cluster.StartCoordinator();

  std::optional<absl::Status> answer = reported.Wait();
  BOOST_REQUIRE(answer.has_value());
  BOOST_TEST(answer->ok(), answer->ToString());
  BOOST_TEST(reported.calls() == 1);
  auto record = cluster.GetTransaction((*txn)->xid());
  BOOST_REQUIRE(record.ok());
  BOOST_TEST(record->status() == v1::GLOBAL_STATUS_COMMITTING);
}

BOOST_AUTO_TEST_CASE(
    an_asynchronous_call_ends_at_its_deadline_or_with_the_client) {
  BankCluster cluster;
  cluster.StartCoordinator();
  auto txn = cluster.client().Begin("stopped", 60s);
  BOOST_REQUIRE(txn.ok());
  auto quick = TransactionClient::Connect(
      {.coordinator = cluster.CoordinatorAddress(), .call_timeout = 300ms});
  auto patient = TransactionClient::Connect(
      {.coordinator = cluster.CoordinatorAddress(), .call_timeout = 600s});
  BOOST_REQUIRE(quick.ok());
  BOOST_REQUIRE(patient.ok());
  // Both streams open before the coordinator stops answering.
  BOOST_REQUIRE((*quick)->GetTransaction((*txn)->xid()).ok());
  BOOST_REQUIRE((*patient)->GetTransaction((*txn)->xid()).ok());

  cluster.coordinator().Signal(SIGSTOP);
  // The signal lands asynchronously: a call sent before the process is
  // stopped would still be answered.
  BOOST_REQUIRE(
      WaitFor([&] { return Stopped(cluster.coordinator().pid()); }, 10s));
  Outcome<absl::Status> expired, cancelled;
  (*quick)->ReportBranchAsync((*txn)->xid(), 1, v1::PHASE_ONE_OUTCOME_PREPARED,
                              "", expired.Done());
  (*patient)->ReportBranchAsync(
      (*txn)->xid(), 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", cancelled.Done());
  std::optional<absl::Status> deadline = expired.Wait(20s);
  patient->reset();  // With its call still in flight.
  std::optional<absl::Status> gone = cancelled.Wait(20s);
  cluster.coordinator().Signal(SIGCONT);

  BOOST_REQUIRE(deadline.has_value());
  BOOST_TEST(absl::IsDeadlineExceeded(*deadline), deadline->ToString());
  BOOST_REQUIRE(gone.has_value());
  BOOST_TEST(absl::IsCancelled(*gone), gone->ToString());
  BOOST_TEST(cancelled.calls() == 1);
}

}  // namespace
}  // namespace baton::testing
