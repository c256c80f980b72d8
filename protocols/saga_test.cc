#include "protocols/saga.h"

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "protocols/transitions.h"

namespace baton::saga {

std::ostream& operator<<(std::ostream& out, const StepCommand& command) {
  return out << (command.kind == StepKind::kAction ? "action " : "compensate ")
             << command.step;
}

namespace {

constexpr int64_t kNow = 1'000'000;
constexpr int64_t kDeadline = kNow + 60'000;
constexpr int64_t kWindow = 600'000;
constexpr int64_t kTimeout = 5'000;

constexpr v1::CommandOutcome kDone = v1::COMMAND_OUTCOME_DONE;
constexpr v1::CommandOutcome kRetry = v1::COMMAND_OUTCOME_RETRY;
constexpr v1::CommandOutcome kFailed = v1::COMMAND_OUTCOME_FAILED;

StepCommand Act(uint32_t step) { return {step, StepKind::kAction}; }
StepCommand Undo(uint32_t step) { return {step, StepKind::kCompensation}; }
using Commands = std::vector<StepCommand>;

// A step with three attempts, backoff 100, 200, 400 ... capped at 1000.
v1::SagaStep Step(const std::string& name,
                  const std::vector<std::string>& deps = {}) {
  v1::SagaStep step;
  step.set_name(name);
  step.mutable_action()->set_resource("svc-" + name);
  step.mutable_action()->set_payload("do " + name);
  step.mutable_compensation()->set_payload("undo " + name);
  for (const std::string& dep : deps) step.add_depends_on(dep);
  step.mutable_retry()->set_max_attempts(3);
  step.mutable_retry()->set_initial_backoff_ms(100);
  step.mutable_retry()->set_multiplier(2);
  step.mutable_retry()->set_max_backoff_ms(1000);
  step.set_timeout_ms(kTimeout);
  return step;
}

v1::SagaDefinition Def(const std::vector<v1::SagaStep>& steps,
                       uint32_t max_parallel = 0,
                       bool forward_recovery = false) {
  v1::SagaDefinition def;
  for (const v1::SagaStep& step : steps) *def.add_steps() = step;
  def.set_max_parallel(max_parallel);
  def.set_forward_recovery(forward_recovery);
  return def;
}

v1::Transaction OpenSaga() {
  v1::Transaction txn;
  txn.set_xid("0-1-9");
  txn.set_protocol(v1::PROTOCOL_SAGA);
  txn.set_status(v1::GLOBAL_STATUS_BEGUN);
  txn.set_begun_unix_ms(kNow);
  txn.set_deadline_unix_ms(kDeadline);
  return txn;
}

v1::Transaction Started(const v1::SagaDefinition& def) {
  v1::Transaction txn = OpenSaga();
  BOOST_REQUIRE(Start(&txn, def, kNow).ok());
  return txn;
}

// Dispatches everything NextCommands lists and returns it.
Commands DispatchAll(v1::Transaction* txn, int64_t now_ms = kNow) {
  Commands commands = NextCommands(*txn, now_ms);
  for (const StepCommand& command : commands)
    BOOST_REQUIRE(MarkDispatched(txn, command, now_ms).ok());
  return commands;
}

void Answer(v1::Transaction* txn, StepCommand command,
            v1::CommandOutcome outcome, int64_t now_ms = kNow,
            std::string_view message = "boom") {
  BOOST_REQUIRE(ApplyResult(txn, command, outcome, message, now_ms).ok());
}

v1::StepStatus StatusOf(const v1::Transaction& txn, int step) {
  return txn.saga().steps(step).status();
}

std::string Validate(const v1::SagaDefinition& def) {
  absl::Status s = ValidateDefinition(def);
  BOOST_TEST(absl::IsInvalidArgument(s), s);
  return std::string(s.message());
}

BOOST_AUTO_TEST_SUITE(saga)

// ---------------------------------------------------------------------------
// Validation and start.

BOOST_AUTO_TEST_CASE(validation_names_each_problem) {
  BOOST_TEST(Validate(Def({})) == "saga has no steps");
  std::vector<v1::SagaStep> many;
  for (int i = 0; i <= kMaxSteps; ++i) many.push_back(Step(std::to_string(i)));
  BOOST_TEST(Validate(Def(many)) == "saga has 257 steps, over 256");

  BOOST_TEST(Validate(Def({Step("a"), Step("")})) == "step 1: has no name");
  BOOST_TEST(Validate(Def({Step(std::string(129, 'n'))})) ==
             "step 0: name is 129 bytes, over 128");
  BOOST_TEST(Validate(Def({Step("a"), Step("b"), Step("b")})) ==
             "step 'b': appears twice");

  v1::SagaStep step = Step("a");
  step.mutable_action()->clear_resource();
  BOOST_TEST(Validate(Def({step})) == "step 'a': action has no resource");
  step.mutable_action()->set_resource(std::string(129, 'r'));
  BOOST_TEST(Validate(Def({step})) ==
             "step 'a': action resource is 129 bytes, over 128");
  step = Step("a");
  step.mutable_action()->set_payload(std::string(65537, 'p'));
  BOOST_TEST(Validate(Def({step})) ==
             "step 'a': action payload is 65537 bytes, over 65536");
  step = Step("a");
  step.mutable_compensation()->set_payload(std::string(65537, 'p'));
  BOOST_TEST(Validate(Def({step})) ==
             "step 'a': compensation payload is 65537 bytes, over 65536");
}

BOOST_AUTO_TEST_CASE(validation_bounds_the_total_payload) {
  std::vector<v1::SagaStep> steps;
  for (int i = 0; i < 65; ++i) {
    v1::SagaStep step = Step("s" + std::to_string(i));
    step.mutable_action()->set_payload(std::string(65536, 'a'));
    step.mutable_compensation()->set_payload(std::string(65536, 'c'));
    steps.push_back(step);
  }
  BOOST_TEST(Validate(Def(steps)) ==
             "saga payloads total 8519680 bytes, over 8388608");
  steps.pop_back();
  BOOST_TEST(ValidateDefinition(Def(steps)).ok());
}

BOOST_AUTO_TEST_CASE(validation_checks_dependencies) {
  BOOST_TEST(Validate(Def({Step("a"), Step("b", {"zz"})})) ==
             "step 'b': depends on unknown step 'zz'");
  BOOST_TEST(Validate(Def({Step("a", {"a"})})) ==
             "step 'a': depends on itself");
  BOOST_TEST(Validate(Def({Step("a"), Step("b", {"a", "a"})})) ==
             "step 'b': lists 'a' twice");
  BOOST_TEST(
      Validate(Def({Step("a", {"c"}), Step("b", {"a"}), Step("c", {"b"})})) ==
      "steps depend on each other in a cycle: 'a' -> 'c' -> 'b' -> 'a' "
      "(each needs the next)");
  // A cycle away from the first step, next to a valid diamond.
  BOOST_TEST(Validate(Def({Step("top"), Step("l", {"top"}), Step("r", {"top"}),
                           Step("x", {"l", "y"}), Step("y", {"x"})})) ==
             "steps depend on each other in a cycle: 'x' -> 'y' -> 'x' "
             "(each needs the next)");
}

BOOST_AUTO_TEST_CASE(validation_checks_retry_policy_and_timeout) {
  auto with = [](auto change) {
    v1::SagaStep step = Step("a");
    change(&step);
    return Validate(Def({step}));
  };
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_max_attempts(1001);
             }) == "step 'a': max_attempts 1001 is over 1000");
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_multiplier(0.5);
             }) == "step 'a': retry multiplier 0.5 is outside [1, 10]");
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_multiplier(11);
             }) == "step 'a': retry multiplier 11 is outside [1, 10]");
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_multiplier(std::nan(""));
             }) == "step 'a': retry multiplier nan is outside [1, 10]");
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_initial_backoff_ms(-1);
             }) == "step 'a': initial_backoff_ms -1 is negative");
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_max_backoff_ms(50);
             }) ==
             "step 'a': max_backoff_ms 50 is below initial_backoff_ms 100");
  // The default initial backoff is 100, too.
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_initial_backoff_ms(0);
               s->mutable_retry()->set_max_backoff_ms(50);
             }) ==
             "step 'a': max_backoff_ms 50 is below initial_backoff_ms 100");
  BOOST_TEST(with([](v1::SagaStep* s) {
               s->mutable_retry()->set_max_backoff_ms(86'400'001);
             }) == "step 'a': max_backoff_ms 86400001 is over 86400000");
  BOOST_TEST(with([](v1::SagaStep* s) { s->set_timeout_ms(-5); }) ==
             "step 'a': timeout_ms -5 is negative");
  BOOST_TEST(with([](v1::SagaStep* s) { s->set_timeout_ms(86'400'001); }) ==
             "step 'a': timeout_ms 86400001 is over 86400000");
}

