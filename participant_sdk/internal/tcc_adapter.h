#ifndef BATON_PARTICIPANT_SDK_INTERNAL_TCC_ADAPTER_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_TCC_ADAPTER_H_

#include "baton/participant.h"
#include "baton/tcc.h"

namespace baton::internal {

// Serves a TCC resource through the participant's two-phase plumbing: try is
// prepare, confirm is commit, cancel is rollback, each behind the barrier.
class TccAdapter : public XaResource {
 public:
  // Both must outlive this object.
  TccAdapter(TccResource* resource, BarrierStore* barrier)
      : resource_(resource), barrier_(barrier) {}

  absl::Status Prepare(const BranchContext& branch) override;
  PhaseTwoResult Commit(const BranchContext& branch) override;
  PhaseTwoResult Rollback(const BranchContext& branch) override;
  std::vector<InDoubtBranch> Recover() override;

  BarrierStore* barrier() const { return barrier_; }

 private:
  PhaseTwoResult RunPhaseTwo(const BranchContext& branch, TccPhase phase);

  TccResource* const resource_;
  BarrierStore* const barrier_;
};

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_TCC_ADAPTER_H_
