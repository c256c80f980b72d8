#ifndef BATON_PROTOCOLS_SAGA_H_
#define BATON_PROTOCOLS_SAGA_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/v1/participant_service.pb.h"
#include "baton/v1/saga.pb.h"
#include "baton/v1/types.pb.h"

// The saga state machine, as pure functions over a transaction record whose
// `saga` field holds the definition and each step's progress. Callers pass
// the time in; nothing here blocks, logs or persists. Every function either
// applies its whole change to *txn, or leaves *txn untouched and returns an
// error whose message names the xid (and the step, where one is involved).
//
// Forward, the saga is BEGUN and runs each step's action once its
// dependencies succeeded; when all have, it is COMMITTED. A final failure, a
// retry budget spent, the deadline or the caller turns it to compensation
// (ROLLING_BACK): every step whose action was dispatched at least once is
// compensated (it may have run; the participant's barrier makes undoing a
// step that never ran harmless), in reverse dependency order, until all are
// and it is ROLLED_BACK. Compensations retry without limit; one answered
// "failed, do not retry", or a compensation past the retry window, makes it
// ROLLBACK_STUCK. A forward-recovery saga is decided at Start (COMMITTING:
// it has no deadline and the caller cannot roll it back) and never
// compensates: it retries forward without limit and becomes COMMIT_STUCK
// when a step is answered "failed, do not retry" or it runs past the retry
// window. Retries go on while stuck, except for parked steps, so a late
// success still finishes. The transaction's `reason` says why it rolled
// back or needs attention, naming the step.
//
// The coordinator's loop: Start; dispatch NextCommands, calling
// MarkDispatched for each; feed answers to ApplyResult; at NextActionTime
// call ExpireIfPastDeadline, ExpireTimedOutSteps and
// MarkStuckIfRetryWindowPassed; after any change, dispatch NextCommands
// again.
namespace baton::saga {

// Limits of a definition, beyond the wire's (common/limits.h).
inline constexpr int kMaxSteps = 256;
inline constexpr size_t kMaxStepNameBytes = 128;
inline constexpr uint32_t kMaxAttemptsLimit = 1000;
inline constexpr double kMaxMultiplier = 10;

enum class StepKind { kAction, kCompensation };

struct StepCommand {
  // Index into the definition's steps.
  uint32_t step = 0;
  StepKind kind = StepKind::kAction;