BOOST_AUTO_TEST_CASE(start_fills_defaults_and_starts_every_step_pending) {
  v1::SagaStep bare;
  bare.set_name("bare");
  bare.mutable_action()->set_resource("svc");
  bare.mutable_action()->set_payload("seat 12A");
  v1::SagaStep big_backoff = Step("big", {"bare"});
  big_backoff.mutable_retry()->set_initial_backoff_ms(40'000);
  big_backoff.mutable_retry()->set_max_backoff_ms(0);
  v1::Transaction txn = Started(Def({bare, big_backoff}));

  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_BEGUN);
  const v1::SagaStep& filled = txn.saga().definition().steps(0);
  // An empty compensation is the action's call.
  BOOST_TEST(filled.compensation().resource() == "svc");
  BOOST_TEST(filled.compensation().payload() == "seat 12A");
  BOOST_TEST(filled.retry().max_attempts() == 1u);
  BOOST_TEST(filled.retry().initial_backoff_ms() == 100);
  BOOST_TEST(filled.retry().multiplier() == 2);
  BOOST_TEST(filled.retry().max_backoff_ms() == 30'000);
  BOOST_TEST(filled.timeout_ms() == 30'000);
  BOOST_TEST(txn.saga().definition().steps(1).retry().max_backoff_ms() ==
             40'000);
  BOOST_TEST(txn.saga().definition().steps(1).compensation().resource() ==
             "svc-big");
  BOOST_REQUIRE(txn.saga().steps_size() == 2);
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_PENDING);
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_PENDING);
  BOOST_TEST(CallFor(txn, Act(1)).payload() == "do big");
  BOOST_TEST(CallFor(txn, Undo(1)).payload() == "undo big");
}

BOOST_AUTO_TEST_CASE(start_refuses_wrong_transactions_and_bad_definitions) {
  v1::Transaction txn = Started(Def({Step("a")}));
  v1::Transaction copy = txn;
  BOOST_TEST(absl::IsFailedPrecondition(Start(&txn, Def({Step("b")}), kNow)));
  BOOST_TEST(txn.SerializeAsString() == copy.SerializeAsString());

  v1::Transaction two_phase = OpenSaga();
  two_phase.set_protocol(v1::PROTOCOL_TWO_PHASE);
  BOOST_TEST(
      absl::IsFailedPrecondition(Start(&two_phase, Def({Step("a")}), kNow)));

  v1::Transaction fresh = OpenSaga();
  absl::Status s = Start(&fresh, Def({}), kNow);
  BOOST_TEST(absl::IsInvalidArgument(s));
  BOOST_TEST(s.message() == "saga 0-1-9: saga has no steps");
  BOOST_TEST(!fresh.has_saga());
}

// ---------------------------------------------------------------------------
// Running forward.

BOOST_AUTO_TEST_CASE(linear_chain_runs_each_step_after_the_previous) {
  v1::Transaction txn =
      Started(Def({Step("a"), Step("b", {"a"}), Step("c", {"b"})}));
  for (uint32_t i = 0; i < 3; ++i) {
    int64_t t = kNow + 10 * i;
    BOOST_TEST(DispatchAll(&txn, t) == Commands{Act(i)});
    BOOST_TEST(NextCommands(txn, t).empty());
    BOOST_TEST(txn.saga().steps(i).attempts() == 1u);
    BOOST_TEST(txn.saga().steps(i).timeout_unix_ms() == t + kTimeout);
    BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_BEGUN);
    Answer(&txn, Act(i), kDone, t + 5);
  }
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(txn.decided_unix_ms() == kNow + 25);
  BOOST_TEST(txn.finished_unix_ms() == kNow + 25);
  BOOST_TEST(NextCommands(txn, kNow + 30).empty());
  BOOST_TEST(NextActionTime(txn, kWindow) == 0);
  // A repeated answer changes nothing.
  Answer(&txn, Act(2), kDone, kNow + 40);
  BOOST_TEST(txn.finished_unix_ms() == kNow + 25);
}

