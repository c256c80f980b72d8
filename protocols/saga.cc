#include "protocols/saga.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "common/limits.h"
#include "fmt/format.h"
#include "protocols/saga_definition.h"
#include "protocols/saga_record.h"
#include "protocols/transitions.h"

namespace baton::saga {
namespace {

// ---------------------------------------------------------------------------
// The record: lookups and predicates (those shared are in saga_record.h).

bool HasStep(const v1::Transaction& txn, uint32_t step) {
  return HasSaga(txn) && step < static_cast<uint32_t>(txn.saga().steps_size());
}

absl::Status NoSuchStep(const v1::Transaction& txn, uint32_t step) {
  return absl::NotFoundError(
      fmt::format("saga {} has no step {}", txn.xid(), step));
}

bool Compensates(v1::GlobalStatus status) {
  return status == v1::GLOBAL_STATUS_ROLLING_BACK ||
         status == v1::GLOBAL_STATUS_ROLLBACK_STUCK;
}

int CountInFlight(const v1::Transaction& txn) {
  return static_cast<int>(std::count_if(txn.saga().steps().begin(),
                                        txn.saga().steps().end(), InFlight));
}

// How many more dispatches max_parallel allows now.
int DispatchBudget(const v1::Transaction& txn) {
  uint32_t limit = txn.saga().definition().max_parallel();
  if (limit == 0) return std::numeric_limits<int>::max();
  return std::max(0, static_cast<int>(limit) - CountInFlight(txn));
}

bool StepIs(const v1::Transaction& txn, int step, v1::StepStatus status) {
  return txn.saga().steps(step).status() == status;
}

bool CanRunAction(const v1::Transaction& txn, const Graph& graph, int step,
                  int64_t now_ms) {
  const v1::StepProgress& p = txn.saga().steps(step);
  if (p.status() != v1::STEP_STATUS_PENDING ||
      p.next_attempt_unix_ms() > now_ms)
    return false;
  // Past the deadline only the expiry is due; forward recovery has none.
  if (txn.status() == v1::GLOBAL_STATUS_BEGUN &&
      now_ms >= txn.deadline_unix_ms())
    return false;
  return std::all_of(
      graph.dependencies[step].begin(), graph.dependencies[step].end(),
      [&](int dep) { return StepIs(txn, dep, v1::STEP_STATUS_SUCCEEDED); });
}

bool CanCompensate(const v1::Transaction& txn, const Graph& graph, int step,
                   int64_t now_ms) {
  const v1::StepProgress& p = txn.saga().steps(step);
  if (p.status() != v1::STEP_STATUS_COMPENSATION_PENDING ||
      p.next_attempt_unix_ms() > now_ms)
    return false;
  // Dependents of a skipped step were skipped too (they could not start),
  // so checking the direct dependents covers the transitive ones.
  return std::all_of(graph.dependents[step].begin(),
                     graph.dependents[step].end(), [&](int dependent) {
                       return StepIs(txn, dependent,
                                     v1::STEP_STATUS_COMPENSATED) ||
                              StepIs(txn, dependent, v1::STEP_STATUS_SKIPPED);
                     });
}

std::string Attempts(uint32_t n) {
  return fmt::format("{} attempt{}", n, n == 1 ? "" : "s");
}

// ---------------------------------------------------------------------------
// Moves of the whole saga.

// From BEGUN (callers check): every step whose action was dispatched owes
// its compensation, the others are skipped.
void TurnToCompensation(v1::Transaction* txn, std::string_view reason,
                        int64_t now_ms) {
  MoveGlobalStatus(txn, v1::GLOBAL_STATUS_ROLLING_BACK);
  txn->set_reason(limits::TruncatedReason(reason));
  txn->set_decided_unix_ms(now_ms);
  for (v1::StepProgress& p : *txn->mutable_saga()->mutable_steps()) {
    MoveStepStatus(txn->xid(), &p,
                   p.attempts() > 0 ? v1::STEP_STATUS_COMPENSATION_PENDING
                                    : v1::STEP_STATUS_SKIPPED);
    p.set_next_attempt_unix_ms(0);
    p.set_timeout_unix_ms(0);
    p.set_updated_unix_ms(now_ms);
  }
  Settle(txn, now_ms);
}

// Parks a step for an operator: a failed action of a forward-recovery saga
// (COMMITTING or COMMIT_STUCK) or a failed compensation (ROLLING_BACK or
// ROLLBACK_STUCK). The saga needs attention; its other steps go on.
void Park(v1::Transaction* txn, uint32_t step, v1::StepStatus parked,
          std::string_view reason) {
  // Legal from the statuses above, and a no-op when already stuck.
  MoveGlobalStatus(txn, parked == v1::STEP_STATUS_FAILED
                            ? v1::GLOBAL_STATUS_COMMIT_STUCK
                            : v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  txn->set_reason(limits::TruncatedReason(reason));
  MoveStepStatus(txn->xid(), ProgressOf(txn, step), parked);
}

// ---------------------------------------------------------------------------
// Answers.

void RecordAnswer(v1::StepProgress* p, v1::CommandOutcome outcome,
                  std::string_view message, int64_t now_ms) {
  p->set_timeout_unix_ms(0);
  p->set_next_attempt_unix_ms(0);
  p->set_updated_unix_ms(now_ms);
  if (outcome != v1::COMMAND_OUTCOME_DONE)
    p->set_last_error(limits::TruncatedReason(message));
}

void ActionRetryable(v1::Transaction* txn, uint32_t step,
                     std::string_view message, int64_t now_ms) {
  const v1::SagaStep& def = StepOf(*txn, step);
  v1::StepProgress* p = ProgressOf(txn, step);
  bool exhausted = p->attempts() >= def.retry().max_attempts();
  if (exhausted && !txn->saga().definition().forward_recovery()) {
    TurnToCompensation(txn,
                       fmt::format("step '{}' exhausted {}: {}", def.name(),
                                   Attempts(p->attempts()), message),
                       now_ms);
    return;
  }
  MoveStepStatus(txn->xid(), p, v1::STEP_STATUS_PENDING);
  p->set_next_attempt_unix_ms(now_ms + BackoffMs(def.retry(), p->attempts()));
}

void ActionOutcome(v1::Transaction* txn, uint32_t step,
                   v1::CommandOutcome outcome, std::string_view message,
                   int64_t now_ms) {
  const v1::SagaStep& def = StepOf(*txn, step);
  v1::StepProgress* p = ProgressOf(txn, step);
  switch (outcome) {
    case v1::COMMAND_OUTCOME_DONE:
      MoveStepStatus(txn->xid(), p, v1::STEP_STATUS_SUCCEEDED);
      p->set_action_succeeded(true);
      Settle(txn, now_ms);
      return;
    case v1::COMMAND_OUTCOME_RETRY:
      ActionRetryable(txn, step, message, now_ms);
      return;
    default: {
      std::string reason =
          fmt::format("step '{}' failed: {}", def.name(), message);
      if (txn->saga().definition().forward_recovery()) {
        Park(txn, step, v1::STEP_STATUS_FAILED, reason);
      } else {
        TurnToCompensation(txn, reason, now_ms);
      }
    }
  }
}

absl::Status ApplyActionResult(v1::Transaction* txn, uint32_t step,
                               v1::CommandOutcome outcome,
                               std::string_view message, int64_t now_ms) {
  const v1::SagaStep& def = StepOf(*txn, step);
  if (!RunsForward(txn->status())) {
    return absl::FailedPreconditionError(
        fmt::format("stale action result for step '{}': saga {} is {}",
                    def.name(), txn->xid(), GlobalStatusName(txn->status())));
  }
  const v1::StepProgress& p = txn->saga().steps(static_cast<int>(step));
  if (p.attempts() == 0) {
    return absl::FailedPreconditionError(
        fmt::format("action of step '{}' of saga {} was never dispatched",
                    def.name(), txn->xid()));
  }
  bool awaited = p.status() == v1::STEP_STATUS_RUNNING;
  bool late_done = p.status() == v1::STEP_STATUS_PENDING &&
                   outcome == v1::COMMAND_OUTCOME_DONE;
  if (!awaited && !late_done) return absl::OkStatus();
  RecordAnswer(ProgressOf(txn, step), outcome, message, now_ms);
  ActionOutcome(txn, step, outcome, message, now_ms);
  return absl::OkStatus();
}

void CompensationOutcome(v1::Transaction* txn, uint32_t step,
                         v1::CommandOutcome outcome, std::string_view message,
                         int64_t now_ms) {
  const v1::SagaStep& def = StepOf(*txn, step);
  v1::StepProgress* p = ProgressOf(txn, step);
  switch (outcome) {
    case v1::COMMAND_OUTCOME_DONE:
      MoveStepStatus(txn->xid(), p, v1::STEP_STATUS_COMPENSATED);
      Settle(txn, now_ms);
      return;
    case v1::COMMAND_OUTCOME_RETRY:
      MoveStepStatus(txn->xid(), p, v1::STEP_STATUS_COMPENSATION_PENDING);
      p->set_next_attempt_unix_ms(
          now_ms + BackoffMs(def.retry(), p->compensation_attempts()));
      return;
    default:
      Park(txn, step, v1::STEP_STATUS_COMPENSATION_FAILED,
           fmt::format("compensation of step '{}' failed: {}", def.name(),
                       message));
  }
}

absl::Status ApplyCompensationResult(v1::Transaction* txn, uint32_t step,
                                     v1::CommandOutcome outcome,
                                     std::string_view message, int64_t now_ms) {
  const v1::SagaStep& def = StepOf(*txn, step);
  const v1::StepProgress& p = txn->saga().steps(static_cast<int>(step));
  if (!IsRollbackSide(txn->status())) {
    return absl::FailedPreconditionError(
        fmt::format("compensation result for step '{}', but saga {} is {}",
                    def.name(), txn->xid(), GlobalStatusName(txn->status())));
  }
  if (p.compensation_attempts() == 0) {
    return absl::FailedPreconditionError(
        fmt::format("compensation of step '{}' of saga {} was never dispatched",
                    def.name(), txn->xid()));
  }
  bool awaited = p.status() == v1::STEP_STATUS_COMPENSATING;
  bool late_done = p.status() == v1::STEP_STATUS_COMPENSATION_PENDING &&
                   outcome == v1::COMMAND_OUTCOME_DONE;
  if (!awaited && !late_done) return absl::OkStatus();
  RecordAnswer(ProgressOf(txn, step), outcome, message, now_ms);
  CompensationOutcome(txn, step, outcome, message, now_ms);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Needing attention.

// The step to name when the saga runs too long: the first (in the order
// steps run) still unfinished, preferring one that was dispatched.
int StepToBlame(const v1::Transaction& txn) {
  int n = txn.saga().steps_size();
  bool compensating = Compensates(txn.status());
  int blamed = -1;
  for (int k = 0; k < n; ++k) {
    int i = compensating ? n - 1 - k : k;
    const v1::StepProgress& p = txn.saga().steps(i);
    bool unfinished = compensating
                          ? p.status() != v1::STEP_STATUS_COMPENSATED &&
                                p.status() != v1::STEP_STATUS_SKIPPED
                          : p.status() != v1::STEP_STATUS_SUCCEEDED;
    uint32_t attempts = compensating ? p.compensation_attempts() : p.attempts();
    if (unfinished && attempts > 0) return i;
    if (unfinished && blamed < 0) blamed = i;
  }
  return blamed;
}

std::string DescribeStep(const v1::Transaction& txn, int step) {
  const v1::StepProgress& p = txn.saga().steps(step);
  const std::string& name = txn.saga().definition().steps(step).name();
  uint32_t attempts =
      Compensates(txn.status()) ? p.compensation_attempts() : p.attempts();
  if (attempts == 0) return fmt::format("step '{}' never started", name);
  if (p.last_error().empty()) {
    return fmt::format("step '{}' awaits the answer to attempt {}", name,
                       attempts);
  }
  return fmt::format("step '{}' made {}, last error: {}", name,
                     Attempts(attempts), p.last_error());
}

int64_t RetryWindowStart(const v1::Transaction& txn) {
  return std::max(txn.decided_unix_ms(), txn.retry_window_start_unix_ms());
}

}  // namespace

absl::Status Start(v1::Transaction* txn, const v1::SagaDefinition& definition,
                   int64_t now_ms) {
  if (txn->protocol() != v1::PROTOCOL_SAGA ||
      txn->status() != v1::GLOBAL_STATUS_BEGUN || txn->has_saga() ||
      txn->branches_size() > 0) {
    return absl::FailedPreconditionError(fmt::format(
        "cannot start a saga in transaction {}: it must be an open saga "
        "transaction not started yet",
        txn->xid()));
  }
  if (absl::Status s = ValidateDefinition(definition); !s.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("saga {}: {}", txn->xid(), std::string(s.message())));
  }
  v1::SagaProgress* saga = txn->mutable_saga();
  *saga->mutable_definition() = definition;
  for (v1::SagaStep& step : *saga->mutable_definition()->mutable_steps()) {
    FillDefaults(&step);
    v1::StepProgress* p = saga->add_steps();
    MoveStepStatus(txn->xid(), p, v1::STEP_STATUS_PENDING);
    p->set_updated_unix_ms(now_ms);
  }
  // Forward recovery decides at once to reach the end, whatever it takes.
  if (definition.forward_recovery()) {
    MoveGlobalStatus(txn, v1::GLOBAL_STATUS_COMMITTING);
    txn->set_decided_unix_ms(now_ms);
  }
  return absl::OkStatus();
}

std::vector<StepCommand> NextCommands(const v1::Transaction& txn,
                                      int64_t now_ms) {
  std::vector<StepCommand> commands;
  if (!HasSaga(txn) || txn.paused() || IsTerminal(txn.status()))
    return commands;
  Graph graph = BuildGraph(txn.saga().definition());
  int budget = DispatchBudget(txn);
  int n = txn.saga().steps_size();
  bool compensating = Compensates(txn.status());
  for (int k = 0; k < n && static_cast<int>(commands.size()) < budget; ++k) {
    int i = compensating ? n - 1 - k : k;
    if (compensating ? CanCompensate(txn, graph, i, now_ms)
                     : CanRunAction(txn, graph, i, now_ms)) {
      commands.push_back(
          {static_cast<uint32_t>(i),
           compensating ? StepKind::kCompensation : StepKind::kAction});
    }
  }
  return commands;
}

absl::Status MarkDispatched(v1::Transaction* txn, const StepCommand& command,
                            int64_t now_ms) {
  if (!HasStep(*txn, command.step)) return NoSuchStep(*txn, command.step);
  std::vector<StepCommand> allowed = NextCommands(*txn, now_ms);
  const v1::SagaStep& def = StepOf(*txn, command.step);
  bool action = command.kind == StepKind::kAction;
  if (std::find(allowed.begin(), allowed.end(), command) == allowed.end()) {
    return absl::FailedPreconditionError(fmt::format(
        "{} of step '{}' of saga {} may not be dispatched now",
        action ? "action" : "compensation", def.name(), txn->xid()));
  }
  v1::StepProgress* p = ProgressOf(txn, command.step);
  if (action) {
    MoveStepStatus(txn->xid(), p, v1::STEP_STATUS_RUNNING);
    p->set_attempts(p->attempts() + 1);
  } else {
    MoveStepStatus(txn->xid(), p, v1::STEP_STATUS_COMPENSATING);
    p->set_compensation_attempts(p->compensation_attempts() + 1);
  }
  p->set_next_attempt_unix_ms(0);
  p->set_dispatched_unix_ms(now_ms);
  p->set_timeout_unix_ms(now_ms + def.timeout_ms());
  p->set_updated_unix_ms(now_ms);
  return absl::OkStatus();
}

absl::Status ApplyResult(v1::Transaction* txn, const StepCommand& command,
                         v1::CommandOutcome outcome, std::string_view message,
                         int64_t now_ms) {
  if (!HasStep(*txn, command.step)) return NoSuchStep(*txn, command.step);
  if (outcome != v1::COMMAND_OUTCOME_DONE &&
      outcome != v1::COMMAND_OUTCOME_RETRY &&
      outcome != v1::COMMAND_OUTCOME_FAILED) {
    return absl::InvalidArgumentError(
        fmt::format("result for step '{}' of saga {} has no outcome",
                    StepOf(*txn, command.step).name(), txn->xid()));
  }
  if (command.kind == StepKind::kAction)
    return ApplyActionResult(txn, command.step, outcome, message, now_ms);
  return ApplyCompensationResult(txn, command.step, outcome, message, now_ms);
}

bool ExpireTimedOutSteps(v1::Transaction* txn, int64_t now_ms) {
  if (!HasSaga(*txn)) return false;
  bool expired = false;
  for (int i = 0; i < txn->saga().steps_size(); ++i) {
    const v1::StepProgress& p = txn->saga().steps(i);
    if (!InFlight(p) || now_ms < p.timeout_unix_ms()) continue;
    StepKind kind = p.status() == v1::STEP_STATUS_RUNNING
                        ? StepKind::kAction
                        : StepKind::kCompensation;
    std::string message =
        fmt::format("no answer within {} ms, outcome unknown",
                    txn->saga().definition().steps(i).timeout_ms());
    expired |= ApplyResult(txn, {static_cast<uint32_t>(i), kind},
                           v1::COMMAND_OUTCOME_RETRY, message, now_ms)
                   .ok();
  }
  return expired;
}

bool ExpireIfPastDeadline(v1::Transaction* txn, int64_t now_ms) {
  if (!HasSaga(*txn) || txn->status() != v1::GLOBAL_STATUS_BEGUN ||
      now_ms < txn->deadline_unix_ms())
    return false;
  TurnToCompensation(txn, "timeout", now_ms);
  return true;
}

absl::Status RequestCompensation(v1::Transaction* txn, std::string_view reason,
                                 int64_t now_ms) {
  if (IsRollbackSide(txn->status())) return absl::OkStatus();
  if (!HasSaga(*txn) || txn->status() != v1::GLOBAL_STATUS_BEGUN) {
    return absl::FailedPreconditionError(fmt::format(
        "cannot compensate saga {}: it is {}{}", txn->xid(),
        GlobalStatusName(txn->status()),
        txn->saga().definition().forward_recovery() ? " and recovers forward"
                                                    : ""));
  }
  TurnToCompensation(txn, reason, now_ms);
  return absl::OkStatus();
}

bool MarkStuckIfRetryWindowPassed(v1::Transaction* txn, int64_t now_ms,
                                  int64_t retry_window_ms) {
  bool running = txn->status() == v1::GLOBAL_STATUS_COMMITTING ||
                 txn->status() == v1::GLOBAL_STATUS_ROLLING_BACK;
  if (!HasSaga(*txn) || !running || txn->paused() ||
      now_ms < RetryWindowStart(*txn) + retry_window_ms)
    return false;
  int step = StepToBlame(*txn);
  if (step < 0) return false;
  bool compensating = Compensates(txn->status());
  txn->set_reason(fmt::format(
      "{} unfinished after {} s: {}", compensating ? "compensation" : "saga",
      retry_window_ms / 1000, DescribeStep(*txn, step)));
  MoveGlobalStatus(
      txn, compensating
               ? v1::GLOBAL_STATUS_ROLLBACK_STUCK
               : v1::GLOBAL_STATUS_COMMIT_STUCK);  // Both moves are legal from
                                                   // the running statuses.
  return true;
}

int64_t NextActionTime(const v1::Transaction& txn, int64_t retry_window_ms) {
  if (!HasSaga(txn) || IsTerminal(txn.status())) return 0;
  int64_t next = 0;
  auto consider = [&next](int64_t t) {
    if (t > 0 && (next == 0 || t < next)) next = t;
  };
  if (txn.status() == v1::GLOBAL_STATUS_BEGUN) consider(txn.deadline_unix_ms());
  // A paused saga's window restarts at resume.
  if (!txn.paused() && (txn.status() == v1::GLOBAL_STATUS_COMMITTING ||
                        txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK))
    consider(RetryWindowStart(txn) + retry_window_ms);
  // A backoff at the parallel limit ends with an answer, not with time.
  bool backoffs_count = !txn.paused() && DispatchBudget(txn) > 0;
  for (const v1::StepProgress& p : txn.saga().steps()) {
    if (InFlight(p)) {
      consider(p.timeout_unix_ms());
    } else if (backoffs_count) {
      consider(p.next_attempt_unix_ms());
    }
  }
  return next;
}

std::vector<StepCommand> OwedCommands(const v1::Transaction& txn,
                                      int64_t now_ms) {
  if (!HasSaga(txn) || IsTerminal(txn.status())) return {};
  std::map<uint32_t, StepKind> owed;
  for (const StepCommand& c : NextCommands(txn, now_ms)) {
    owed.emplace(c.step, c.kind);
  }
  for (int i = 0; i < txn.saga().steps_size(); ++i) {
    const v1::StepProgress& p = txn.saga().steps(i);
    bool waits = p.status() == v1::STEP_STATUS_PENDING ||
                 p.status() == v1::STEP_STATUS_COMPENSATION_PENDING;
    if (waits && p.next_attempt_unix_ms() > now_ms) {
      owed.emplace(static_cast<uint32_t>(i),
                   p.status() == v1::STEP_STATUS_PENDING
                       ? StepKind::kAction
                       : StepKind::kCompensation);
    }
  }
  std::vector<StepCommand> commands;
  for (const auto& [step, kind] : owed) commands.push_back({step, kind});
  return commands;
}

size_t Backlog(const v1::Transaction& txn, int64_t now_ms) {
  return OwedCommands(txn, now_ms).size();
}

int64_t BackoffMs(const v1::RetryPolicy& policy, uint32_t failures) {
  double exponent = failures > 1 ? failures - 1 : 0;
  double delay = static_cast<double>(policy.initial_backoff_ms()) *
                 std::pow(policy.multiplier(), exponent);
  // Written so that an overflow to infinity takes the cap.
  if (!(delay < static_cast<double>(policy.max_backoff_ms())))
    return policy.max_backoff_ms();
  return static_cast<int64_t>(delay);
}

const v1::SagaCall& CallFor(const v1::Transaction& txn,
                            const StepCommand& command) {
  const v1::SagaStep& step = StepOf(txn, command.step);
  return command.kind == StepKind::kAction ? step.action()
                                           : step.compensation();
}

bool UsesResource(const v1::Transaction& txn, std::string_view resource) {
  const auto& steps = txn.saga().definition().steps();
  return std::any_of(steps.begin(), steps.end(), [&](const v1::SagaStep& s) {
    return s.action().resource() == resource ||
           s.compensation().resource() == resource;
  });
}

}  // namespace baton::saga
