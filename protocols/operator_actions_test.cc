#include "protocols/operator_actions.h"

#include <boost/test/unit_test.hpp>

#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "protocols/two_phase.h"

namespace baton::operator_actions {
namespace {

constexpr int64_t kNow = 2'000'000;
constexpr int64_t kWindow = 600'000;

const Request kByAlice{.reason = "ticket 42", .actor = "alice@ops"};

v1::Transaction OpenTxn(int branches, int prepared) {
  v1::Transaction txn;
  txn.set_xid("0-3-9");
  txn.set_status(v1::GLOBAL_STATUS_BEGUN);
  txn.set_deadline_unix_ms(kNow + 60'000);
  for (int i = 0; i < branches; ++i) {
    BOOST_REQUIRE(two_phase::RegisterBranch(
                      &txn, {.resource = "db-" + std::to_string(i)}, kNow)
                      .ok());
    if (i < prepared) {
      BOOST_REQUIRE(two_phase::ReportPhaseOne(
                        &txn, i + 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow)
                        .ok());
    }
  }
  return txn;
}

// A transaction whose phase two parked: branch 2 answered "failed".
v1::Transaction Stuck(bool commit) {
  v1::Transaction txn = OpenTxn(2, 2);
  BOOST_REQUIRE((commit ? two_phase::DecideCommit(&txn, kNow)
                        : two_phase::DecideRollback(&txn, "caller", kNow))
                    .ok());
  v1::BranchAction action =
      commit ? v1::BRANCH_ACTION_COMMIT : v1::BRANCH_ACTION_ROLLBACK;
  BOOST_REQUIRE(two_phase::ApplyCommandResult(
                    &txn, 1, action, v1::COMMAND_OUTCOME_DONE, "", kNow, 100)
                    .ok());
  BOOST_REQUIRE(two_phase::ApplyCommandResult(&txn, 2, action,
                                              v1::COMMAND_OUTCOME_FAILED,
                                              "disk full", kNow, 100)
                    .ok());
  BOOST_REQUIRE(NeedsAttention(txn.status()));
  return txn;
}

// A saga of two independent steps, both dispatched.
v1::Transaction RunningSaga() {
  v1::Transaction txn;
  txn.set_xid("0-3-10");
  txn.set_protocol(v1::PROTOCOL_SAGA);
  txn.set_status(v1::GLOBAL_STATUS_BEGUN);
  txn.set_deadline_unix_ms(kNow + 60'000);
  v1::SagaDefinition def;
  for (const char* name : {"flight", "hotel"}) {
    v1::SagaStep* step = def.add_steps();
    step->set_name(name);
    step->mutable_action()->set_resource(name);
  }
  BOOST_REQUIRE(saga::Start(&txn, def, kNow).ok());
  for (const saga::StepCommand& c : saga::NextCommands(txn, kNow)) {
    BOOST_REQUIRE(saga::MarkDispatched(&txn, c, kNow).ok());
  }
  return txn;
}

BOOST_AUTO_TEST_SUITE(operator_actions)

BOOST_AUTO_TEST_CASE(force_commit_of_open_needs_every_branch_prepared) {
  v1::Transaction txn = OpenTxn(2, 1);
  v1::Transaction before = txn;
  absl::Status s = ForceCommit(&txn, kByAlice, kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(std::string(s.message()).find("--override") != std::string::npos);
  BOOST_TEST(txn.SerializeAsString() == before.SerializeAsString());

  Request override = kByAlice;
  override.override_unprepared = true;
  BOOST_REQUIRE(ForceCommit(&txn, override, kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_TEST(txn.branches(1).status() == v1::BRANCH_STATUS_PREPARED);
  BOOST_REQUIRE(txn.audit_size() == 1);
  BOOST_TEST(txn.audit(0).action() == "force-commit");
  BOOST_TEST(txn.audit(0).reason() == "ticket 42");
  BOOST_TEST(txn.audit(0).actor() == "alice@ops");
  BOOST_TEST(txn.audit(0).detail().find("2 (db-1)") != std::string::npos);
  BOOST_TEST(two_phase::PendingCommands(txn).size() == 2u);
}

BOOST_AUTO_TEST_CASE(force_commit_never_overrides_a_failed_phase_one) {
  v1::Transaction txn = OpenTxn(2, 1);
  BOOST_REQUIRE(two_phase::ReportPhaseOne(&txn, 2, v1::PHASE_ONE_OUTCOME_FAILED,
                                          "constraint", kNow)
                    .ok());
  Request override = kByAlice;
  override.override_unprepared = true;
  absl::Status s = ForceCommit(&txn, override, kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(std::string(s.message()).find("constraint") != std::string::npos);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_BEGUN);
}

BOOST_AUTO_TEST_CASE(force_on_the_decided_side_finishes_by_hand) {
  for (bool commit : {true, false}) {
    v1::Transaction txn = Stuck(commit);
    absl::Status s = commit ? ForceCommit(&txn, kByAlice, kNow + 1)
                            : ForceRollback(&txn, kByAlice, kNow + 1);
    BOOST_REQUIRE(s.ok());
    BOOST_TEST(txn.status() == (commit ? v1::GLOBAL_STATUS_COMMITTED
                                       : v1::GLOBAL_STATUS_ROLLED_BACK));
    BOOST_TEST(txn.finished_unix_ms() == kNow + 1);
    BOOST_TEST(two_phase::PendingCommands(txn).empty());
    BOOST_REQUIRE(txn.audit_size() == 1);
    BOOST_TEST(txn.audit(0).detail().find("by hand: branch 2 (db-1)") !=
               std::string::npos);
    // Repeating it is harmless and adds no second record.
    BOOST_REQUIRE((commit ? ForceCommit(&txn, kByAlice, kNow + 2)
                          : ForceRollback(&txn, kByAlice, kNow + 2))
                      .ok());
    BOOST_TEST(txn.audit_size() == 1);
  }
}

BOOST_AUTO_TEST_CASE(a_durable_decision_is_never_reversed) {
  for (bool commit : {true, false}) {
    v1::Transaction txn = Stuck(commit);
    v1::Transaction before = txn;
    absl::Status s = commit ? ForceRollback(&txn, kByAlice, kNow)
                            : ForceCommit(&txn, kByAlice, kNow);
    BOOST_TEST(absl::IsFailedPrecondition(s));
    BOOST_TEST(std::string(s.message()).find("never reversed") !=
               std::string::npos);
    BOOST_TEST(txn.SerializeAsString() == before.SerializeAsString());
  }
}

BOOST_AUTO_TEST_CASE(force_rollback_of_open_decides_rollback) {
  v1::Transaction txn = OpenTxn(2, 2);
  BOOST_REQUIRE(ForceRollback(&txn, kByAlice, kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() == "rolled back by an operator: ticket 42");
  BOOST_TEST(txn.audit(0).action() == "force-rollback");
}

BOOST_AUTO_TEST_CASE(retry_reopens_failed_branches_and_restarts_the_window) {
  v1::Transaction txn = Stuck(/*commit=*/true);
  BOOST_REQUIRE(RetryNow(&txn, kByAlice, kNow + kWindow + 5).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_TEST(txn.branches(1).status() == v1::BRANCH_STATUS_PREPARED);
  BOOST_TEST(txn.branches(1).next_retry_unix_ms() == 0);
  BOOST_TEST(txn.retry_window_start_unix_ms() == kNow + kWindow + 5);
  auto pending = two_phase::PendingCommands(txn);
  BOOST_REQUIRE(pending.size() == 1u);
  BOOST_TEST(pending[0].branch_id == 2u);
  // The window counts from the retry, not from the decision.
  BOOST_TEST(!two_phase::MarkStuckIfRetryWindowPassed(&txn, kNow + kWindow + 6,
                                                      kWindow));
  BOOST_TEST(two_phase::MarkStuckIfRetryWindowPassed(
      &txn, kNow + 2 * kWindow + 5, kWindow));
  BOOST_TEST(txn.audit(0).action() == "retry");
}

BOOST_AUTO_TEST_CASE(retry_is_refused_outside_phase_two_and_while_paused) {
  v1::Transaction open = OpenTxn(1, 1);
  BOOST_TEST(absl::IsFailedPrecondition(RetryNow(&open, kByAlice, kNow)));
  v1::Transaction txn = Stuck(false);
  BOOST_REQUIRE(SetPaused(&txn, true, kByAlice, kNow).ok());
  absl::Status s = RetryNow(&txn, kByAlice, kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(std::string(s.message()).find("resume") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(pause_stops_timed_work_and_resume_makes_it_due) {
  v1::Transaction txn = OpenTxn(1, 1);
  BOOST_TEST(absl::IsFailedPrecondition(SetPaused(&txn, true, kByAlice, kNow)));
  BOOST_REQUIRE(two_phase::DecideCommit(&txn, kNow).ok());
  BOOST_REQUIRE(two_phase::ApplyCommandResult(&txn, 1, v1::BRANCH_ACTION_COMMIT,
                                              v1::COMMAND_OUTCOME_RETRY, "busy",
                                              kNow, 5'000)
                    .ok());
  BOOST_TEST(two_phase::NextActionTime(txn, kWindow) == kNow + 5'000);
  BOOST_REQUIRE(SetPaused(&txn, true, kByAlice, kNow + 1).ok());
  BOOST_REQUIRE(SetPaused(&txn, true, kByAlice, kNow + 2).ok());
  BOOST_TEST(txn.audit_size() == 1);
  BOOST_TEST(two_phase::NextActionTime(txn, kWindow) == 0);
  BOOST_TEST(!two_phase::MarkStuckIfRetryWindowPassed(&txn, kNow + 2 * kWindow,
                                                      kWindow));
  BOOST_REQUIRE(SetPaused(&txn, false, kByAlice, kNow + 3).ok());
  BOOST_TEST(!txn.paused());
  BOOST_TEST(txn.branches(0).next_retry_unix_ms() == 0);
  BOOST_TEST(txn.audit_size() == 2);
  BOOST_TEST(txn.audit(1).action() == "resume");
}

BOOST_AUTO_TEST_CASE(only_finished_or_stuck_transactions_can_be_forgotten) {
  v1::Transaction txn = OpenTxn(1, 1);
  BOOST_TEST(absl::IsFailedPrecondition(CheckForgettable(txn)));
  BOOST_REQUIRE(two_phase::DecideCommit(&txn, kNow).ok());
  BOOST_TEST(absl::IsFailedPrecondition(CheckForgettable(txn)));
  BOOST_TEST(CheckForgettable(Stuck(true)).ok());
  BOOST_REQUIRE(two_phase::ApplyCommandResult(&txn, 1, v1::BRANCH_ACTION_COMMIT,
                                              v1::COMMAND_OUTCOME_DONE, "",
                                              kNow, 0)
                    .ok());
  BOOST_TEST(CheckForgettable(txn).ok());
}

BOOST_AUTO_TEST_CASE(force_rollback_of_a_running_saga_starts_compensation) {
  v1::Transaction txn = RunningSaga();
  BOOST_REQUIRE(ForceRollback(&txn, kByAlice, kNow + 1).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() == "rolled back by an operator: ticket 42");
  BOOST_REQUIRE(txn.audit_size() == 1);
  BOOST_TEST(txn.audit(0).action() == "force-rollback");
  BOOST_TEST(txn.audit(0).detail() == "compensation started");
  // Both steps may have run, so both are owed a compensation.
  for (const v1::StepProgress& p : txn.saga().steps()) {
    BOOST_TEST(p.status() != v1::STEP_STATUS_SKIPPED);
  }
}

BOOST_AUTO_TEST_CASE(force_commit_of_a_running_saga_is_refused) {
  v1::Transaction txn = RunningSaga();
  v1::Transaction before = txn;
  absl::Status s = ForceCommit(&txn, kByAlice, kNow + 1);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(std::string(s.message()).find("commits by itself") !=
             std::string::npos);
  BOOST_TEST(txn.SerializeAsString() == before.SerializeAsString());
}

BOOST_AUTO_TEST_CASE(a_compensating_saga_is_finished_by_hand_never_reversed) {
  v1::Transaction txn = RunningSaga();
  BOOST_REQUIRE(ForceRollback(&txn, kByAlice, kNow + 1).ok());
  v1::Transaction before = txn;
  BOOST_TEST(absl::IsFailedPrecondition(ForceCommit(&txn, kByAlice, kNow + 2)));
  BOOST_TEST(txn.SerializeAsString() == before.SerializeAsString());

  BOOST_REQUIRE(ForceRollback(&txn, kByAlice, kNow + 3).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_REQUIRE(txn.audit_size() == 2);
  BOOST_TEST(txn.audit(1).detail() ==
             "marked compensated by hand: step 'flight', 'hotel'");
}

BOOST_AUTO_TEST_CASE(retry_of_a_stuck_saga_is_audited) {
  v1::Transaction txn = RunningSaga();
  BOOST_REQUIRE(ForceRollback(&txn, kByAlice, kNow + 1).ok());
  v1::Transaction running = RunningSaga();
  BOOST_TEST(absl::IsFailedPrecondition(RetryNow(&running, kByAlice, kNow)));
  BOOST_REQUIRE(RetryNow(&txn, kByAlice, kNow + 2).ok());
  BOOST_TEST(txn.audit(1).action() == "retry");
  BOOST_TEST(txn.audit(1).detail() == "backoffs due now");
}

BOOST_AUTO_TEST_CASE(audit_is_bounded_and_keeps_forced_outcomes) {
  v1::Transaction txn = Stuck(/*commit=*/false);
  BOOST_REQUIRE(ForceRollback(&txn, kByAlice, kNow).ok());
  for (int i = 0; i < 2 * kMaxAuditRecords; ++i) {
    AppendAudit(&txn, i % 2 ? "pause" : "retry", kByAlice, std::to_string(i),
                kNow + i);
  }
  BOOST_TEST(txn.audit_size() == kMaxAuditRecords);
  BOOST_TEST(txn.audit(0).action() == "force-rollback");
  BOOST_TEST(txn.audit(kMaxAuditRecords - 1).detail() ==
             std::to_string(2 * kMaxAuditRecords - 1));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton::operator_actions