BOOST_AUTO_TEST_CASE(diamond_runs_its_middle_in_parallel) {
  v1::Transaction txn =
      Started(Def({Step("top"), Step("left", {"top"}), Step("right", {"top"}),
                   Step("bottom", {"left", "right"})}));
  BOOST_TEST(DispatchAll(&txn) == Commands{Act(0)});
  Answer(&txn, Act(0), kDone);
  BOOST_TEST(DispatchAll(&txn) == (Commands{Act(1), Act(2)}));
  Answer(&txn, Act(2), kDone);
  BOOST_TEST(NextCommands(txn, kNow).empty());  // bottom still needs left
  Answer(&txn, Act(1), kDone);
  BOOST_TEST(DispatchAll(&txn) == Commands{Act(3)});
  Answer(&txn, Act(3), kDone);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(max_parallel_limits_what_is_in_flight) {
  v1::Transaction txn =
      Started(Def({Step("a"), Step("b"), Step("c"), Step("d", {"a"})}, 2));
  BOOST_TEST(NextCommands(txn, kNow) == (Commands{Act(0), Act(1)}));
  BOOST_TEST(absl::IsFailedPrecondition(MarkDispatched(&txn, Act(2), kNow)));
  BOOST_TEST(absl::IsFailedPrecondition(MarkDispatched(&txn, Act(3), kNow)));
  DispatchAll(&txn);
  BOOST_TEST(NextCommands(txn, kNow).empty());
  Answer(&txn, Act(0), kDone);
  // One slot: c comes before d in step order.
  BOOST_TEST(DispatchAll(&txn) == Commands{Act(2)});
  Answer(&txn, Act(1), kDone);
  BOOST_TEST(DispatchAll(&txn) == Commands{Act(3)});
  Answer(&txn, Act(2), kDone);
  Answer(&txn, Act(3), kDone);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(retryable_failure_backs_off_then_succeeds) {
  v1::Transaction txn = Started(Def({Step("pay")}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kRetry, kNow + 10, "card busy");
  const v1::StepProgress& p = txn.saga().steps(0);
  BOOST_TEST(p.status() == v1::STEP_STATUS_PENDING);
  BOOST_TEST(p.last_error() == "card busy");
  BOOST_TEST(p.next_attempt_unix_ms() == kNow + 110);
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 110);
  BOOST_TEST(NextCommands(txn, kNow + 109).empty());
  BOOST_TEST(DispatchAll(&txn, kNow + 110) == Commands{Act(0)});
  BOOST_TEST(p.attempts() == 2u);
  Answer(&txn, Act(0), kDone, kNow + 120);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(backlog_counts_steps_owed_and_not_in_flight) {
  v1::Transaction txn = Started(Def({Step("a"), Step("b")}));
  // Owed, and not sent: no participant served them yet.
  BOOST_TEST(Backlog(txn, kNow) == 2u);
  DispatchAll(&txn);
  BOOST_TEST(Backlog(txn, kNow) == 0u);  // Both in flight.
  Answer(&txn, Act(0), kRetry, kNow + 10, "busy");
  BOOST_TEST(Backlog(txn, kNow + 10) == 1u);   // Waiting out its backoff.
  BOOST_TEST(Backlog(txn, kNow + 110) == 1u);  // Due, not yet sent.
  Answer(&txn, Act(1), kDone, kNow + 20);
  DispatchAll(&txn, kNow + 110);
  BOOST_TEST(Backlog(txn, kNow + 110) == 0u);
  Answer(&txn, Act(0), kDone, kNow + 120);
  BOOST_TEST(Backlog(txn, kNow + 120) == 0u);  // Committed.
}

BOOST_AUTO_TEST_CASE(spent_retry_budget_compensates_with_the_backoff_schedule) {
  v1::SagaStep pay = Step("pay", {"reserve"});
  pay.mutable_retry()->set_max_attempts(4);
  pay.mutable_retry()->set_multiplier(3);
  pay.mutable_retry()->set_max_backoff_ms(500);
  v1::Transaction txn = Started(Def({Step("reserve"), pay}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  int64_t t = kNow;
  for (int64_t delay : {100, 300, 500}) {
    BOOST_TEST(DispatchAll(&txn, t) == Commands{Act(1)});
    Answer(&txn, Act(1), kRetry, t, "card declined");
    BOOST_TEST(txn.saga().steps(1).next_attempt_unix_ms() == t + delay);
    t += delay;
  }
  DispatchAll(&txn, t);
  Answer(&txn, Act(1), kRetry, t, "card declined");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() == "step 'pay' exhausted 4 attempts: card declined");
  BOOST_TEST(txn.decided_unix_ms() == t);
  BOOST_TEST(txn.saga().steps(1).attempts() == 4u);
  BOOST_TEST(DispatchAll(&txn, t) == Commands{Undo(1)});
  Answer(&txn, Undo(1), kDone, t);
  BOOST_TEST(DispatchAll(&txn, t) == Commands{Undo(0)});
  Answer(&txn, Undo(0), kDone, t);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(txn.finished_unix_ms() == t);
}

BOOST_AUTO_TEST_CASE(backoff_grows_and_is_capped) {
  v1::RetryPolicy policy;
  policy.set_initial_backoff_ms(100);
  policy.set_multiplier(2);
  policy.set_max_backoff_ms(1000);
  BOOST_TEST(BackoffMs(policy, 1) == 100);
  BOOST_TEST(BackoffMs(policy, 2) == 200);
  BOOST_TEST(BackoffMs(policy, 4) == 800);
  BOOST_TEST(BackoffMs(policy, 5) == 1000);
  BOOST_TEST(BackoffMs(policy, 1'000'000) == 1000);
  policy.set_multiplier(1);
  BOOST_TEST(BackoffMs(policy, 50) == 100);
  policy.set_multiplier(1.5);
  BOOST_TEST(BackoffMs(policy, 3) == 225);
}

// ---------------------------------------------------------------------------
// Compensating.

BOOST_AUTO_TEST_CASE(last_step_failing_compensates_in_exact_reverse_order) {
  v1::Transaction txn =
      Started(Def({Step("book-hotel"), Step("book-flight", {"book-hotel"}),
                   Step("pay", {"book-flight"}), Step("book-car", {"pay"})}));
  for (uint32_t i = 0; i < 3; ++i) {
    DispatchAll(&txn);
    Answer(&txn, Act(i), kDone);
  }
  DispatchAll(&txn);
  Answer(&txn, Act(3), kFailed, kNow + 7, "no cars left");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() == "step 'book-car' failed: no cars left");
  // The failed step is compensated too: it may have left something behind.
  for (uint32_t i = 4; i-- > 0;) {
    BOOST_TEST(DispatchAll(&txn, kNow + 10) == Commands{Undo(i)});
    BOOST_TEST(NextCommands(txn, kNow + 10).empty());
    BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
    Answer(&txn, Undo(i), kDone, kNow + 20);
  }
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(txn.finished_unix_ms() == kNow + 20);
  BOOST_TEST(txn.saga().steps(0).action_succeeded());
  BOOST_TEST(!txn.saga().steps(3).action_succeeded());
  BOOST_TEST(NextActionTime(txn, kWindow) == 0);
}

BOOST_AUTO_TEST_CASE(
    parallel_failure_ignores_late_results_and_undoes_in_flight) {
  v1::Transaction txn =
      Started(Def({Step("root"), Step("x", {"root"}), Step("y", {"root"}),
                   Step("z", {"root"}), Step("after-x", {"x"})}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  BOOST_TEST(DispatchAll(&txn) == (Commands{Act(1), Act(2), Act(3)}));
  Answer(&txn, Act(2), kFailed, kNow, "out of stock");
  BOOST_TEST(txn.reason() == "step 'y' failed: out of stock");
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_COMPENSATION_PENDING);
  BOOST_TEST(StatusOf(txn, 3) == v1::STEP_STATUS_COMPENSATION_PENDING);
  BOOST_TEST(StatusOf(txn, 4) == v1::STEP_STATUS_SKIPPED);

  // Late answers of the in-flight siblings are stale and change nothing.
  std::string before = txn.SerializeAsString();
  BOOST_TEST(absl::IsFailedPrecondition(
      ApplyResult(&txn, Act(1), kDone, "", kNow + 1)));
  BOOST_TEST(absl::IsFailedPrecondition(
      ApplyResult(&txn, Act(3), kFailed, "late", kNow + 1)));
  BOOST_TEST(txn.SerializeAsString() == before);

  BOOST_TEST(DispatchAll(&txn) == (Commands{Undo(3), Undo(2), Undo(1)}));
  Answer(&txn, Undo(1), kDone);
  Answer(&txn, Undo(3), kDone);
  BOOST_TEST(NextCommands(txn, kNow).empty());  // root waits for y
  Answer(&txn, Undo(2), kDone);
  BOOST_TEST(DispatchAll(&txn) == Commands{Undo(0)});
  Answer(&txn, Undo(0), kDone);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(txn.saga().steps(4).compensation_attempts() == 0u);
  BOOST_TEST(absl::IsFailedPrecondition(
      ApplyResult(&txn, Act(3), kDone, "", kNow + 2)));
}

BOOST_AUTO_TEST_CASE(compensation_respects_max_parallel) {
  v1::Transaction txn =
      Started(Def({Step("a"), Step("b"), Step("c"), Step("d")}, 2));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  Answer(&txn, Act(1), kFailed);
  BOOST_TEST(DispatchAll(&txn) == (Commands{Undo(1), Undo(0)}));
  BOOST_TEST(StatusOf(txn, 2) == v1::STEP_STATUS_SKIPPED);
  // c and d were never dispatched: only a and b need undoing.
  Answer(&txn, Undo(1), kDone);
  Answer(&txn, Undo(0), kDone);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);

  // Four owed: two at a time. An action in flight when the saga turned
  // (c) no longer takes a slot: its answer is stale.
  v1::Transaction wide =
      Started(Def({Step("a"), Step("b"), Step("c"), Step("d")}, 2));
  DispatchAll(&wide);
  Answer(&wide, Act(0), kDone);
  Answer(&wide, Act(1), kDone);
  BOOST_TEST(DispatchAll(&wide) == (Commands{Act(2), Act(3)}));
  Answer(&wide, Act(3), kFailed);
  BOOST_TEST(DispatchAll(&wide) == (Commands{Undo(3), Undo(2)}));
  BOOST_TEST(DispatchAll(&wide).empty());
  Answer(&wide, Undo(2), kDone);
  BOOST_TEST(DispatchAll(&wide) == Commands{Undo(1)});
  Answer(&wide, Undo(3), kDone);
  BOOST_TEST(DispatchAll(&wide) == Commands{Undo(0)});
  Answer(&wide, Undo(1), kDone);
  Answer(&wide, Undo(0), kDone);
  BOOST_TEST(wide.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
}

BOOST_AUTO_TEST_CASE(compensation_retries_without_limit_then_succeeds) {
  v1::Transaction txn = Started(Def({Step("a")}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kFailed, kNow, "no");
  int64_t t = kNow;
  for (int64_t delay : {100, 200, 400, 800, 1000, 1000}) {
    BOOST_TEST(DispatchAll(&txn, t) == Commands{Undo(0)});
    Answer(&txn, Undo(0), kRetry, t, "ledger busy");
    BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_COMPENSATION_PENDING);
    BOOST_TEST(txn.saga().steps(0).next_attempt_unix_ms() == t + delay);
    BOOST_TEST(NextActionTime(txn, kWindow) == t + delay);
    BOOST_TEST(NextCommands(txn, t + delay - 1).empty());
    t += delay;
  }
  DispatchAll(&txn, t);
  Answer(&txn, Undo(0), kDone, t);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(txn.saga().steps(0).compensation_attempts() == 7u);
  BOOST_TEST(txn.saga().steps(0).attempts() == 1u);
}

BOOST_AUTO_TEST_CASE(failed_compensation_parks_the_saga_as_rollback_stuck) {
  v1::Transaction txn =
      Started(Def({Step("a"), Step("b", {"a"}), Step("side")}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  DispatchAll(&txn);
  Answer(&txn, Act(1), kFailed, kNow, "bad card");
  BOOST_TEST(DispatchAll(&txn) == (Commands{Undo(2), Undo(1)}));
  Answer(&txn, Undo(1), kFailed, kNow + 3, "ledger closed");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  BOOST_TEST(txn.reason() == "compensation of step 'b' failed: ledger closed");
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_COMPENSATION_FAILED);
  // a stays owed behind the parked step; side goes on.
  BOOST_TEST(NextCommands(txn, kNow + 100).empty());
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + kTimeout);
  Answer(&txn, Undo(2), kRetry, kNow + 5);
  BOOST_TEST(DispatchAll(&txn, kNow + 105) == Commands{Undo(2)});
  Answer(&txn, Undo(2), kDone, kNow + 106);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_COMPENSATION_PENDING);
  BOOST_TEST(NextActionTime(txn, kWindow) == 0);
  // Nothing more without an operator; repeats are harmless.
  Answer(&txn, Undo(1), kFailed, kNow + 200, "again");
  BOOST_TEST(txn.reason() == "compensation of step 'b' failed: ledger closed");
}

BOOST_AUTO_TEST_CASE(
    rollback_past_the_retry_window_is_stuck_but_retries_go_on) {
  v1::Transaction txn = Started(Def({Step("a"), Step("b", {"a"})}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  DispatchAll(&txn);
  Answer(&txn, Act(1), kFailed, kNow + 1, "nope");
  DispatchAll(&txn, kNow + 1);
  Answer(&txn, Undo(1), kRetry, kNow + 2, "ledger busy");
  BOOST_TEST(NextActionTime(txn, 50) == kNow + 51);
  BOOST_TEST(!MarkStuckIfRetryWindowPassed(&txn, kNow + 50, 50));
  BOOST_TEST(MarkStuckIfRetryWindowPassed(&txn, kNow + 51, 50));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  BOOST_TEST(txn.reason() ==
             "compensation unfinished after 0 s: step 'b' made 1 attempt, "
             "last error: ledger busy");
  BOOST_TEST(!MarkStuckIfRetryWindowPassed(&txn, kNow + 99, 50));
  BOOST_TEST(NextActionTime(txn, 50) == kNow + 102);  // the backoff only
  BOOST_TEST(DispatchAll(&txn, kNow + 102) == Commands{Undo(1)});
  Answer(&txn, Undo(1), kDone, kNow + 103);
  BOOST_TEST(DispatchAll(&txn, kNow + 103) == Commands{Undo(0)});
  Answer(&txn, Undo(0), kDone, kNow + 104);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
}

// ---------------------------------------------------------------------------
// Forward recovery.

v1::SagaDefinition ForwardDef() {
  return Def({Step("a"), Step("b", {"a"}), Step("c")}, 0, true);
}

BOOST_AUTO_TEST_CASE(forward_recovery_retries_past_the_budget_and_commits) {
  v1::Transaction txn = Started(ForwardDef());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_TEST(txn.decided_unix_ms() == kNow);
  int64_t t = kNow;
  BOOST_TEST(DispatchAll(&txn, t) == (Commands{Act(0), Act(2)}));
  Answer(&txn, Act(2), kDone, t);
  for (int attempt = 1; attempt <= 6; ++attempt) {
    Answer(&txn, Act(0), kRetry, t, "later");
    BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);
    t = txn.saga().steps(0).next_attempt_unix_ms();
    BOOST_TEST(DispatchAll(&txn, t) == Commands{Act(0)});
  }
  BOOST_TEST(txn.saga().steps(0).attempts() == 7u);
  Answer(&txn, Act(0), kDone, t);
  BOOST_TEST(DispatchAll(&txn, t) == Commands{Act(1)});
  Answer(&txn, Act(1), kDone, t);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(txn.decided_unix_ms() == kNow);
}

BOOST_AUTO_TEST_CASE(forward_recovery_parks_a_failed_step_as_commit_stuck) {
  v1::Transaction txn = Started(ForwardDef());
  DispatchAll(&txn);
  Answer(&txn, Act(0), kFailed, kNow + 1, "account frozen");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(txn.reason() == "step 'a' failed: account frozen");
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_FAILED);
  // The independent step still finishes; b waits for an operator.
  Answer(&txn, Act(2), kDone, kNow + 2);
  BOOST_TEST(NextCommands(txn, kNow + 1000).empty());
  BOOST_TEST(NextActionTime(txn, kWindow) == 0);
  BOOST_TEST(absl::IsFailedPrecondition(
      RequestCompensation(&txn, "caller", kNow + 3)));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_PENDING);
}

BOOST_AUTO_TEST_CASE(forward_recovery_past_the_window_names_the_step) {
  v1::Transaction txn = Started(ForwardDef());
  DispatchAll(&txn);
  Answer(&txn, Act(2), kDone);
  Answer(&txn, Act(0), kRetry, kNow, "bank offline");
  // No deadline: a forward-recovery saga is bounded by the window.
  BOOST_TEST(!ExpireIfPastDeadline(&txn, kDeadline + 1));
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 100);
  BOOST_TEST(!MarkStuckIfRetryWindowPassed(&txn, kNow + kWindow - 1, kWindow));
  BOOST_TEST(MarkStuckIfRetryWindowPassed(&txn, kNow + kWindow, kWindow));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(txn.reason() ==
             "saga unfinished after 600 s: step 'a' made 1 attempt, last "
             "error: bank offline");
  // Retries go on, and a success finishes it.
  int64_t t = kNow + kWindow;
  BOOST_TEST(DispatchAll(&txn, t) == Commands{Act(0)});
  Answer(&txn, Act(0), kDone, t);
  DispatchAll(&txn, t);
  Answer(&txn, Act(1), kDone, t);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

// ---------------------------------------------------------------------------
// Time: step timeouts, the deadline.

BOOST_AUTO_TEST_CASE(unanswered_step_times_out_and_is_compensated) {
  v1::SagaStep once = Step("once", {"a"});
  once.mutable_retry()->set_max_attempts(1);
  v1::Transaction txn = Started(Def({Step("a"), once}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  DispatchAll(&txn, kNow + 10);
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 10 + kTimeout);
  BOOST_TEST(!ExpireTimedOutSteps(&txn, kNow + 10 + kTimeout - 1));
  BOOST_TEST(ExpireTimedOutSteps(&txn, kNow + 10 + kTimeout));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() ==
             "step 'once' exhausted 1 attempt: no answer within 5000 ms, "
             "outcome unknown");
  // It may have run, so it is compensated first.
  BOOST_TEST(DispatchAll(&txn, kNow + 10 + kTimeout) == Commands{Undo(1)});
}

BOOST_AUTO_TEST_CASE(timed_out_step_takes_a_late_success_and_ignores_failures) {
  v1::Transaction txn = Started(Def({Step("a"), Step("b")}));
  DispatchAll(&txn);
  BOOST_TEST(ExpireTimedOutSteps(&txn, kNow + kTimeout));
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_PENDING);
  BOOST_TEST(txn.saga().steps(0).next_attempt_unix_ms() ==
             kNow + kTimeout + 100);
  std::string before = txn.SerializeAsString();
  Answer(&txn, Act(0), kRetry, kNow + kTimeout + 1);
  Answer(&txn, Act(0), kFailed, kNow + kTimeout + 1);
  BOOST_TEST(txn.SerializeAsString() == before);
  Answer(&txn, Act(0), kDone, kNow + kTimeout + 2);
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_SUCCEEDED);
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_PENDING);
}

