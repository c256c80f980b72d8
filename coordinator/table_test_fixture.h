#ifndef BATON_COORDINATOR_TABLE_TEST_FIXTURE_H_
#define BATON_COORDINATOR_TABLE_TEST_FIXTURE_H_

// One shard's table over a MemoryStore and a ManualClock, with both drivers,
// for unit tests of the table, the drivers and the recovery schedule. Test
// support only.

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/log_summary.h"
#include "common/timeline.h"
#include "coordinator/group_commit.h"
#include "coordinator/memory_store.h"
#include "coordinator/saga_driver.h"
#include "coordinator/transaction_table.h"
#include "coordinator/two_phase_driver.h"
#include "coordinator/xid.h"
#include "protocols/backoff.h"

namespace baton::testing {

// Keeps every command; serves the resources in `served`.
class RecordingSink : public CommandSink {
 public:
  bool Send(const v1::BranchCommand& command, const std::string&) override {
    absl::MutexLock lock(&mu_);
    if (!served_.contains(command.resource())) return false;
    sent_.push_back(command);
    return true;
  }
  bool Serves(const std::string& resource) const override {
    absl::MutexLock lock(&mu_);
    return served_.contains(resource);
  }
  void Serve(const std::string& resource) {
    absl::MutexLock lock(&mu_);
    served_.insert(resource);
  }
  std::vector<v1::BranchCommand> Take() {
    absl::MutexLock lock(&mu_);
    return std::move(sent_);
  }

 private:
  mutable absl::Mutex mu_;
  std::set<std::string> served_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::BranchCommand> sent_ ABSL_GUARDED_BY(mu_);
};

// The earliest wake requested per xid.
class RecordingWakeups : public Wakeups {
 public:
  void WakeAt(RecordKey record, int64_t when_ms) override {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = when_.try_emplace(record, when_ms);
    if (!inserted && when_ms < it->second) it->second = when_ms;
  }
  void Forget(RecordKey record) override {
    absl::MutexLock lock(&mu_);
    when_.erase(record);
  }
  int64_t When(const std::string& xid) {
    absl::MutexLock lock(&mu_);
    auto it = when_.find(*RecordKeyOf(xid));
    return it == when_.end() ? 0 : it->second;
  }

 private:
  absl::Mutex mu_;
  std::map<RecordKey, int64_t> when_ ABSL_GUARDED_BY(mu_);
};

// A participant's answer to `c`.
inline v1::BranchResult ResultFor(const v1::BranchCommand& c,
                                  v1::CommandOutcome outcome,
                                  const std::string& message = "") {
  v1::BranchResult result;
  result.set_command_id(c.command_id());
  result.set_xid(c.xid());
  result.set_branch_id(c.branch_id());
  result.set_action(c.action());
  result.set_outcome(outcome);
  result.set_message(message);
  return result;
}

// A reply the test can wait for, or check has not come.
struct Answer {
  std::shared_ptr<std::promise<std::pair<absl::Status, v1::Transaction>>>
      promise = std::make_shared<
          std::promise<std::pair<absl::Status, v1::Transaction>>>();
  std::shared_future<std::pair<absl::Status, v1::Transaction>> future =
      promise->get_future().share();

  Done done() {
    return [p = promise](const absl::Status& s, const v1::Transaction& r) {
      p->set_value({s, r});
    };
  }
  bool ready() const {
    return future.wait_for(std::chrono::seconds(0)) ==
           std::future_status::ready;
  }
  // Waits up to 10 s; the test fails on a timeout.
  std::pair<absl::Status, v1::Transaction> get() const {
    BOOST_REQUIRE(future.wait_for(std::chrono::seconds(10)) ==
                  std::future_status::ready);
    return future.get();
  }
};

class TableFixture {
 public:
  static constexpr uint32_t kShard = 7;
  static constexpr int64_t kCommandTimeoutMs = 30'000;

