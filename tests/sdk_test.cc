// The participant SDK against a real batond: the RAII transaction, and a
// resource in this process that sees duplicated phase-two commands.
#define BOOST_TEST_MODULE sdk
#include <boost/test/unit_test.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "baton/leveldb_barrier.h"
#include "baton/participant.h"
#include "baton/saga.h"
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

// A LevelDbBarrier that reports what the participant's purge listed and
// forgot.
class WatchedBarrier : public BarrierStore {
 public:
  explicit WatchedBarrier(LevelDbBarrier* inner) : inner_(inner) {}

  absl::StatusOr<BarrierResult> Run(const BarrierCall& call,
                                    const BarrierHook& hook) override {
    return inner_->Run(call, hook);
  }
  std::vector<std::pair<std::string, uint64_t>> Unresolved() override {
    return inner_->Unresolved();
  }
  absl::StatusOr<size_t> PurgeResolvedBefore(int64_t cutoff) override {
    return inner_->PurgeResolvedBefore(cutoff);
  }
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>>
  UnresolvedBefore(int64_t cutoff, size_t limit) override {
    auto listed = inner_->UnresolvedBefore(cutoff, limit);
    std::lock_guard<std::mutex> lock(mu_);
    ++passes_;
    if (listed.ok()) {
      for (const auto& branch : *listed) ++times_listed_[branch];
    }
    return listed;
  }
  absl::Status Forget(const std::string& xid, uint64_t branch_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    forgotten_.insert({xid, branch_id});
    return inner_->Forget(xid, branch_id);
  }

  int passes() {
    std::lock_guard<std::mutex> lock(mu_);
    return passes_;
  }
  int TimesListed(const std::string& xid, uint64_t branch_id) {
    std::lock_guard<std::mutex> lock(mu_);
    return times_listed_[{xid, branch_id}];
  }
  std::set<uint64_t> Forgotten(const std::string& xid) {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<uint64_t> out;
    for (const auto& [x, branch] : forgotten_) {
      if (x == xid) out.insert(branch);
    }
    return out;
  }

 private:
  LevelDbBarrier* const inner_;
  std::mutex mu_;
  int passes_ = 0;
  std::map<std::pair<std::string, uint64_t>, int> times_listed_;
  std::set<std::pair<std::string, uint64_t>> forgotten_;
};

// Step 1's action asks to be retried until released, so the saga stays
// unfinished while step 0's barrier record ages. (It answers at once: the
// LevelDB barrier runs one hook at a time, and the purge waits for it.)
class HoldingSagaResource : public SagaResource {
 public:
  PhaseTwoResult Act(const SagaStepContext& step,
                     LocalTransaction& local) override {
    if (step.step == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      ++held_attempts_;
      changed_.notify_all();
      if (!released_) return PhaseTwoResult::Retry("held until released");
    }
    LevelDbBarrier::Batch(local)->Put("acted/" + std::to_string(step.step),
                                      step.xid);
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Compensate(const SagaStepContext&,
                            LocalTransaction&) override {
    return PhaseTwoResult::Done();
  }
  bool WaitHolding(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout,
                             [this] { return held_attempts_ > 0; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int held_attempts_ = 0;
  bool released_ = false;
};

// A succeeded saga action is never confirmed or cancelled, so only its
// saga's end can free its barrier record: kept while the saga runs, however
// old, and forgotten (with the saga's other steps) once it finished.
BOOST_AUTO_TEST_CASE(saga_step_records_are_forgotten_once_the_saga_finished) {
  BankCluster cluster;
  cluster.StartCoordinator();
  leveldb::Options db_options;
  db_options.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  BOOST_REQUIRE(
      leveldb::DB::Open(db_options, (cluster.dir() / "trips").string(), &raw)
          .ok());
  std::unique_ptr<leveldb::DB> db(raw);
  LevelDbBarrier inner(db.get());
  WatchedBarrier barrier(&inner);
  HoldingSagaResource resource;
  ParticipantOptions options;
  options.coordinator = cluster.CoordinatorAddress();
  options.service = "sdk-saga";
  options.barrier_retention = std::chrono::milliseconds(1);
  options.barrier_purge_interval = std::chrono::milliseconds(20);
  auto participant = Participant::Create(options);
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE(
      (*participant)->AddSagaResource("trips", &resource, &barrier).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(10s));

  SagaBuilder saga("forget-steps");
  saga.Step("first", {"trips", ""}, {"trips", ""});
  saga.Step("second", {"trips", ""}, {"trips", ""})
      .After({"first"})
      .Retry({.max_attempts = 1000,
              .initial_backoff = std::chrono::milliseconds(20),
              .max_backoff = std::chrono::milliseconds(20)});
  auto submitted = SubmitSaga(cluster.client(), saga, {});
  BOOST_REQUIRE(submitted.ok());
  const std::string xid = submitted->xid();
  // Branch ids are step + 1. Step 0 is done once step 1 is held.
  BOOST_REQUIRE(resource.WaitHolding(30s));
  BOOST_REQUIRE(WaitFor([&] { return barrier.TimesListed(xid, 1) >= 2; }, 30s));
  BOOST_TEST(barrier.Forgotten(xid).empty());

  resource.Release();
  BOOST_REQUIRE(cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_COMMITTED, 30s));
  BOOST_REQUIRE(
      WaitFor([&] { return barrier.Forgotten(xid).size() == 2; }, 30s));
  BOOST_TEST((barrier.Forgotten(xid) == std::set<uint64_t>{1, 2}));
  std::unique_ptr<leveldb::Iterator> it(
      db->NewIterator(leveldb::ReadOptions()));
  int barrier_keys = 0, business_keys = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string key = it->key().ToString();
    if (key.starts_with("barrier/")) ++barrier_keys;
    if (key.starts_with("acted/")) ++business_keys;
  }
  BOOST_TEST(barrier_keys == 0);
  BOOST_TEST(business_keys == 2);
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
