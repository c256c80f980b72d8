#ifndef BATON_PROTOCOLS_TRANSITIONS_H_
#define BATON_PROTOCOLS_TRANSITIONS_H_

#include <string_view>

#include "absl/status/status.h"
#include "baton/v1/types.pb.h"

// The status graph every protocol shares. A status changes only through
// SetGlobalStatus / SetBranchStatus, which refuse transitions not listed in
// transitions.cc, so an illegal move is a returned error, never a silent
// corruption of the record.
namespace baton {

bool IsLegalGlobalTransition(v1::GlobalStatus from, v1::GlobalStatus to);
bool IsLegalBranchTransition(v1::BranchStatus from, v1::BranchStatus to);

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

// Short lower-case names for messages and logs, e.g. "rolling back".
std::string_view GlobalStatusName(v1::GlobalStatus status);
std::string_view BranchStatusName(v1::BranchStatus status);

}  // namespace baton

#endif  // BATON_PROTOCOLS_TRANSITIONS_H_