  TableFixture()
      : timeline(&clock),
        committer(&store),
        backoff(100, 1000, [] { return 1.0; }),
        two_phase({.retry_window_ms = 600'000,
                   .command_timeout_ms = kCommandTimeoutMs},
                  &backoff, &log),
        saga({.retry_window_ms = 600'000}, &sink, &log),
        table({.shard = kShard,
               .epoch = 3,
               .timeline = &timeline,
               .committer = &committer,
               .sink = &sink,
               .wakeups = &wakeups,
               .drivers = {.two_phase = &two_phase, .saga = &saga},
               .log_summary = &log}) {}

  ~TableFixture() {
    store.Release();
    committer.Stop();
  }

  // Begins a two-phase transaction and waits until it is durable.
  std::string Begin(const std::string& key = "", int64_t timeout_ms = 60'000) {
    Answer a;
    table.Create(
        key, false,
        [this, timeout_ms](v1::Transaction* r, int64_t now) {
          r->set_protocol(v1::PROTOCOL_TWO_PHASE);
          r->set_status(v1::GLOBAL_STATUS_BEGUN);
          r->set_begun_unix_ms(now);
          r->set_deadline_unix_ms(now + timeout_ms);
          return absl::OkStatus();
        },
        [](const v1::Transaction&) { return absl::OkStatus(); }, a.done());
    auto [s, r] = a.get();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    return r.xid();
  }

  // Registers and prepares `n` branches of `resource`.
  void Prepare(const std::string& xid, int n,
               const std::string& resource = "bank") {
    for (int i = 0; i < n; ++i) {
      Answer a;
      BOOST_REQUIRE(table.Apply(
          xid,
          [&](LiveTransaction* t, int64_t now, Effects* fx) {
            absl::StatusOr<uint64_t> id = two_phase.RegisterBranch(
                &t->record, {.resource = resource}, now);
            if (!id.ok()) return id.status();
            v1::ReportBranchRequest report;
            report.set_branch_id(*id);
            report.set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
            fx->persist = true;
            return two_phase.ReportBranch(&t->record, report, now);
          },
          a.done()));
      BOOST_REQUIRE(a.get().first.ok());
    }
  }

  // Decides; the answer is returned unwaited.
  Answer Decide(const std::string& xid, bool commit) {
    Answer a;
    BOOST_REQUIRE(table.Apply(
        xid,
        [&](LiveTransaction* t, int64_t now, Effects* fx) {
          fx->persist = true;
          return two_phase.Decide(&t->record, commit, "test", now);
        },
        a.done()));
    return a;
  }

  // The record as the table has it (once what it shows is durable).
  v1::Transaction Read(const std::string& xid) {
    Answer a;
    BOOST_REQUIRE(table.Apply(
        xid,
        [](LiveTransaction*, int64_t, Effects*) { return absl::OkStatus(); },
        a.done()));
    return a.get().second;
  }

  // The schedule's visit of xid at `now`.
  void RunDue(const std::string& xid, int64_t now) {
    table.RunDue(*RecordKeyOf(xid), now);
  }

  // Answers a command as a participant would.
  void Result(const v1::BranchCommand& c, v1::CommandOutcome outcome) {
    v1::BranchResult result = ResultFor(c, outcome);
    table.Handle(c.xid(), [&](ProtocolDriver* driver, LiveTransaction* t,
                              int64_t now, Effects* fx) {
      t->deliveries[c.branch_id()].command_id = 0;
      driver->OnResult(t, result, now, fx);
    });
  }

  // Waits until everything queued so far is durable.
  void Sync() {
    Answer a;
    AnswerWhenDurable(&committer, absl::OkStatus(), {}, a.done());
    a.get();
  }

  ManualClock clock;
  Timeline timeline;
  MemoryStore store;
  GroupCommitter committer;
  RecordingSink sink;
  RecordingWakeups wakeups;
  LogSummary log;
  Backoff backoff;
  TwoPhaseDriver two_phase;
  SagaDriver saga;
  TransactionTable table;
};

}  // namespace baton::testing

#endif  // BATON_COORDINATOR_TABLE_TEST_FIXTURE_H_
