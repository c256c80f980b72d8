#ifndef BATON_PROTOCOLS_TWO_PHASE_H_
#define BATON_PROTOCOLS_TWO_PHASE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/v1/participant_service.pb.h"
#include "baton/v1/types.pb.h"

// The two-phase commit state machine, as pure functions over a transaction
// record. Callers pass the time in; nothing here blocks, logs or persists.
// Every function either applies its whole change to *txn and returns OK, or
// leaves *txn untouched and returns an error whose message names the xid.
//
// Presumed abort: commit is decided only when every branch reported
// PREPARED; any other state forces rollback.
namespace baton::two_phase {

struct NewBranch {
  std::string resource;
  v1::BranchType type = v1::BRANCH_TYPE_XA;
  std::string application_data;
  std::string request_id;
  std::string instance_id;
};

// Adds a branch to an open transaction and returns its id (1, 2, ...). A
// repeated request_id returns the id of the branch it registered before.
// FAILED_PRECONDITION if the transaction is not open, is past its deadline,
// or is of a protocol that takes another branch type (BranchTypeFor);
// RESOURCE_EXHAUSTED past the branch or data limits.
absl::StatusOr<uint64_t> RegisterBranch(v1::Transaction* txn,
                                        const NewBranch& branch,
                                        int64_t now_ms);

// Records phase one's outcome in an open transaction. Repeating the outcome
// recorded is OK at any time, even after phase two finished (a client
// retrying a report whose answer it lost must not read it as a refusal); a
// different outcome is FAILED_PRECONDITION, as is a first report once the
// transaction is decided. NOT_FOUND for an unknown branch.
absl::Status ReportPhaseOne(v1::Transaction* txn, uint64_t branch_id,
                            v1::PhaseOneOutcome outcome, std::string_view error,
                            int64_t now_ms);

// What phase one reported for the branch; UNSPECIFIED if it never did (or,
// for records older than Branch.phase_one, if a rollback hid it).
v1::PhaseOneOutcome RecordedPhaseOne(const v1::Branch& b);

// Commit request. From BEGUN: COMMITTING (COMMITTED with no branches) if
// every branch is prepared, otherwise ROLLING_BACK with a reason naming the
// first branch that was not. On the commit side already: no change. On the
// rollback side: FAILED_PRECONDITION.
absl::Status DecideCommit(v1::Transaction* txn, int64_t now_ms);

// Rollback request. From BEGUN: ROLLING_BACK (ROLLED_BACK with no branches).
// On the rollback side already: no change. On the commit side:
// FAILED_PRECONDITION.
absl::Status DecideRollback(v1::Transaction* txn, std::string_view reason,
                            int64_t now_ms);

// Rolls back an open transaction whose deadline has passed, with reason
// "timeout". Returns true if it did.
bool ExpireIfPastDeadline(v1::Transaction* txn, int64_t now_ms);

struct Command {
  uint64_t branch_id;
  v1::BranchAction action;
};

// The action phase two owes branch `b` of `txn`, if any.
bool OwedAction(const v1::Transaction& txn, const v1::Branch& b,
                v1::BranchAction* action);

// The phase-two commands still owed to branches, in branch order. Branches
// that answered "failed, do not retry" are not included.
std::vector<Command> PendingCommands(const v1::Transaction& txn);

// Ends the backoff of every pending command: each is due now.
void MakeRetriesDue(v1::Transaction* txn);

// Applies a participant's answer to a phase-two command. DONE finishes the
// branch; RETRY schedules the next attempt at now_ms + retry_delay_ms; FAILED
// parks the branch for an operator. When nothing is pending any more the
// transaction becomes terminal, or needs attention if a branch failed.
// An answer for the opposite action (a stale command) is FAILED_PRECONDITION.
absl::Status ApplyCommandResult(v1::Transaction* txn, uint64_t branch_id,
                                v1::BranchAction action,
                                v1::CommandOutcome outcome,
                                std::string_view message, int64_t now_ms,
                                int64_t retry_delay_ms);

// Moves a transaction whose phase two began more than retry_window_ms ago and
// still owes commands to COMMIT_STUCK or ROLLBACK_STUCK, with a reason naming
// the first unfinished branch. Retries go on; the status only asks for an
// operator. The window counts from the later of the decision and an
// operator's retry; a paused transaction never moves. Returns true if it
// moved.
bool MarkStuckIfRetryWindowPassed(v1::Transaction* txn, int64_t now_ms,
                                  int64_t retry_window_ms);

// When the coordinator must next act on its own: the deadline while open;
// in phase two the earliest scheduled retry or the end of the retry window;
// 0 for nothing (terminal, or paused by an operator).
int64_t NextActionTime(const v1::Transaction& txn, int64_t retry_window_ms);

// The only branch type a transaction of `protocol` accepts.
v1::BranchType BranchTypeFor(v1::Protocol protocol);

// The branch with that id, or nullptr.
v1::Branch* FindBranch(v1::Transaction* txn, uint64_t branch_id);

}  // namespace baton::two_phase

#endif  // BATON_PROTOCOLS_TWO_PHASE_H_
