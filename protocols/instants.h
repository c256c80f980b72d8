#ifndef BATON_PROTOCOLS_INSTANTS_H_
#define BATON_PROTOCOLS_INSTANTS_H_

#include <cstdint>

#include "baton/v1/types.pb.h"
#include "google/protobuf/message.h"

// The instants a record holds, taken together. Each is a reading of the
// coordinator's timeline (common/timeline.h), which runs at the monotonic
// clock's pace and ignores steps of the wall clock. Two kinds:
//   - when something happened: begun, decided, finished, registered,
//     updated, dispatched, and the audit trail;
//   - when something is due: the deadline, next retries and attempts, step
//     answers, the retry window (which counts from its start).
namespace baton::instants {

// Moves every instant in `message` by `delta_ms`: each int64 field whose
// name ends in "unix_ms", in nested messages too, unless unset (0). With
// the timeline's wall offset it shows an answer as the wall clock reads;
// with its negation it takes a person's instant onto the timeline.
void Shift(google::protobuf::Message* message, int64_t delta_ms);

struct CarryOverLimits {
  // Nothing that ends a transaction's patience (its deadline, a saga step's
  // answer, the retry window) comes sooner than this after a restart, or
  // its own full duration if that is shorter.
  int64_t grace_ms = 10'000;
  // The longest phase-two backoff.
  int64_t retry_max_ms = 60'000;
  int64_t retry_window_ms = 10 * 60'000;
};

// Brings a record stored by an earlier process onto the timeline of this
// one, which starts at the wall clock. The earlier timeline may have
// drifted from the wall clock by every step it ignored, and the wall clock
// may have stepped while no coordinator ran, so each instant is held to
// what it can mean at `now_ms`:
//   - what happened did not happen later than now;
//   - what is due is no further away than its own full duration (a
//     deadline no later than now + timeout, a retry no later than now +
//     the longest backoff), and an ending no sooner than the grace.
// Returns whether anything changed. A record carried over twice stays as
// after the first time.
bool CarryOver(v1::Transaction* txn, int64_t now_ms,
               const CarryOverLimits& limits);

}  // namespace baton::instants

#endif  // BATON_PROTOCOLS_INSTANTS_H_
