#include "protocols/two_phase.h"

#include <boost/test/unit_test.hpp>

#include "protocols/transitions.h"

namespace baton::two_phase {
namespace {

constexpr int64_t kNow = 1'000'000;
constexpr int64_t kWindow = 600'000;

v1::Transaction OpenTxn(int branches = 0) {
  v1::Transaction txn;
  txn.set_xid("0-1-7");
  txn.set_status(v1::GLOBAL_STATUS_BEGUN);
  txn.set_begun_unix_ms(kNow);
  txn.set_deadline_unix_ms(kNow + 60'000);
  for (int i = 0; i < branches; ++i) {
    NewBranch b;
    b.resource = "bank-" + std::to_string(i);
    b.application_data = "data";
    BOOST_REQUIRE(RegisterBranch(&txn, b, kNow).ok());
  }
  return txn;
}

void PrepareAll(v1::Transaction* txn) {
  for (const v1::Branch& b : txn->branches()) {
    BOOST_REQUIRE(ReportPhaseOne(txn, b.branch_id(),
                                 v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow)
                      .ok());
  }
}

absl::Status Ack(v1::Transaction* txn, uint64_t id, v1::BranchAction action,
                 v1::CommandOutcome outcome = v1::COMMAND_OUTCOME_DONE) {
  return ApplyCommandResult(txn, id, action, outcome, "boom", kNow + 5, 100);
}

BOOST_AUTO_TEST_SUITE(two_phase)

BOOST_AUTO_TEST_CASE(register_assigns_sequential_ids_and_dedups_request_ids) {
  v1::Transaction txn = OpenTxn();
  NewBranch b{.resource = "r", .request_id = "req-1"};
  BOOST_TEST(*RegisterBranch(&txn, b, kNow) == 1u);
  BOOST_TEST(*RegisterBranch(&txn, b, kNow) == 1u);
  b.request_id = "req-2";
  BOOST_TEST(*RegisterBranch(&txn, b, kNow) == 2u);
  BOOST_TEST(txn.branches_size() == 2);
  BOOST_TEST(txn.branches(1).status() == v1::BRANCH_STATUS_REGISTERED);
}

BOOST_AUTO_TEST_CASE(register_refused_after_deadline_and_after_decision) {
  v1::Transaction txn = OpenTxn();
  auto late = RegisterBranch(&txn, {.resource = "r"}, kNow + 60'000);
  BOOST_TEST(absl::IsFailedPrecondition(late.status()));
  BOOST_TEST(txn.branches_size() == 0);
  BOOST_REQUIRE(DecideRollback(&txn, "caller", kNow).ok());
  BOOST_TEST(absl::IsFailedPrecondition(
      RegisterBranch(&txn, {.resource = "r"}, kNow).status()));
}

BOOST_AUTO_TEST_CASE(register_enforces_branch_and_data_limits) {
  v1::Transaction txn = OpenTxn();
  NewBranch big{.resource = "r", .application_data = std::string(60000, 'x')};
  absl::Status last;
  for (int i = 0; i < 200 && last.ok(); ++i) {
    last = RegisterBranch(&txn, big, kNow).status();
  }
  BOOST_TEST(absl::IsResourceExhausted(last));
}

BOOST_AUTO_TEST_CASE(empty_transaction_commits_at_once) {
  v1::Transaction txn = OpenTxn();
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(txn.finished_unix_ms() == kNow);
  BOOST_TEST(PendingCommands(txn).empty());
}

BOOST_AUTO_TEST_CASE(commit_of_prepared_branches_sends_commit_to_each) {
  v1::Transaction txn = OpenTxn(2);
  PrepareAll(&txn);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_TEST(txn.decided_unix_ms() == kNow);
  auto commands = PendingCommands(txn);
  BOOST_REQUIRE(commands.size() == 2u);
  BOOST_TEST(commands[0].action == v1::BRANCH_ACTION_COMMIT);
  BOOST_REQUIRE(Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_REQUIRE(Ack(&txn, 2, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(txn.finished_unix_ms() == kNow + 5);
}

BOOST_AUTO_TEST_CASE(commit_with_failed_branch_rolls_back_every_branch) {
  v1::Transaction txn = OpenTxn(3);
  BOOST_REQUIRE(
      ReportPhaseOne(&txn, 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow).ok());
  BOOST_REQUIRE(ReportPhaseOne(&txn, 2, v1::PHASE_ONE_OUTCOME_FAILED,
                               "insufficient funds", kNow)
                    .ok());
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason().find("insufficient funds") != std::string::npos);
  auto commands = PendingCommands(txn);
  BOOST_TEST(commands.size() == 3u);  // Including the unreported branch 3.
  for (auto& c : commands) BOOST_TEST(c.action == v1::BRANCH_ACTION_ROLLBACK);
}

BOOST_AUTO_TEST_CASE(commit_with_unreported_branch_rolls_back) {
  v1::Transaction txn = OpenTxn(1);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason().find("never reported") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(decisions_are_idempotent_and_exclusive) {
  v1::Transaction txn = OpenTxn(1);
  PrepareAll(&txn);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_TEST(DecideCommit(&txn, kNow + 1).ok());
  BOOST_TEST(txn.decided_unix_ms() == kNow);
  BOOST_TEST(absl::IsFailedPrecondition(DecideRollback(&txn, "x", kNow)));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);

  v1::Transaction other = OpenTxn(1);
  BOOST_REQUIRE(DecideRollback(&other, "caller gave up", kNow).ok());
  BOOST_TEST(DecideRollback(&other, "again", kNow).ok());
  BOOST_TEST(other.reason() == "caller gave up");
  BOOST_TEST(absl::IsFailedPrecondition(DecideCommit(&other, kNow)));
}

BOOST_AUTO_TEST_CASE(report_is_idempotent_but_not_changeable) {
  v1::Transaction txn = OpenTxn(1);
  BOOST_REQUIRE(
      ReportPhaseOne(&txn, 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow).ok());
  BOOST_TEST(
      ReportPhaseOne(&txn, 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow).ok());
  BOOST_TEST(absl::IsFailedPrecondition(
      ReportPhaseOne(&txn, 1, v1::PHASE_ONE_OUTCOME_FAILED, "x", kNow)));
  BOOST_TEST(absl::IsNotFound(
      ReportPhaseOne(&txn, 9, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow)));
}

// A participant that lost the answer to its report asks again, possibly
// after phase two already finished: the same outcome must still be OK.
BOOST_AUTO_TEST_CASE(a_repeated_report_stays_ok_after_phase_two) {
  v1::Transaction txn = OpenTxn(1);
  PrepareAll(&txn);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_REQUIRE(Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_REQUIRE(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(
      ReportPhaseOne(&txn, 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow).ok());
  BOOST_TEST(absl::IsFailedPrecondition(
      ReportPhaseOne(&txn, 1, v1::PHASE_ONE_OUTCOME_FAILED, "x", kNow)));
  BOOST_TEST(txn.branches(0).status() == v1::BRANCH_STATUS_COMMITTED);

  // Prepared, then rolled back by a timeout: the repeat is still the truth.
  v1::Transaction timed_out = OpenTxn(1);
  PrepareAll(&timed_out);
  BOOST_REQUIRE(ExpireIfPastDeadline(&timed_out, kNow + 60'000));
  BOOST_REQUIRE(Ack(&timed_out, 1, v1::BRANCH_ACTION_ROLLBACK).ok());
  BOOST_REQUIRE(timed_out.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(
      ReportPhaseOne(&timed_out, 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow)
          .ok());
}

BOOST_AUTO_TEST_CASE(report_after_rollback_is_refused) {
  v1::Transaction txn = OpenTxn(1);
  BOOST_REQUIRE(DecideRollback(&txn, "caller", kNow).ok());
  BOOST_TEST(absl::IsFailedPrecondition(
      ReportPhaseOne(&txn, 1, v1::PHASE_ONE_OUTCOME_PREPARED, "", kNow)));
  BOOST_TEST(txn.branches(0).status() == v1::BRANCH_STATUS_REGISTERED);
}

BOOST_AUTO_TEST_CASE(retry_keeps_branch_pending_and_schedules_next_attempt) {
  v1::Transaction txn = OpenTxn(1);
  PrepareAll(&txn);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_REQUIRE(
      Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT, v1::COMMAND_OUTCOME_RETRY).ok());
  BOOST_TEST(txn.branches(0).attempts() == 1u);
  BOOST_TEST(txn.branches(0).last_error() == "boom");
  BOOST_TEST(txn.branches(0).next_retry_unix_ms() == kNow + 105);
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 105);
  BOOST_TEST(PendingCommands(txn).size() == 1u);
  BOOST_REQUIRE(Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(txn.branches(0).attempts() == 2u);
  BOOST_TEST(NextActionTime(txn, kWindow) == 0);
}

BOOST_AUTO_TEST_CASE(retry_window_marks_needs_attention_and_retries_go_on) {
  v1::Transaction txn = OpenTxn(2);
  PrepareAll(&txn);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  // Nothing timed yet but the end of the window.
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + kWindow);
  BOOST_REQUIRE(Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_REQUIRE(
      Ack(&txn, 2, v1::BRANCH_ACTION_COMMIT, v1::COMMAND_OUTCOME_RETRY).ok());
  BOOST_TEST(!MarkStuckIfRetryWindowPassed(&txn, kNow + kWindow - 1, kWindow));
  BOOST_TEST(MarkStuckIfRetryWindowPassed(&txn, kNow + kWindow, kWindow));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(txn.reason().find("branch 2") != std::string::npos);
  BOOST_TEST(txn.reason().find("boom") != std::string::npos);
  // Still owed, and the next retry is still scheduled.
  BOOST_TEST(PendingCommands(txn).size() == 1u);
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 105);
  BOOST_TEST(!MarkStuckIfRetryWindowPassed(&txn, kNow + 2 * kWindow, kWindow));
  // A late success finishes it.
  BOOST_REQUIRE(Ack(&txn, 2, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(final_failure_needs_attention_and_late_done_finishes) {
  v1::Transaction txn = OpenTxn(2);
  PrepareAll(&txn);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_REQUIRE(
      Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT, v1::COMMAND_OUTCOME_FAILED).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);  // 2 pending.
  BOOST_REQUIRE(Ack(&txn, 2, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(txn.reason().find("branch 1") != std::string::npos);
  BOOST_REQUIRE(Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(stale_and_duplicate_results) {
  v1::Transaction txn = OpenTxn(1);
  PrepareAll(&txn);
  BOOST_REQUIRE(DecideCommit(&txn, kNow).ok());
  BOOST_TEST(
      absl::IsFailedPrecondition(Ack(&txn, 1, v1::BRANCH_ACTION_ROLLBACK)));
  BOOST_REQUIRE(Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(Ack(&txn, 1, v1::BRANCH_ACTION_COMMIT).ok());
  BOOST_TEST(txn.branches(0).attempts() == 1u);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(deadline_expiry_rolls_back_open_transactions_only) {
  v1::Transaction txn = OpenTxn(1);
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 60'000);
  BOOST_TEST(!ExpireIfPastDeadline(&txn, kNow + 59'999));
  BOOST_TEST(ExpireIfPastDeadline(&txn, kNow + 60'000));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() == "timeout");
  BOOST_TEST(!ExpireIfPastDeadline(&txn, kNow + 70'000));

  v1::Transaction committed = OpenTxn(0);
  BOOST_REQUIRE(DecideCommit(&committed, kNow).ok());
  BOOST_TEST(!ExpireIfPastDeadline(&committed, kNow + 70'000));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton::two_phase
