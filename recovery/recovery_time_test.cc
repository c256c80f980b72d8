#define BOOST_TEST_MODULE recovery_unit
// The manager's timed work over an injected clock whose wall time steps
// both ways while steady time runs on: nothing times out early or late,
// nothing is marked needing attention falsely, and a due retry runs.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>

#include "common/clock.h"
#include "common/timeline.h"
#include "coordinator/group_commit.h"
#include "coordinator/store.h"
#include "coordinator/table_test_fixture.h"
#include "coordinator/transaction_manager.h"
#include "recovery/recovery_loop.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kHour = 60 * 60 * 1000;

// Hands every command to the test.
class QueueSink : public CommandSink {
 public:
  bool Send(const v1::BranchCommand& command, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back(command);
    arrived_.notify_all();
    return true;
  }
  bool Serves(const std::string&) const override { return true; }

  std::optional<v1::BranchCommand> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!arrived_.wait_for(lock, 10s, [this] { return !commands_.empty(); }))
      return std::nullopt;
    v1::BranchCommand c = commands_.front();
    commands_.pop_front();
    return c;
  }
  size_t pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return commands_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable arrived_;
  std::deque<v1::BranchCommand> commands_;
};

// One manager over a real store in a temp dir, on a ManualClock.
class Harness {
 public:
  Harness() : timeline_(&clock_) {
    dir_ = std::filesystem::temp_directory_path() /
           ("baton-time-" + std::to_string(std::random_device{}()));
    BOOST_REQUIRE(OpenLevelDbStore(dir_.string(), &store_).ok());
    committer_ = std::make_unique<GroupCommitter>(store_.get());
    ManagerOptions options;
    options.timeline = &timeline_;
    options.retry_initial_ms = 1000;
    options.retry_max_ms = 1000;
    options.retry_window_ms = 10 * 60 * 1000;
    recovery_ = std::make_unique<RecoveryLoop>(RecoveryOptions{}, store_.get(),
                                               committer_.get(), &sink_);
    manager_ = std::make_unique<TransactionManager>(
        options, committer_.get(), store_.get(), &sink_, recovery_->hooks());
    BOOST_REQUIRE(manager_->Init().ok());
    recovery_->Attach(manager_.get());
  }
  ~Harness() {
    recovery_->Stop();
    committer_->Stop();
    manager_.reset();
    recovery_.reset();
    committer_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  template <typename T, typename Call>
  T Await(Call call) {
    auto promise = std::make_shared<std::promise<std::pair<absl::Status, T>>>();
    auto future = promise->get_future();
    call([promise](const absl::Status& s, const T& value) {
      promise->set_value({s, value});
    });
    BOOST_REQUIRE(future.wait_for(10s) == std::future_status::ready);
    auto [status, value] = future.get();
    BOOST_REQUIRE_MESSAGE(status.ok(), status.ToString());
    return value;
  }

  std::string Begin(uint32_t timeout_ms) {
    v1::BeginRequest request;
    request.set_timeout_ms(timeout_ms);
    return Await<v1::BeginResponse>(
               [&](auto reply) { manager_->Begin(request, reply); })
        .xid();
  }

  // A transaction with one prepared branch, committed (without waiting).
  std::string Committed() {
    std::string xid = Begin(60'000);
    v1::RegisterBranchRequest reg;
    reg.set_xid(xid);
    reg.set_resource("bank");
    uint64_t id = Await<v1::RegisterBranchResponse>([&](auto reply) {
                    manager_->RegisterBranch(reg, reply);
                  }).branch_id();
    v1::ReportBranchRequest report;
    report.set_xid(xid);
    report.set_branch_id(id);
    report.set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
    Await<v1::ReportBranchResponse>(
        [&](auto reply) { manager_->ReportBranch(report, reply); });
    v1::CommitRequest commit;
    commit.set_xid(xid);
    Await<v1::CommitResponse>(
        [&](auto reply) { manager_->Commit(commit, reply); });
    return xid;
  }

  v1::Transaction Get(const std::string& xid) {
    return Await<v1::Transaction>(
        [&](auto reply) { manager_->GetTransaction(xid, reply); });
  }

  void Answer(const v1::BranchCommand& c, v1::CommandOutcome outcome) {
    manager_->OnCommandResult(testing::ResultFor(
        c, outcome, outcome == v1::COMMAND_OUTCOME_RETRY ? "busy" : ""));
    // Its write must be on disk before time moves on.
    Await<v1::Transaction>(
        [&](auto reply) { manager_->GetTransaction(c.xid(), reply); });
  }

  void Tick() { recovery_->RunDue(timeline_.Now()); }

  ManualClock clock_;
  Timeline timeline_;
  QueueSink sink_;

 private:
  std::filesystem::path dir_;
  std::unique_ptr<TransactionStore> store_;
  std::unique_ptr<GroupCommitter> committer_;
  std::unique_ptr<RecoveryLoop> recovery_;
  std::unique_ptr<TransactionManager> manager_;
};

BOOST_AUTO_TEST_SUITE(clock_steps)

BOOST_AUTO_TEST_CASE(a_forward_step_neither_times_out_nor_pages) {
  Harness h;
  std::string open = h.Begin(10 * 60 * 1000);
  std::string decided = h.Committed();
  std::optional<v1::BranchCommand> first = h.sink_.Next();
  BOOST_REQUIRE(first.has_value());
  h.Answer(*first, v1::COMMAND_OUTCOME_RETRY);

  h.clock_.Advance(7000);
  h.clock_.StepWall(2 * kHour);
  h.Tick();

  BOOST_TEST(h.Get(open).status() == v1::GLOBAL_STATUS_BEGUN);
  BOOST_TEST(h.Get(decided).status() == v1::GLOBAL_STATUS_COMMITTING);
  // The retry, due after at most 1.2 s, ran.
  std::optional<v1::BranchCommand> retry = h.sink_.Next();
  BOOST_REQUIRE(retry.has_value());
  BOOST_TEST(retry->attempt() == 2u);
  h.Answer(*retry, v1::COMMAND_OUTCOME_DONE);
  BOOST_TEST(h.Get(decided).status() == v1::GLOBAL_STATUS_COMMITTED);

  // The open one still times out after its own ten minutes, not sooner.
  h.clock_.Advance(10 * 60 * 1000 - 7000 - 1);
  h.Tick();
  BOOST_TEST(h.Get(open).status() == v1::GLOBAL_STATUS_BEGUN);
  h.clock_.Advance(1);
  h.Tick();
  v1::Transaction timed_out = h.Get(open);
  BOOST_TEST(timed_out.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(timed_out.reason() == "timeout");
}

BOOST_AUTO_TEST_CASE(the_retry_window_counts_steady_time) {
  Harness h;
  std::string decided = h.Committed();
  std::optional<v1::BranchCommand> c = h.sink_.Next();
  BOOST_REQUIRE(c.has_value());
  h.Answer(*c, v1::COMMAND_OUTCOME_RETRY);
  h.clock_.StepWall(2 * kHour);
  h.clock_.Advance(1500);
  h.Tick();
  BOOST_TEST(h.Get(decided).status() == v1::GLOBAL_STATUS_COMMITTING);
  // Failing on for the window's full ten minutes of steady time does page,
  // not a moment sooner.
  for (int64_t spent = 1500; spent < 10 * 60 * 1000; spent += 1500) {
    std::optional<v1::BranchCommand> retry = h.sink_.Next();
    BOOST_REQUIRE(retry.has_value());
    h.Answer(*retry, v1::COMMAND_OUTCOME_RETRY);
    BOOST_TEST_REQUIRE(h.Get(decided).status() == v1::GLOBAL_STATUS_COMMITTING);
    h.clock_.Advance(1500);
    h.Tick();
  }
  BOOST_TEST(h.Get(decided).status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
}

BOOST_AUTO_TEST_CASE(a_backward_step_stalls_no_retry_and_no_timeout) {
  Harness h;
  std::string open = h.Begin(5000);
  std::string decided = h.Committed();
  std::optional<v1::BranchCommand> first = h.sink_.Next();
  BOOST_REQUIRE(first.has_value());
  h.Answer(*first, v1::COMMAND_OUTCOME_RETRY);

  h.clock_.StepWall(-2 * kHour);
  h.clock_.Advance(1300);
  h.Tick();
  std::optional<v1::BranchCommand> retry = h.sink_.Next();
  BOOST_REQUIRE(retry.has_value());
  BOOST_TEST(retry->attempt() == 2u);

  h.clock_.Advance(5000 - 1300);
  h.Tick();
  v1::Transaction timed_out = h.Get(open);
  BOOST_TEST(timed_out.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(timed_out.reason() == "timeout");
  // Its instants stay on one timeline: begun to decided is the timeout.
  BOOST_TEST(timed_out.decided_unix_ms() - timed_out.begun_unix_ms() == 5000);
  BOOST_TEST(h.timeline_.WallOffsetMs() == -2 * kHour);
  BOOST_TEST(h.Get(decided).status() == v1::GLOBAL_STATUS_COMMITTING);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
