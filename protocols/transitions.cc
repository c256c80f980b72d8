#include "protocols/transitions.h"

#include <algorithm>
#include <initializer_list>
#include <string>

#include "fmt/format.h"

namespace baton {
namespace {

using v1::BranchStatus;
using v1::GlobalStatus;

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

}  // namespace

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
