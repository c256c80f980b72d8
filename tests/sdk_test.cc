// The participant SDK against a real batond: the RAII transaction, and a
// resource in this process that sees duplicated phase-two commands.
#define BOOST_TEST_MODULE sdk
#include <boost/test/unit_test.hpp>
#include <mutex>
#include <set>
#include <stdexcept>

#include "baton/participant.h"
#include "samples/bank/ledger.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

BOOST_AUTO_TEST_CASE(a_transaction_left_uncommitted_rolls_back) {
  BankCluster cluster;
  cluster.StartCoordinator();
  std::string xid;
  {
    auto txn = cluster.client().Begin("scoped");
    BOOST_REQUIRE(txn.ok());
    xid = (*txn)->xid();
  }
  BOOST_TEST(cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK, 10s));
  auto record = cluster.GetTransaction(xid);
  BOOST_REQUIRE(record.ok());
  BOOST_TEST(record->reason().find("out of scope") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_escaping_exception_rolls_back) {
  BankCluster cluster;
  cluster.StartCoordinator();
  std::string xid;
  try {
    auto txn = cluster.client().Begin("throws");
    BOOST_REQUIRE(txn.ok());
    xid = (*txn)->xid();
    throw std::runtime_error("business logic failed");
  } catch (const std::runtime_error&) {
  }
  BOOST_TEST(cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK, 10s));
  auto record = cluster.GetTransaction(xid);
  BOOST_REQUIRE(record.ok());
  BOOST_TEST(record->reason().find("exception") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(commit_through_an_in_process_participant) {
  BankCluster cluster;
  cluster.StartCoordinator();
  std::unique_ptr<samples::Ledger> ledger;
  BOOST_REQUIRE(samples::Ledger::Open((cluster.dir() / "ledger").string(),
                                      {{"carol", 50}}, &ledger)
                    .ok());
  auto participant = Participant::Create(
      {.coordinator = cluster.CoordinatorAddress(), .service = "sdk-test"});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("ledger", ledger.get()).ok());
  BOOST_TEST(absl::IsInvalidArgument(
      (*participant)->AddXaResource("ledger", ledger.get())));
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(10s));

  auto txn = cluster.client().Begin("sdk-commit");
  BOOST_REQUIRE(txn.ok());
  auto branch = (*participant)
                    ->Enlist((*txn)->xid(), "ledger",
                             samples::Ledger::EncodeMove("carol", -20));
  BOOST_REQUIRE(branch.ok());
  BOOST_TEST(*branch == 1u);
  BOOST_REQUIRE((*txn)->Commit(/*wait=*/true).ok());
  BOOST_TEST((*txn)->status() == v1::GLOBAL_STATUS_COMMITTED);
  auto balance = ledger->GetBalance("carol");
  BOOST_REQUIRE(balance.ok());
  BOOST_TEST(balance->balance == 30);
  BOOST_TEST(balance->open_holds == 0);

  // Enlisting in a finished transaction is refused by the coordinator, and
  // leaves nothing held.
  auto late = (*participant)
                  ->Enlist((*txn)->xid(), "ledger",
                           samples::Ledger::EncodeMove("carol", -5));
  BOOST_TEST(absl::IsFailedPrecondition(late.status()));
  BOOST_TEST(ledger->GetBalance("carol")->open_holds == 0);
}

// Counts the commits it is asked for, and the bytes they carry.
class CountingResource : public XaResource {
 public:
  absl::Status Prepare(const BranchContext&) override {
    return absl::OkStatus();
  }
  PhaseTwoResult Commit(const BranchContext& branch) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (committed_.insert({branch.xid, branch.branch_id}).second) {
      bytes_ += branch.application_data.size();
    }
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Rollback(const BranchContext&) override {
    return PhaseTwoResult::Done();
  }
  std::pair<size_t, size_t> Committed() {
    std::lock_guard<std::mutex> lock(mu_);
    return {committed_.size(), bytes_};
  }

 private:
  std::mutex mu_;
  std::set<std::pair<std::string, uint64_t>> committed_;
  size_t bytes_ = 0;
};

