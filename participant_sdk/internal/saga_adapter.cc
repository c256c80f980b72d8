#include "participant_sdk/internal/saga_adapter.h"

#include "fmt/format.h"

namespace baton::internal {
namespace {

SagaStepContext ToStepContext(const BranchContext& branch) {
  return SagaStepContext{.xid = branch.xid,
                         .step = static_cast<uint32_t>(branch.branch_id - 1),
                         .resource = branch.resource,
                         .payload = branch.application_data,
                         .attempt = branch.attempt};
}

// Runs `hook` for `phase` behind the barrier. Anything but done from the
// hook aborts its local transaction and is answered as the hook said.
PhaseTwoResult RunBehindBarrier(
    BarrierStore* barrier, const BarrierCall& call,
    const std::function<PhaseTwoResult(LocalTransaction&, TryState)>& hook) {
  PhaseTwoResult hook_result = PhaseTwoResult::Done();
  absl::StatusOr<BarrierResult> result =
      barrier->Run(call, [&](LocalTransaction& local, TryState state) {
        hook_result = hook(local, state);
        return hook_result.outcome == PhaseTwoResult::Outcome::kDone
                   ? absl::OkStatus()
                   : absl::AbortedError(hook_result.message);
      });
  if (result.ok()) return PhaseTwoResult::Done();
  if (hook_result.outcome != PhaseTwoResult::Outcome::kDone) return hook_result;
  // The barrier refused: a late action after the step's compensation.
  if (absl::IsFailedPrecondition(result.status())) {
    return PhaseTwoResult::Failed(std::string(result.status().message()));
  }
  return PhaseTwoResult::Retry(std::string(result.status().message()));
}

}  // namespace

absl::Status SagaAdapter::Prepare(const BranchContext& branch) {
  return absl::FailedPreconditionError(
      fmt::format("resource '{}' serves saga steps, which have no phase one",
                  branch.resource));
}

PhaseTwoResult SagaAdapter::Commit(const BranchContext& branch) {
  SagaStepContext step = ToStepContext(branch);
  return RunBehindBarrier(barrier_,
                          {.xid = branch.xid,
                           .branch_id = branch.branch_id,
                           .phase = TccPhase::kTry,
                           .local_only = resource_->ActIsLocal()},
                          [&](LocalTransaction& local, TryState) {
                            return resource_->Act(step, local);
                          });
}

PhaseTwoResult SagaAdapter::Rollback(const BranchContext& branch) {
  SagaStepContext step = ToStepContext(branch);
  return RunBehindBarrier(barrier_,
                          {.xid = branch.xid,
                           .branch_id = branch.branch_id,
                           .phase = TccPhase::kCancel},
                          [&](LocalTransaction& local, TryState state) {
                            step.action_state = state;
                            return resource_->Compensate(step, local);
                          });
}

}  // namespace baton::internal
