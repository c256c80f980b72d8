#ifndef BATON_PARTICIPANT_SDK_INTERNAL_SAGA_ADAPTER_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_SAGA_ADAPTER_H_

#include "baton/participant.h"
#include "baton/saga.h"

namespace baton::internal {

// Serves a saga resource through the participant's phase-two plumbing: the
// coordinator sends a step's action as a commit and its compensation as a
// rollback. The action takes the barrier's try slot and the compensation
// its cancel slot, which gives a saga step exactly the guarantees a TCC
// branch has: a repeated action or compensation is a no-op, compensating a
// step that never ran records that and succeeds, and an action arriving
// after its compensation is refused.
class SagaAdapter : public XaResource {
 public:
  // Both must outlive this object.
  SagaAdapter(SagaResource* resource, BarrierStore* barrier)
      : resource_(resource), barrier_(barrier) {}

  // Sagas have no phase one.
  absl::Status Prepare(const BranchContext& branch) override;
  PhaseTwoResult Commit(const BranchContext& branch) override;
  PhaseTwoResult Rollback(const BranchContext& branch) override;

  BarrierStore* barrier() const { return barrier_; }

 private:
  SagaResource* const resource_;
  BarrierStore* const barrier_;
};

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_SAGA_ADAPTER_H_
