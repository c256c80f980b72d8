#include "protocols/saga_record.h"

#include "protocols/transitions.h"

namespace baton::saga {

bool HasSaga(const v1::Transaction& txn) {
  return txn.saga().steps_size() > 0 &&
         txn.saga().steps_size() == txn.saga().definition().steps_size();
}

const v1::SagaStep& StepOf(const v1::Transaction& txn, uint32_t step) {
  return txn.saga().definition().steps(static_cast<int>(step));
}

v1::StepProgress* ProgressOf(v1::Transaction* txn, uint32_t step) {
  return txn->mutable_saga()->mutable_steps(static_cast<int>(step));
}

bool RunsForward(v1::GlobalStatus status) {
  return status == v1::GLOBAL_STATUS_BEGUN || IsCommitSide(status);
}

bool InFlight(const v1::StepProgress& p) {
  return p.status() == v1::STEP_STATUS_RUNNING ||
         p.status() == v1::STEP_STATUS_COMPENSATING;
}

void Settle(v1::Transaction* txn, int64_t now_ms) {
  bool forward = RunsForward(txn->status());
  for (const v1::StepProgress& p : txn->saga().steps()) {
    bool finished = forward ? p.status() == v1::STEP_STATUS_SUCCEEDED
                            : p.status() == v1::STEP_STATUS_COMPENSATED ||
                                  p.status() == v1::STEP_STATUS_SKIPPED;
    if (!finished) return;
  }
  // From BEGUN, COMMITTING or a stuck status these moves are legal.
  if (forward) {
    MoveGlobalStatus(txn, v1::GLOBAL_STATUS_COMMITTED);
    if (txn->decided_unix_ms() == 0) txn->set_decided_unix_ms(now_ms);
  } else {
    MoveGlobalStatus(txn, v1::GLOBAL_STATUS_ROLLED_BACK);
  }
  txn->set_finished_unix_ms(now_ms);
}

}  // namespace baton::saga