// Commands owed while nobody served the resource all leave at the attach,
// more bytes of them than one message can carry: they go in several.
BOOST_AUTO_TEST_CASE(a_backlog_larger_than_a_message_reaches_the_participant) {
  BankCluster cluster;
  cluster.StartCoordinator();
  constexpr int kTransactions = 26, kBranches = 10;
  const std::string data(64 * 1024, 'd');  // 26 x 10 x 64 KiB > 16 MiB.
  std::vector<std::unique_ptr<GlobalTransaction>> txns;
  for (int t = 0; t < kTransactions; ++t) {
    auto txn = cluster.client().Begin("backlog");
    BOOST_REQUIRE(txn.ok());
    for (int b = 0; b < kBranches; ++b) {
      v1::RegisterBranchRequest request;
      request.set_xid((*txn)->xid());
      request.set_resource("big");
      request.set_application_data(data);
      auto branch = cluster.client().RegisterBranch(request);
      BOOST_REQUIRE(branch.ok());
      BOOST_REQUIRE(cluster.client()
                        .ReportBranch((*txn)->xid(), *branch,
                                      v1::PHASE_ONE_OUTCOME_PREPARED, "")
                        .ok());
    }
    BOOST_REQUIRE((*txn)->Commit(/*wait=*/false).ok());
    txns.push_back(std::move(*txn));
  }

  CountingResource resource;
  auto participant = Participant::Create(
      {.coordinator = cluster.CoordinatorAddress(), .service = "backlog"});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("big", &resource).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  for (const auto& txn : txns) {
    BOOST_TEST(
        cluster.WaitForStatus(txn->xid(), v1::GLOBAL_STATUS_COMMITTED, 60s));
  }
  auto [commits, bytes] = resource.Committed();
  BOOST_TEST(commits == size_t{kTransactions * kBranches});
  BOOST_TEST(bytes == size_t{kTransactions * kBranches} * data.size());
}

BOOST_AUTO_TEST_CASE(ledger_answers_duplicated_and_reordered_commands_once) {
  TempDir dir;
  std::unique_ptr<samples::Ledger> ledger;
  BOOST_REQUIRE(samples::Ledger::Open((dir.path() / "l").string(),
                                      {{"dave", 10}}, &ledger)
                    .ok());
  BranchContext b{"0-1-1", 1, "ledger", samples::Ledger::EncodeMove("dave", 5)};
  // A rollback that arrives before anything was prepared is harmless.
  BOOST_TEST((ledger->Rollback(b).outcome == PhaseTwoResult::Outcome::kDone));
  BOOST_REQUIRE(ledger->Prepare(b).ok());
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST((ledger->Commit(b).outcome == PhaseTwoResult::Outcome::kDone));
  }
  BOOST_TEST(ledger->GetBalance("dave")->balance == 15);
  // A stale rollback after the commit changes nothing.
  BOOST_TEST((ledger->Rollback(b).outcome == PhaseTwoResult::Outcome::kDone));
  BOOST_TEST(ledger->GetBalance("dave")->balance == 15);
  BOOST_TEST(ledger->GetBalance("dave")->open_holds == 0);
}

// A resource that cannot list its prepared branches at attach (its database
// is down, say) lists them at the next periodic recovery, and the
// coordinator resolves them then: presumed abort for an xid it never began.
class LateListingResource : public XaResource {
 public:
  absl::Status Prepare(const BranchContext&) override {
    return absl::OkStatus();
  }
  PhaseTwoResult Commit(const BranchContext&) override {
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Rollback(const BranchContext& branch) override {
    std::lock_guard<std::mutex> lock(mu_);
    rolled_back_.push_back(branch.xid);
    listing_ = false;
    return PhaseTwoResult::Done();
  }
  std::vector<InDoubtBranch> Recover() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++recover_calls_;
    if (!listing_) return {};
    return {{.xid = "0-1-987654", .branch_id = 1}};
  }

  void StartListing() {
    std::lock_guard<std::mutex> lock(mu_);
    listing_ = true;
  }
  std::vector<std::string> RolledBack() {
    std::lock_guard<std::mutex> lock(mu_);
    return rolled_back_;
  }
  int RecoverCalls() {
    std::lock_guard<std::mutex> lock(mu_);
    return recover_calls_;
  }

 private:
  std::mutex mu_;
  bool listing_ = false;
  int recover_calls_ = 0;
  std::vector<std::string> rolled_back_;
};

BOOST_AUTO_TEST_CASE(branches_listed_after_attach_are_resolved_periodically) {
  BankCluster cluster;
  cluster.StartCoordinator();
  LateListingResource resource;
  auto participant =
      Participant::Create({.coordinator = cluster.CoordinatorAddress(),
                           .service = "sdk-test",
                           .recovery_interval = 50ms});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("late", &resource).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(10s));
  BOOST_REQUIRE(WaitFor([&] { return resource.RecoverCalls() >= 2; }, 10s));
  BOOST_TEST(resource.RolledBack().empty());

  resource.StartListing();
  BOOST_TEST(WaitFor([&] { return !resource.RolledBack().empty(); }, 10s));
  BOOST_TEST(resource.RolledBack().front() == "0-1-987654");
}

}  // namespace
}  // namespace baton::testing
