#include "protocols/transitions.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "fmt/format.h"

namespace baton {
namespace {

using v1::BranchStatus;
using v1::GlobalStatus;
using v1::StepStatus;

template <typename S>
struct Edge {
  S from;
  std::initializer_list<S> to;
};

template <typename S, size_t N>
bool InTable(const Edge<S> (&table)[N], S from, S to) {
  for (const Edge<S>& edge : table) {
    if (edge.from == from) {
      return std::find(edge.to.begin(), edge.to.end(), to) != edge.to.end();
    }
  }
  return false;
}

// A needs-attention transaction keeps being retried, so a late
// acknowledgement can still finish it.
constexpr Edge<GlobalStatus> kGlobalEdges[] = {
    {v1::GLOBAL_STATUS_BEGUN,
     {v1::GLOBAL_STATUS_COMMITTING, v1::GLOBAL_STATUS_COMMITTED,
      v1::GLOBAL_STATUS_ROLLING_BACK, v1::GLOBAL_STATUS_ROLLED_BACK}},
    {v1::GLOBAL_STATUS_COMMITTING,
     {v1::GLOBAL_STATUS_COMMITTED, v1::GLOBAL_STATUS_COMMIT_STUCK}},
    {v1::GLOBAL_STATUS_COMMIT_STUCK,
     {v1::GLOBAL_STATUS_COMMITTING, v1::GLOBAL_STATUS_COMMITTED}},
    {v1::GLOBAL_STATUS_ROLLING_BACK,
     {v1::GLOBAL_STATUS_ROLLED_BACK, v1::GLOBAL_STATUS_ROLLBACK_STUCK}},
    {v1::GLOBAL_STATUS_ROLLBACK_STUCK,
     {v1::GLOBAL_STATUS_ROLLING_BACK, v1::GLOBAL_STATUS_ROLLED_BACK}},
};

constexpr Edge<BranchStatus> kBranchEdges[] = {
    {v1::BRANCH_STATUS_REGISTERED,
     {v1::BRANCH_STATUS_PREPARED, v1::BRANCH_STATUS_PREPARE_FAILED,
      v1::BRANCH_STATUS_ROLLED_BACK, v1::BRANCH_STATUS_ROLLBACK_FAILED}},
    {v1::BRANCH_STATUS_PREPARED,
     {v1::BRANCH_STATUS_COMMITTED, v1::BRANCH_STATUS_COMMIT_FAILED,
      v1::BRANCH_STATUS_ROLLED_BACK, v1::BRANCH_STATUS_ROLLBACK_FAILED}},
    {v1::BRANCH_STATUS_PREPARE_FAILED,
     {v1::BRANCH_STATUS_ROLLED_BACK, v1::BRANCH_STATUS_ROLLBACK_FAILED}},
    // An operator's retry makes a failed branch owed again.
    {v1::BRANCH_STATUS_COMMIT_FAILED,
     {v1::BRANCH_STATUS_COMMITTED, v1::BRANCH_STATUS_PREPARED}},
    {v1::BRANCH_STATUS_ROLLBACK_FAILED,
     {v1::BRANCH_STATUS_ROLLED_BACK, v1::BRANCH_STATUS_PREPARED}},
};

// Forward: a step waits (PENDING), runs, and succeeds, or waits again after
// a retryable failure, or parks (FAILED, forward recovery only). Turning to
// compensation makes every step that was ever dispatched owe its
// compensation and skips the rest. An operator's retry reopens a parked
// step; finishing by hand marks a step done from wherever it stands on the
// saga's side.
constexpr Edge<StepStatus> kStepEdges[] = {
    {v1::STEP_STATUS_UNSPECIFIED, {v1::STEP_STATUS_PENDING}},
    {v1::STEP_STATUS_PENDING,
     {v1::STEP_STATUS_RUNNING, v1::STEP_STATUS_COMPENSATION_PENDING,
      v1::STEP_STATUS_SKIPPED, v1::STEP_STATUS_SUCCEEDED}},
    {v1::STEP_STATUS_RUNNING,
     {v1::STEP_STATUS_SUCCEEDED, v1::STEP_STATUS_PENDING,
      v1::STEP_STATUS_FAILED, v1::STEP_STATUS_COMPENSATION_PENDING}},
    {v1::STEP_STATUS_SUCCEEDED, {v1::STEP_STATUS_COMPENSATION_PENDING}},
    {v1::STEP_STATUS_FAILED,
     {v1::STEP_STATUS_PENDING, v1::STEP_STATUS_SUCCEEDED}},
    {v1::STEP_STATUS_COMPENSATION_PENDING,
     {v1::STEP_STATUS_COMPENSATING, v1::STEP_STATUS_COMPENSATED}},
    {v1::STEP_STATUS_COMPENSATING,
     {v1::STEP_STATUS_COMPENSATED, v1::STEP_STATUS_COMPENSATION_PENDING,
      v1::STEP_STATUS_COMPENSATION_FAILED}},
    {v1::STEP_STATUS_COMPENSATION_FAILED,
     {v1::STEP_STATUS_COMPENSATION_PENDING, v1::STEP_STATUS_COMPENSATED}},
};

std::atomic<IllegalMoveObserver> illegal_move_observer{nullptr};

// A move the caller's checks should have made legal was refused.
void ReportIllegalMove(std::string_view xid, const std::string& refused) {
#ifndef NDEBUG
  std::fprintf(stderr, "illegal status move in %.*s: %s\n",
               static_cast<int>(xid.size()), xid.data(), refused.c_str());
  std::abort();
#else
  if (IllegalMoveObserver observer = illegal_move_observer.load()) {
    observer(xid, refused);
  }
#endif
}

}  // namespace

void SetIllegalMoveObserver(IllegalMoveObserver observer) {
  illegal_move_observer.store(observer);
}

bool IsLegalStepTransition(StepStatus from, StepStatus to) {
  return InTable(kStepEdges, from, to);
}

bool IsLegalGlobalTransition(GlobalStatus from, GlobalStatus to) {
  return InTable(kGlobalEdges, from, to);
}

bool IsLegalBranchTransition(BranchStatus from, BranchStatus to) {
  return InTable(kBranchEdges, from, to);
}

bool IsTerminal(GlobalStatus status) {
  return status == v1::GLOBAL_STATUS_COMMITTED ||
         status == v1::GLOBAL_STATUS_ROLLED_BACK;
}

bool NeedsAttention(GlobalStatus status) {
  return status == v1::GLOBAL_STATUS_COMMIT_STUCK ||
         status == v1::GLOBAL_STATUS_ROLLBACK_STUCK;
}

bool IsCommitSide(GlobalStatus status) {
  return status == v1::GLOBAL_STATUS_COMMITTING ||
         status == v1::GLOBAL_STATUS_COMMITTED ||
         status == v1::GLOBAL_STATUS_COMMIT_STUCK;
}

bool IsRollbackSide(GlobalStatus status) {
  return status == v1::GLOBAL_STATUS_ROLLING_BACK ||
         status == v1::GLOBAL_STATUS_ROLLED_BACK ||
         status == v1::GLOBAL_STATUS_ROLLBACK_STUCK;
}

absl::Status SetGlobalStatus(v1::Transaction* txn, GlobalStatus to) {
  if (txn->status() == to) return absl::OkStatus();
  if (!IsLegalGlobalTransition(txn->status(), to)) {
    return absl::FailedPreconditionError(
        fmt::format("transaction {} is {} and cannot become {}", txn->xid(),
                    GlobalStatusName(txn->status()), GlobalStatusName(to)));
  }
  txn->set_status(to);
  return absl::OkStatus();
}

absl::Status SetBranchStatus(v1::Branch* branch, BranchStatus to) {
  if (branch->status() == to) return absl::OkStatus();
  if (!IsLegalBranchTransition(branch->status(), to)) {
    return absl::FailedPreconditionError(
        fmt::format("branch {} is {} and cannot become {}", branch->branch_id(),
                    BranchStatusName(branch->status()), BranchStatusName(to)));
  }
  branch->set_status(to);
  return absl::OkStatus();
}

absl::Status SetStepStatus(v1::StepProgress* step, StepStatus to) {
  if (step->status() == to) return absl::OkStatus();
  if (!IsLegalStepTransition(step->status(), to)) {
    return absl::FailedPreconditionError(
        fmt::format("a step is {} and cannot become {}",
                    StepStatusName(step->status()), StepStatusName(to)));
  }
  step->set_status(to);
  return absl::OkStatus();
}

void MoveGlobalStatus(v1::Transaction* txn, GlobalStatus to) {
  absl::Status s = SetGlobalStatus(txn, to);
  if (!s.ok()) ReportIllegalMove(txn->xid(), std::string(s.message()));
}

void MoveBranchStatus(std::string_view xid, v1::Branch* branch,
                      BranchStatus to) {
  absl::Status s = SetBranchStatus(branch, to);
  if (!s.ok()) ReportIllegalMove(xid, std::string(s.message()));
}

void MoveStepStatus(std::string_view xid, v1::StepProgress* step,
                    StepStatus to) {
  absl::Status s = SetStepStatus(step, to);
  if (!s.ok()) ReportIllegalMove(xid, std::string(s.message()));
}

std::string_view StepStatusName(StepStatus status) {
  switch (status) {
    case v1::STEP_STATUS_PENDING:
      return "pending";
    case v1::STEP_STATUS_RUNNING:
      return "running";
    case v1::STEP_STATUS_SUCCEEDED:
      return "succeeded";
    case v1::STEP_STATUS_FAILED:
      return "failed";
    case v1::STEP_STATUS_COMPENSATION_PENDING:
      return "compensation pending";
    case v1::STEP_STATUS_COMPENSATING:
      return "compensating";
    case v1::STEP_STATUS_COMPENSATED:
      return "compensated";
    case v1::STEP_STATUS_COMPENSATION_FAILED:
      return "compensation failed";
    case v1::STEP_STATUS_SKIPPED:
      return "skipped";
    default:
      return "unspecified";
  }
}

std::string_view ProtocolShortName(v1::Protocol protocol) {
  switch (protocol) {
    case v1::PROTOCOL_TWO_PHASE:
      return "2pc";
    case v1::PROTOCOL_TCC:
      return "tcc";
    case v1::PROTOCOL_SAGA:
      return "saga";
    default:
      return "";
  }
}

std::string_view GlobalStatusName(GlobalStatus status) {
  switch (status) {
    case v1::GLOBAL_STATUS_BEGUN:
      return "begun";
    case v1::GLOBAL_STATUS_COMMITTING:
      return "committing";
    case v1::GLOBAL_STATUS_COMMITTED:
      return "committed";
    case v1::GLOBAL_STATUS_ROLLING_BACK:
      return "rolling back";
    case v1::GLOBAL_STATUS_ROLLED_BACK:
      return "rolled back";
    case v1::GLOBAL_STATUS_COMMIT_STUCK:
      return "commit-stuck";
    case v1::GLOBAL_STATUS_ROLLBACK_STUCK:
      return "rollback-stuck";
    default:
      return "unspecified";
  }
}

std::string_view BranchStatusName(BranchStatus status) {
  switch (status) {
    case v1::BRANCH_STATUS_REGISTERED:
      return "registered";
    case v1::BRANCH_STATUS_PREPARED:
      return "prepared";
    case v1::BRANCH_STATUS_PREPARE_FAILED:
      return "prepare-failed";
    case v1::BRANCH_STATUS_COMMITTED:
      return "committed";
    case v1::BRANCH_STATUS_ROLLED_BACK:
      return "rolled back";
    case v1::BRANCH_STATUS_COMMIT_FAILED:
      return "commit-failed";
    case v1::BRANCH_STATUS_ROLLBACK_FAILED:
      return "rollback-failed";
    default:
      return "unspecified";
  }
}

}  // namespace baton