BOOST_AUTO_TEST_CASE(compensation_timeout_retries_it) {
  v1::Transaction txn = Started(Def({Step("a")}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kFailed);
  DispatchAll(&txn);
  BOOST_TEST(ExpireTimedOutSteps(&txn, kNow + kTimeout));
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_COMPENSATION_PENDING);
  BOOST_TEST(txn.saga().steps(0).last_error() ==
             "no answer within 5000 ms, outcome unknown");
  // The late answer to the timed-out attempt finishes it.
  Answer(&txn, Undo(0), kDone, kNow + kTimeout + 1);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
}

BOOST_AUTO_TEST_CASE(deadline_turns_the_saga_to_compensation) {
  v1::Transaction txn = Started(Def({Step("a"), Step("b", {"a"})}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  BOOST_TEST(DispatchAll(&txn, kDeadline - 1) == Commands{Act(1)});
  Answer(&txn, Act(1), kRetry, kDeadline - 1);
  BOOST_TEST(NextActionTime(txn, kWindow) == kDeadline);
  // Past the deadline nothing new starts, even with the backoff over.
  BOOST_TEST(NextCommands(txn, kDeadline + 200).empty());
  BOOST_TEST(!ExpireIfPastDeadline(&txn, kDeadline - 1));
  BOOST_TEST(ExpireIfPastDeadline(&txn, kDeadline));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() == "timeout");
  BOOST_TEST(!ExpireIfPastDeadline(&txn, kDeadline + 1));
  BOOST_TEST(DispatchAll(&txn, kDeadline) == Commands{Undo(1)});
}

BOOST_AUTO_TEST_CASE(deadline_with_nothing_dispatched_rolls_back_at_once) {
  v1::Transaction txn = Started(Def({Step("a")}));
  BOOST_TEST(ExpireIfPastDeadline(&txn, kDeadline));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(txn.finished_unix_ms() == kDeadline);
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_SKIPPED);
}

