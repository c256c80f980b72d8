#ifndef BATON_PROTOCOLS_TRANSITIONS_H_
#define BATON_PROTOCOLS_TRANSITIONS_H_

#include <string_view>

#include "absl/status/status.h"
#include "baton/v1/saga.pb.h"
#include "baton/v1/types.pb.h"

// The status graphs every protocol shares: of transactions, branches and
// saga steps. A status changes only through the functions here, which
// refuse moves not listed in transitions.cc.
//
// Set*Status is for a move that input may make illegal (a caller's commit,
// a participant's report): the refusal is an answer. Move*Status is for a
// move the caller's own checks make legal: a refusal there is a bug in
// Baton. It aborts a debug build; a release build leaves the status as it
// was and tells the process's IllegalMoveObserver (batond counts and logs
// it), so a record never takes a status the graph forbids.
namespace baton {

bool IsLegalGlobalTransition(v1::GlobalStatus from, v1::GlobalStatus to);
bool IsLegalBranchTransition(v1::BranchStatus from, v1::BranchStatus to);
bool IsLegalStepTransition(v1::StepStatus from, v1::StepStatus to);

// COMMITTED or ROLLED_BACK: nothing more will happen without an operator.
bool IsTerminal(v1::GlobalStatus status);
// COMMIT_STUCK or ROLLBACK_STUCK.
bool NeedsAttention(v1::GlobalStatus status);
// The decision is commit (COMMITTING, COMMITTED, COMMIT_STUCK).
bool IsCommitSide(v1::GlobalStatus status);
// The decision is rollback (ROLLING_BACK, ROLLED_BACK, ROLLBACK_STUCK).
bool IsRollbackSide(v1::GlobalStatus status);

// Returns FAILED_PRECONDITION naming both statuses if the move is illegal.
// Setting the current status again is a no-op.
absl::Status SetGlobalStatus(v1::Transaction* txn, v1::GlobalStatus to);
absl::Status SetBranchStatus(v1::Branch* branch, v1::BranchStatus to);
absl::Status SetStepStatus(v1::StepProgress* step, v1::StepStatus to);

// `xid` names the transaction in the report of an illegal move.
void MoveGlobalStatus(v1::Transaction* txn, v1::GlobalStatus to);
void MoveBranchStatus(std::string_view xid, v1::Branch* branch,
                      v1::BranchStatus to);
void MoveStepStatus(std::string_view xid, v1::StepProgress* step,
                    v1::StepStatus to);

// Told of each illegal Move*Status in a release build: the xid and what
// was refused. Set once, before any move; it must be thread-safe. Null (the
// default) tells no one.
using IllegalMoveObserver = void (*)(std::string_view xid,
                                     std::string_view refused);
void SetIllegalMoveObserver(IllegalMoveObserver observer);

// Short lower-case names for messages and logs, e.g. "rolling back".
std::string_view GlobalStatusName(v1::GlobalStatus status);
// "2pc", "tcc" or "saga"; "" for PROTOCOL_UNSPECIFIED.
std::string_view ProtocolShortName(v1::Protocol protocol);
std::string_view BranchStatusName(v1::BranchStatus status);
// "compensation pending".
std::string_view StepStatusName(v1::StepStatus status);

}  // namespace baton

#endif  // BATON_PROTOCOLS_TRANSITIONS_H_
