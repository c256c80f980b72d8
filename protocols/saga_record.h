#ifndef BATON_PROTOCOLS_SAGA_RECORD_H_
#define BATON_PROTOCOLS_SAGA_RECORD_H_

#include <cstdint>

#include "baton/v1/types.pb.h"

// Reads and the one whole-saga move that saga.cc (the machine) and
// saga_operator.cc (what operators may do to it) share. Pure functions of
// the record; no locking, callers own it.
namespace baton::saga {

// The record carries a started saga: a definition and a progress per step.
bool HasSaga(const v1::Transaction& txn);
// `step` must exist (HasSaga, and below steps_size()).
const v1::SagaStep& StepOf(const v1::Transaction& txn, uint32_t step);
v1::StepProgress* ProgressOf(v1::Transaction* txn, uint32_t step);
// Actions run: open, or decided forward (a forward-recovery saga).
bool RunsForward(v1::GlobalStatus status);
// An action or a compensation was sent and has no answer yet.
bool InFlight(const v1::StepProgress& p);
// Finishes the saga when every step reached the end of its road.
void Settle(v1::Transaction* txn, int64_t now_ms);

}  // namespace baton::saga

#endif  // BATON_PROTOCOLS_SAGA_RECORD_H_