// ---------------------------------------------------------------------------
// The caller's rollback, bad answers, pausing, NextActionTime.

BOOST_AUTO_TEST_CASE(caller_rollback_mid_flight) {
  v1::Transaction txn =
      Started(Def({Step("a"), Step("b", {"a"}), Step("c", {"b"})}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  DispatchAll(&txn);
  BOOST_TEST(RequestCompensation(&txn, "caller changed its mind", kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason() == "caller changed its mind");
  BOOST_TEST(RequestCompensation(&txn, "again", kNow + 1).ok());
  BOOST_TEST(txn.reason() == "caller changed its mind");
  BOOST_TEST(StatusOf(txn, 2) == v1::STEP_STATUS_SKIPPED);
  BOOST_TEST(absl::IsFailedPrecondition(
      ApplyResult(&txn, Act(1), kDone, "", kNow + 2)));
  BOOST_TEST(DispatchAll(&txn) == Commands{Undo(1)});
  Answer(&txn, Undo(1), kDone);
  BOOST_TEST(DispatchAll(&txn) == Commands{Undo(0)});
  Answer(&txn, Undo(0), kDone);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(RequestCompensation(&txn, "late", kNow + 3).ok());

  v1::Transaction done = Started(Def({Step("a")}));
  DispatchAll(&done);
  Answer(&done, Act(0), kDone);
  absl::Status s = RequestCompensation(&done, "too late", kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(s.message() == "cannot compensate saga 0-1-9: it is committed");
}

BOOST_AUTO_TEST_CASE(bad_answers_are_refused_and_change_nothing) {
  v1::Transaction txn = Started(Def({Step("a"), Step("b", {"a"})}));
  DispatchAll(&txn);
  std::string before = txn.SerializeAsString();
  absl::Status s = ApplyResult(&txn, Act(7), kDone, "", kNow);
  BOOST_TEST(absl::IsNotFound(s));
  BOOST_TEST(s.message() == "saga 0-1-9 has no step 7");
  s = ApplyResult(&txn, Act(1), kDone, "", kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(s.message() ==
             "action of step 'b' of saga 0-1-9 was never dispatched");
  s = ApplyResult(&txn, Undo(0), kDone, "", kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(s.message() ==
             "compensation result for step 'a', but saga 0-1-9 is begun");
  s = ApplyResult(&txn, Act(0), v1::COMMAND_OUTCOME_UNSPECIFIED, "", kNow);
  BOOST_TEST(absl::IsInvalidArgument(s));
  BOOST_TEST(absl::IsNotFound(MarkDispatched(&txn, Act(2), kNow)));
  s = MarkDispatched(&txn, Act(1), kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(s.message() ==
             "action of step 'b' of saga 0-1-9 may not be dispatched now");
  BOOST_TEST(absl::IsFailedPrecondition(MarkDispatched(&txn, Undo(0), kNow)));
  BOOST_TEST(txn.SerializeAsString() == before);

  Answer(&txn, Act(0), kFailed);
  s = ApplyResult(&txn, Undo(1), kDone, "", kNow);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(txn.SerializeAsString() != before);
}

BOOST_AUTO_TEST_CASE(long_errors_are_cut_on_a_character_boundary) {
  v1::Transaction txn = Started(Def({Step("a")}));
  DispatchAll(&txn);
  std::string message = "x";
  for (int i = 0; i < 700; ++i) message += "\xC3\xA9";  // "é"
  Answer(&txn, Act(0), kRetry, kNow, message);
  const std::string& kept = txn.saga().steps(0).last_error();
  BOOST_TEST(kept.size() == 1023u);
  BOOST_TEST(kept == message.substr(0, 1023));
}

// a then b; b failed, and its compensation failed for good.
v1::Transaction StuckCompensatingB() {
  v1::Transaction txn = Started(Def({Step("a"), Step("b", {"a"})}));
  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  DispatchAll(&txn);
  Answer(&txn, Act(1), kFailed, kNow, "bad card");
  DispatchAll(&txn);
  Answer(&txn, Undo(1), kFailed, kNow + 1, "ledger closed");
  BOOST_REQUIRE(txn.status() == v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  return txn;
}

// Forward recovery; a failed for good, c succeeded, b waits behind a.
v1::Transaction StuckForwardOnA() {
  v1::Transaction txn = Started(ForwardDef());
  DispatchAll(&txn);
  Answer(&txn, Act(0), kFailed, kNow + 1, "account frozen");
  Answer(&txn, Act(2), kDone, kNow + 2);
  BOOST_REQUIRE(txn.status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  return txn;
}

BOOST_AUTO_TEST_CASE(retry_parked_reopens_a_failed_compensation) {
  v1::Transaction txn = StuckCompensatingB();

  absl::StatusOr<std::string> reopened = RetryParked(&txn, kNow + 50);
  BOOST_REQUIRE(reopened.ok());
  BOOST_TEST(*reopened == "'b'");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.retry_window_start_unix_ms() == kNow + 50);
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_COMPENSATION_PENDING);
  // Due at once, then the rest of the reverse order follows.
  BOOST_TEST(DispatchAll(&txn, kNow + 50) == Commands{Undo(1)});
  Answer(&txn, Undo(1), kDone, kNow + 51);
  BOOST_TEST(DispatchAll(&txn, kNow + 51) == Commands{Undo(0)});
  Answer(&txn, Undo(0), kDone, kNow + 52);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
}

BOOST_AUTO_TEST_CASE(retry_parked_reopens_a_failed_forward_step) {
  v1::Transaction txn = StuckForwardOnA();

  absl::StatusOr<std::string> reopened = RetryParked(&txn, kNow + 10);
  BOOST_REQUIRE(reopened.ok());
  BOOST_TEST(*reopened == "'a'");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_TEST(DispatchAll(&txn, kNow + 10) == Commands{Act(0)});
  Answer(&txn, Act(0), kDone, kNow + 11);
  BOOST_TEST(DispatchAll(&txn, kNow + 11) == Commands{Act(1)});
  Answer(&txn, Act(1), kDone, kNow + 12);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(retry_parked_makes_backoffs_due_and_skips_in_flight) {
  v1::Transaction txn = Started(Def({Step("a"), Step("b")}));
  DispatchAll(&txn);
  BOOST_REQUIRE(RequestCompensation(&txn, "caller", kNow + 1).ok());
  BOOST_REQUIRE(DispatchAll(&txn, kNow + 1) == (Commands{Undo(1), Undo(0)}));
  Answer(&txn, Undo(0), kRetry, kNow + 2);
  BOOST_REQUIRE(txn.saga().steps(0).next_attempt_unix_ms() > kNow + 2);
  // Nothing is parked: a's backoff becomes due, b stays in flight.
  absl::StatusOr<std::string> reopened = RetryParked(&txn, kNow + 3);
  BOOST_REQUIRE(reopened.ok());
  BOOST_TEST(reopened->empty());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_COMPENSATING);
  BOOST_TEST(txn.saga().steps(1).timeout_unix_ms() == kNow + 1 + kTimeout);
  BOOST_TEST(DispatchAll(&txn, kNow + 3) == Commands{Undo(0)});
}

BOOST_AUTO_TEST_CASE(retry_parked_and_finish_by_hand_refuse_undecided) {
  v1::Transaction txn = Started(Def({Step("a")}));
  v1::Transaction before = txn;
  absl::StatusOr<std::string> retried = RetryParked(&txn, kNow);
  BOOST_TEST(absl::IsFailedPrecondition(retried.status()));
  BOOST_TEST(std::string(retried.status().message()).find("0-1-9") !=
             std::string::npos);
  BOOST_TEST(absl::IsFailedPrecondition(FinishByHand(&txn, kNow).status()));
  BOOST_TEST(txn.SerializeAsString() == before.SerializeAsString());

  DispatchAll(&txn);
  Answer(&txn, Act(0), kDone);
  BOOST_REQUIRE(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(absl::IsFailedPrecondition(RetryParked(&txn, kNow).status()));
  BOOST_TEST(absl::IsFailedPrecondition(FinishByHand(&txn, kNow).status()));
}

BOOST_AUTO_TEST_CASE(finish_by_hand_on_the_rollback_side_marks_compensated) {
  v1::Transaction txn = StuckCompensatingB();

  absl::StatusOr<std::string> marked = FinishByHand(&txn, kNow + 9);
  BOOST_REQUIRE(marked.ok());
  BOOST_TEST(*marked == "'a', 'b'");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(txn.finished_unix_ms() == kNow + 9);
  BOOST_TEST(StatusOf(txn, 0) == v1::STEP_STATUS_COMPENSATED);
  BOOST_TEST(StatusOf(txn, 1) == v1::STEP_STATUS_COMPENSATED);
  BOOST_TEST(NextCommands(txn, kNow + 10).empty());
  BOOST_TEST(NextActionTime(txn, kWindow) == 0);
}

BOOST_AUTO_TEST_CASE(finish_by_hand_on_the_commit_side_marks_succeeded) {
  v1::Transaction txn = StuckForwardOnA();

  absl::StatusOr<std::string> marked = FinishByHand(&txn, kNow + 9);
  BOOST_REQUIRE(marked.ok());
  BOOST_TEST(*marked == "'a', 'b'");
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(StatusOf(txn, i) == v1::STEP_STATUS_SUCCEEDED);
  }
}

BOOST_AUTO_TEST_CASE(uses_resource_sees_actions_and_compensations) {
  v1::SagaStep pay = Step("pay");
  pay.mutable_compensation()->set_resource("refunds");
  v1::Transaction txn = Started(Def({Step("a"), pay}));
  BOOST_TEST(UsesResource(txn, "svc-a"));
  BOOST_TEST(UsesResource(txn, "svc-pay"));
  BOOST_TEST(UsesResource(txn, "refunds"));
  BOOST_TEST(!UsesResource(txn, "svc-b"));
  BOOST_TEST(StepStatusName(v1::STEP_STATUS_COMPENSATION_FAILED) ==
             "compensation failed");
}

BOOST_AUTO_TEST_CASE(paused_saga_is_not_marked_stuck) {
  v1::Transaction txn = Started(Def({Step("a"), Step("b")}));
  DispatchAll(&txn);
  BOOST_REQUIRE(RequestCompensation(&txn, "caller", kNow).ok());
  txn.set_paused(true);
  BOOST_TEST(NextActionTime(txn, kWindow) == 0);
  BOOST_TEST(!MarkStuckIfRetryWindowPassed(&txn, kNow + 2 * kWindow, kWindow));
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
}

BOOST_AUTO_TEST_CASE(paused_saga_dispatches_nothing) {
  v1::Transaction txn = Started(Def({Step("a")}));
  txn.set_paused(true);
  BOOST_TEST(NextCommands(txn, kNow).empty());
  txn.set_paused(false);
  BOOST_TEST(NextCommands(txn, kNow) == Commands{Act(0)});
}

BOOST_AUTO_TEST_CASE(next_action_time_follows_what_is_due) {
  v1::SagaStep slow = Step("slow");
  slow.set_timeout_ms(90'000);
  v1::Transaction txn = Started(Def({Step("a"), slow, Step("c")}, 2));
  BOOST_TEST(NextActionTime(txn, kWindow) == kDeadline);
  DispatchAll(&txn);  // a and slow
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + kTimeout);
  Answer(&txn, Act(0), kRetry, kNow + 1);
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 101);
  // At the limit, a backoff ends with an answer, not with time.
  BOOST_TEST(DispatchAll(&txn, kNow + 2) == Commands{Act(2)});
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 2 + kTimeout);
  Answer(&txn, Act(2), kDone, kNow + 3);
  txn.set_paused(true);
  BOOST_TEST(NextActionTime(txn, kWindow) == kDeadline);
  txn.set_paused(false);

  BOOST_REQUIRE(RequestCompensation(&txn, "stop", kNow + 4).ok());
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 4 + kWindow);
  BOOST_TEST(NextActionTime(txn, 10) == kNow + 14);
  DispatchAll(&txn, kNow + 4);
  BOOST_TEST(NextActionTime(txn, kWindow) == kNow + 4 + kTimeout);
  txn.set_retry_window_start_unix_ms(kNow + 100);
  BOOST_TEST(NextActionTime(txn, 10) == kNow + 110);
}

// ---------------------------------------------------------------------------
// Exhaustive: every small DAG, every mix of outcomes, many delivery orders.

// How a simulated participant answers each attempt of one step's action.
enum class Plan {
  kSucceed,
  kFail,               // FAILED at once
  kRetryThenSucceed,   // RETRY, then DONE
  kRetryExhausted,     // RETRY every time
  kSilentThenSucceed,  // no answer (timeout), then DONE
  kSilent,             // never answers
  kRetryPastBudget,    // RETRY 4 times (the budget is 3), then DONE
};

bool Succeeds(Plan plan) {
  return plan == Plan::kSucceed || plan == Plan::kRetryThenSucceed ||
         plan == Plan::kSilentThenSucceed;
}

// Whether and how attempt `attempt` (1 for the first) is answered.
bool ActionAnswer(Plan plan, uint32_t attempt, v1::CommandOutcome* outcome) {
  switch (plan) {
    case Plan::kSucceed:
      *outcome = kDone;
      return true;
    case Plan::kFail:
      *outcome = kFailed;
      return true;
    case Plan::kRetryThenSucceed:
      *outcome = attempt == 1 ? kRetry : kDone;
      return true;
    case Plan::kRetryExhausted:
      *outcome = kRetry;
      return true;
    case Plan::kSilentThenSucceed:
      *outcome = kDone;
      return attempt > 1;
    case Plan::kSilent:
      return false;
    case Plan::kRetryPastBudget:
      *outcome = attempt <= 4 ? kRetry : kDone;
      return true;
  }
  return false;
}

// SplitMix64: small, fast, and the same everywhere.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
};

struct Scenario {
  int steps = 0;
  // depends[i][j]: step i depends directly on step j (j < i).
  std::vector<std::vector<bool>> depends;
  std::vector<Plan> plans;
  uint32_t max_parallel = 0;
  bool forward_recovery = false;
  uint64_t seed = 0;
};

struct Sent {
  StepCommand command;
  uint32_t attempt;
};

class Simulation {
 public:
  explicit Simulation(const Scenario& scenario)
      : s_(scenario), rng_{scenario.seed}, txn_(OpenSaga()) {
    std::vector<v1::SagaStep> steps;
    for (int i = 0; i < s_.steps; ++i) {
      std::vector<std::string> deps;
      for (int j = 0; j < i; ++j)
        if (s_.depends[i][j]) deps.push_back(Name(j));
      steps.push_back(Step(Name(i), deps));
      steps.back().set_timeout_ms(1000);
      compensation_retries_.push_back(static_cast<uint32_t>(rng_.Below(3)));
    }
    txn_.set_deadline_unix_ms(kNow + 3'600'000);
    BOOST_REQUIRE(
        Start(&txn_, Def(steps, s_.max_parallel, s_.forward_recovery), kNow)
            .ok());
    ComputeReach();
  }

  // Drives the saga until it is terminal or waits on nothing; false if it
  // did not get there within a bound of events (a livelock).
  bool Run() {
    for (int event = 0; event < 400; ++event) {
      DispatchAll();
      if (IsTerminal(txn_.status())) return true;
      int64_t next = NextActionTime(txn_, kWindow);
      if (next != 0 && next <= now_) {
        // Something is due: the timers must change something, or the
        // coordinator would spin.
        BOOST_REQUIRE(RunTimers());
        continue;
      }
      if (!outstanding_.empty()) {
        DeliverOne();
        continue;
      }
      if (next == 0) return true;
      now_ = next;
      RunTimers();
    }
    return false;
  }

  void CheckOutcome() const {
    if (s_.forward_recovery) {
      CheckForwardOutcome();
    } else {
      CheckCompensatingOutcome();
    }
  }

 private:
  static std::string Name(int i) { return "s" + std::to_string(i); }

  // reach_[i][j]: step j depends on step i, directly or not.
  void ComputeReach() {
    reach_.assign(s_.steps, std::vector<bool>(s_.steps, false));
    for (int j = 0; j < s_.steps; ++j) {
      for (int i = 0; i < j; ++i) {
        if (!s_.depends[j][i]) continue;
        reach_[i][j] = true;
        for (int k = 0; k < i; ++k)
          if (reach_[k][i]) reach_[k][j] = true;
      }
    }
  }

  bool RunTimers() {
    bool changed = ExpireIfPastDeadline(&txn_, now_);
    changed |= ExpireTimedOutSteps(&txn_, now_);
    changed |= MarkStuckIfRetryWindowPassed(&txn_, now_, kWindow);
    return changed;
  }

  const v1::StepProgress& P(int i) const { return txn_.saga().steps(i); }

  void CheckMayDispatch(const StepCommand& c) const {
    int i = static_cast<int>(c.step);
    if (c.kind == StepKind::kAction) {
      BOOST_REQUIRE(!IsRollbackSide(txn_.status()));
      for (int j = 0; j < s_.steps; ++j) {
        if (reach_[j][i])
          BOOST_REQUIRE(P(j).status() == v1::STEP_STATUS_SUCCEEDED);
      }
      return;
    }
    BOOST_REQUIRE(P(i).attempts() > 0u);
    for (int j = 0; j < s_.steps; ++j) {
      if (!reach_[i][j]) continue;
      BOOST_REQUIRE((P(j).attempts() == 0u ||
                     P(j).status() == v1::STEP_STATUS_COMPENSATED));
    }
  }

  void DispatchAll() {
    for (const StepCommand& c : NextCommands(txn_, now_)) {
      CheckMayDispatch(c);
      BOOST_REQUIRE(MarkDispatched(&txn_, c, now_).ok());
      uint32_t attempt = c.kind == StepKind::kAction
                             ? P(c.step).attempts()
                             : P(c.step).compensation_attempts();
      v1::CommandOutcome unused;
      if (c.kind == StepKind::kCompensation ||
          ActionAnswer(s_.plans[c.step], attempt, &unused))
        outstanding_.push_back({c, attempt});
    }
    if (s_.max_parallel == 0) return;
    int in_flight = 0;
    for (const v1::StepProgress& p : txn_.saga().steps()) {
      in_flight += p.status() == v1::STEP_STATUS_RUNNING ||
                   p.status() == v1::STEP_STATUS_COMPENSATING;
    }
    BOOST_REQUIRE(in_flight <= static_cast<int>(s_.max_parallel));
  }

  void DeliverOne() {
    size_t pick = rng_.Below(outstanding_.size());
    Sent sent = outstanding_[pick];
    outstanding_.erase(outstanding_.begin() + pick);
    now_ += static_cast<int64_t>(rng_.Below(7));
    v1::CommandOutcome outcome = kDone;
    if (sent.command.kind == StepKind::kAction) {
      ActionAnswer(s_.plans[sent.command.step], sent.attempt, &outcome);
    } else if (sent.attempt <= compensation_retries_[sent.command.step]) {
      outcome = kRetry;
    }
    bool stale =
        sent.command.kind == StepKind::kAction && IsRollbackSide(txn_.status());
    std::string before = txn_.SerializeAsString();
    absl::Status s = ApplyResult(&txn_, sent.command, outcome, "no", now_);
    if (stale) {
      BOOST_REQUIRE(absl::IsFailedPrecondition(s));
      BOOST_REQUIRE(txn_.SerializeAsString() == before);
    } else {
      BOOST_REQUIRE(s.ok());
    }
  }

  void CheckCompensatingOutcome() const {
    bool all_succeed = true;
    for (Plan plan : s_.plans) all_succeed &= Succeeds(plan);
    if (all_succeed) {
      BOOST_REQUIRE(txn_.status() == v1::GLOBAL_STATUS_COMMITTED);
      for (int i = 0; i < s_.steps; ++i) {
        BOOST_REQUIRE(P(i).status() == v1::STEP_STATUS_SUCCEEDED);
        BOOST_REQUIRE(P(i).compensation_attempts() == 0u);
      }
      return;
    }
    BOOST_REQUIRE(txn_.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
    for (int i = 0; i < s_.steps; ++i) {
      bool dispatched = P(i).attempts() > 0;
      BOOST_REQUIRE(P(i).status() == (dispatched ? v1::STEP_STATUS_COMPENSATED
                                                 : v1::STEP_STATUS_SKIPPED));
      BOOST_REQUIRE(P(i).compensation_attempts() ==
                    (dispatched ? compensation_retries_[i] + 1 : 0u));
    }
    CheckReasonNamesAFailingStep();
  }

  void CheckReasonNamesAFailingStep() const {
    for (int i = 0; i < s_.steps; ++i) {
      if (Succeeds(s_.plans[i])) continue;
      std::string prefix = "step '" + Name(i) + "' ";
      std::string expected =
          s_.plans[i] == Plan::kFail ? prefix + "failed: no"
          : s_.plans[i] == Plan::kSilent
              ? prefix +
                    "exhausted 3 attempts: no answer within 1000 ms, outcome "
                    "unknown"
              : prefix + "exhausted 3 attempts: no";
      if (txn_.reason() == expected) return;
    }
    BOOST_FAIL("unexpected reason: " << txn_.reason());
  }

  void CheckForwardOutcome() const {
    bool any_fails = false;
    for (Plan plan : s_.plans) any_fails |= plan == Plan::kFail;
    BOOST_REQUIRE(txn_.status() == (any_fails ? v1::GLOBAL_STATUS_COMMIT_STUCK
                                              : v1::GLOBAL_STATUS_COMMITTED));
    for (int i = 0; i < s_.steps; ++i) {
      BOOST_REQUIRE(P(i).compensation_attempts() == 0u);
      bool blocked = false;
      for (int j = 0; j < s_.steps; ++j)
        blocked |= reach_[j][i] && s_.plans[j] == Plan::kFail;
      v1::StepStatus expected = blocked ? v1::STEP_STATUS_PENDING
                                : s_.plans[i] == Plan::kFail
                                    ? v1::STEP_STATUS_FAILED
                                    : v1::STEP_STATUS_SUCCEEDED;
      BOOST_REQUIRE(P(i).status() == expected);
    }
    if (any_fails)
      BOOST_REQUIRE(txn_.reason().find("' failed: no") != std::string::npos);
  }

  Scenario s_;
  Rng rng_;
  v1::Transaction txn_;
  int64_t now_ = kNow;
  std::vector<std::vector<bool>> reach_;
  std::vector<uint32_t> compensation_retries_;
  std::vector<Sent> outstanding_;
};

// Calls visit(scenario) for every DAG over 1..max_steps steps (every set of
// edges from a step to earlier ones covers every shape) and every
// assignment of `plans` to the steps.
template <typename Visit>
void ForEachScenario(int max_steps, const std::vector<Plan>& plans,
                     Visit visit) {
  for (int n = 1; n <= max_steps; ++n) {
    int edges = n * (n - 1) / 2;
    int assignments = 1;
    for (int i = 0; i < n; ++i) assignments *= static_cast<int>(plans.size());
    for (int mask = 0; mask < (1 << edges); ++mask) {
      Scenario s;
      s.steps = n;
      s.depends.assign(n, std::vector<bool>(n, false));
      int bit = 0;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < i; ++j) s.depends[i][j] = (mask >> bit++) & 1;
      for (int a = 0; a < assignments; ++a) {
        s.plans.clear();
        for (int i = 0, rest = a; i < n; ++i, rest /= plans.size())
          s.plans.push_back(plans[rest % plans.size()]);
        visit(s);
      }
    }
  }
}

void RunScenario(const Scenario& s) {
  BOOST_TEST_CONTEXT("steps " << s.steps << " seed " << s.seed
                              << " max_parallel " << s.max_parallel) {
    Simulation sim(s);
    BOOST_REQUIRE(sim.Run());
    sim.CheckOutcome();
  }
}

BOOST_AUTO_TEST_CASE(exhaustive_small_sagas_keep_every_invariant) {
  uint64_t runs = 0;
  ForEachScenario(4,
                  {Plan::kSucceed, Plan::kFail, Plan::kRetryThenSucceed,
                   Plan::kRetryExhausted},
                  [&](Scenario s) {
                    for (uint32_t max_parallel : {0u, 1u, 2u}) {
                      s.max_parallel = max_parallel;
                      s.seed = ++runs;
                      RunScenario(s);
                    }
                  });
  BOOST_TEST_MESSAGE("exhaustive runs: " << runs);
}

BOOST_AUTO_TEST_CASE(exhaustive_timeouts_and_many_orders) {
  uint64_t runs = 0;
  ForEachScenario(
      3,
      {Plan::kSucceed, Plan::kFail, Plan::kRetryThenSucceed,
       Plan::kRetryExhausted, Plan::kSilentThenSucceed, Plan::kSilent},
      [&](Scenario s) {
        for (int seed = 0; seed < 8; ++seed) {
          s.max_parallel = static_cast<uint32_t>(seed % 3);
          s.seed = ++runs;
          RunScenario(s);
        }
      });
  BOOST_TEST_MESSAGE("exhaustive runs: " << runs);
}

BOOST_AUTO_TEST_CASE(exhaustive_forward_recovery) {
  uint64_t runs = 0;
  ForEachScenario(4,
                  {Plan::kSucceed, Plan::kFail, Plan::kRetryPastBudget,
                   Plan::kSilentThenSucceed},
                  [&](Scenario s) {
                    s.forward_recovery = true;
                    s.max_parallel = static_cast<uint32_t>(runs % 3);
                    s.seed = ++runs;
                    RunScenario(s);
                  });
  BOOST_TEST_MESSAGE("exhaustive runs: " << runs);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton::saga