  friend bool operator==(const StepCommand&, const StepCommand&) = default;
};

// OK, or INVALID_ARGUMENT naming the offending step: no steps, too many;
// an empty, duplicate or too long name; no action resource, a too long
// resource; a payload over limits::kMaxApplicationDataBytes, or all of them
// over limits::kMaxTransactionDataBytes; a dependency on an unknown step, on
// itself, listed twice, or a cycle (naming its steps); a retry policy with
// max_attempts over kMaxAttemptsLimit, a negative backoff, a multiplier
// outside [1, kMaxMultiplier] (0 is the default), max_backoff_ms below
// initial_backoff_ms; a negative timeout; a backoff or timeout over
// limits::kMaxTimeoutMs.
absl::Status ValidateDefinition(const v1::SagaDefinition& definition);

// Stores `definition`, with its defaults filled in, and every step PENDING in
// txn->saga; a forward-recovery saga becomes COMMITTING (decided now). The
// transaction's name and deadline are set by the caller as for any
// transaction. INVALID_ARGUMENT as ValidateDefinition;
// FAILED_PRECONDITION unless txn is an open PROTOCOL_SAGA transaction with
// no saga and no branches yet.
absl::Status Start(v1::Transaction* txn, const v1::SagaDefinition& definition,
                   int64_t now_ms);

// What may be dispatched now, each at most once: forward, the owed actions
// whose dependencies all succeeded and whose backoff is over (none at or
// past the deadline, unless the saga recovers forward); compensating, the
// owed compensations whose dependents are all compensated or skipped and
// whose backoff is over. At most max_parallel minus the ones in flight (an
// action whose answer turned stale when the saga began compensating no
// longer counts). Forward in step order, compensations in reverse step
// order. Nothing while the transaction is paused or terminal.
std::vector<StepCommand> NextCommands(const v1::Transaction& txn,
                                      int64_t now_ms);

// Records that `command` was sent: the step is RUNNING (or COMPENSATING),
// its attempt count grows by one (the attempt number to send), and its
// answer is due by now_ms + the step's timeout. FAILED_PRECONDITION unless
// NextCommands(txn, now_ms) lists `command`; NOT_FOUND for no such step.
absl::Status MarkDispatched(v1::Transaction* txn, const StepCommand& command,
                            int64_t now_ms);

// Applies a participant's answer. For an action: DONE succeeds the step (and
// commits the saga when it was the last); RETRY schedules the next attempt
// after the backoff, or, with the attempts spent, turns the saga to
// compensation ("step 'pay' exhausted 3 attempts: card declined"); FAILED
// turns it to compensation ("step 'pay' failed: card declined"). Forward
// recovery retries past the budget, and FAILED parks the step and makes the
// saga COMMIT_STUCK. For a compensation: DONE compensates the step (and
// rolls the saga back when it was the last); RETRY schedules another attempt
// after the backoff; FAILED parks it and makes the saga ROLLBACK_STUCK.
//
// Answers that no longer matter are ignored, returning OK: repeats, and
// RETRY or FAILED for an attempt that already counted as failed (timed out).
// A DONE for such an attempt is taken: the work was done. An action's
// answer once the saga compensates is stale: FAILED_PRECONDITION, *txn
// unchanged, and the coordinator should drop it. FAILED_PRECONDITION also
// for an answer to a command never dispatched; INVALID_ARGUMENT for an
// unspecified outcome; NOT_FOUND for no such step.
absl::Status ApplyResult(v1::Transaction* txn, const StepCommand& command,
                         v1::CommandOutcome outcome, std::string_view message,
                         int64_t now_ms);

// Counts every dispatch whose answer is overdue as a RETRY with an unknown
// outcome (the step may have run). Returns true if any was.
bool ExpireTimedOutSteps(v1::Transaction* txn, int64_t now_ms);

// Turns a forward-running saga past its deadline to compensation, with
// reason "timeout". Forward-recovery sagas have no deadline (the retry
// window bounds them instead). Returns true if it turned.
bool ExpireIfPastDeadline(v1::Transaction* txn, int64_t now_ms);

// The caller's rollback: turns a forward-running saga to compensation with
// `reason`. Already compensating or rolled back: OK, no change.
// FAILED_PRECONDITION once committed or COMMIT_STUCK (a forward-recovery
// saga decided to finish).
absl::Status RequestCompensation(v1::Transaction* txn, std::string_view reason,
                                 int64_t now_ms);

// Asks for an operator when the saga has run too long: ROLLING_BACK more than
// retry_window_ms after it turned (or after an operator's retry) becomes
// ROLLBACK_STUCK; a forward-recovery saga COMMITTING more than
// retry_window_ms after Start (or after an operator's retry) becomes
// COMMIT_STUCK. A paused saga is left alone (resume restarts the window).
// The reason names the first unfinished step. Retries go on. Returns true
// if it moved.
bool MarkStuckIfRetryWindowPassed(v1::Transaction* txn, int64_t now_ms,
                                  int64_t retry_window_ms);

// The earliest instant the coordinator must act on its own: the deadline
// (while BEGUN) or the end of the retry window (compensating, or recovering
// forward), the end of a backoff (unless max_parallel is reached or the
// transaction is paused: a result will come first), an answer's timeout. 0
// for none.
int64_t NextActionTime(const v1::Transaction& txn, int64_t retry_window_ms);

// The commands steps owe that are not in flight at now_ms, one per step in
// step order: listed by NextCommands (a participant may be missing to send
// it to) or waiting out a backoff. What baton_retry_backlog counts for a
// saga, and Backlog how many.
std::vector<StepCommand> OwedCommands(const v1::Transaction& txn,
                                      int64_t now_ms);
size_t Backlog(const v1::Transaction& txn, int64_t now_ms);

// Operators (see operator_actions.h, which routes sagas here).

// Ends every backoff: steps not in flight are due now.
void MakeBackoffsDue(v1::Transaction* txn);

// Makes parked steps owed again, due now: a FAILED action (forward
// recovery) and a COMPENSATION_FAILED compensation; a stuck saga returns to
// COMMITTING or ROLLING_BACK, and the retry window restarts now. Returns
// the names of the steps it reopened (maybe none: the retry then only
// restarts the window and makes backoffs due). FAILED_PRECONDITION unless
// the saga is decided and unfinished.
absl::StatusOr<std::string> RetryParked(v1::Transaction* txn, int64_t now_ms);

// Finishes a decided saga by hand: on the commit side every step not
// succeeded is marked SUCCEEDED and the saga COMMITTED; on the rollback side
// every step not compensated or skipped is marked COMPENSATED and the saga
// ROLLED_BACK. Nobody is called. Returns the names of the steps it marked.
// FAILED_PRECONDITION if the saga is still running forward undecided
// (BEGUN) or terminal.
absl::StatusOr<std::string> FinishByHand(v1::Transaction* txn, int64_t now_ms);

// The delay before the attempt after the `failures`-th failure (>= 1) under
// `policy` (with defaults filled in): min(initial * multiplier^(failures-1),
// max_backoff_ms).
int64_t BackoffMs(const v1::RetryPolicy& policy, uint32_t failures);

// The call `command` sends: the step's action or compensation. `command`
// must name a step of txn's saga.
const v1::SagaCall& CallFor(const v1::Transaction& txn,
                            const StepCommand& command);

// True if some step's action or compensation is served by `resource`.
bool UsesResource(const v1::Transaction& txn, std::string_view resource);

}  // namespace baton::saga

#endif  // BATON_PROTOCOLS_SAGA_H_
