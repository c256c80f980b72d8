#include "participant_sdk/internal/tcc_adapter.h"

#include "fmt/format.h"
#include "protocols/tcc.h"

namespace baton::internal {
namespace {

absl::StatusOr<TccContext> ToTccContext(const BranchContext& branch) {
  absl::StatusOr<tcc::ActionValues> action =
      tcc::DecodeActionContext(branch.application_data);
  if (!action.ok()) return action.status();
  return TccContext{.xid = branch.xid,
                    .branch_id = branch.branch_id,
                    .resource = branch.resource,
                    .action = std::move(*action),
                    .attempt = branch.attempt};
}

}  // namespace

absl::Status TccAdapter::Prepare(const BranchContext& branch) {
  absl::StatusOr<TccContext> context = ToTccContext(branch);
  if (!context.ok()) return context.status();
  absl::StatusOr<BarrierResult> result =
      barrier_->Run({.xid = branch.xid,
                     .branch_id = branch.branch_id,
                     .phase = TccPhase::kTry,
                     .local_only = resource_->TryIsLocal()},
                    [&](LocalTransaction& local, TryState) {
                      return resource_->Try(*context, local);
                    });
  return result.status();
}

PhaseTwoResult TccAdapter::RunPhaseTwo(const BranchContext& branch,
                                       TccPhase phase) {
  absl::StatusOr<TccContext> context = ToTccContext(branch);
  if (!context.ok()) return PhaseTwoResult::Failed(context.status().ToString());
  PhaseTwoResult hook_result = PhaseTwoResult::Done();
  absl::StatusOr<BarrierResult> result = barrier_->Run(
      {branch.xid, branch.branch_id, phase},
      [&](LocalTransaction& local, TryState state) {
        context->try_state = state;
        hook_result = phase == TccPhase::kConfirm
                          ? resource_->Confirm(*context, local)
                          : resource_->Cancel(*context, local);
        // Anything but done aborts the local transaction.
        return hook_result.outcome == PhaseTwoResult::Outcome::kDone
                   ? absl::OkStatus()
                   : absl::AbortedError(hook_result.message);
      });
  if (result.ok()) return PhaseTwoResult::Done();
  if (hook_result.outcome != PhaseTwoResult::Outcome::kDone) return hook_result;
  if (absl::IsFailedPrecondition(result.status())) {
    return PhaseTwoResult::Failed(std::string(result.status().message()));
  }
  return PhaseTwoResult::Retry(std::string(result.status().message()));
}

PhaseTwoResult TccAdapter::Commit(const BranchContext& branch) {
  return RunPhaseTwo(branch, TccPhase::kConfirm);
}

PhaseTwoResult TccAdapter::Rollback(const BranchContext& branch) {
  return RunPhaseTwo(branch, TccPhase::kCancel);
}

std::vector<InDoubtBranch> TccAdapter::Recover() {
  std::vector<InDoubtBranch> out;
  for (auto& [xid, branch_id] : barrier_->Unresolved()) {
    out.push_back({xid, branch_id});
  }
  return out;
}

}  // namespace baton::internal
