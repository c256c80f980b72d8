#ifndef BATON_SAMPLES_TRAVEL_STEP_PAYLOAD_H_
#define BATON_SAMPLES_TRAVEL_STEP_PAYLOAD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace baton::samples {

// What a travel step asks of its service: `units` of `key` (seats on a
// flight, rooms at a hotel, cents from an account), plus knobs that make the
// service misbehave on purpose, so the sample can show every saga path.
// Encoded as "key=v;units=3;act_retries=2".
struct StepPayload {
  std::string key;
  int64_t units = 1;
  // The first act_retries attempts of the action answer "retry".
  uint32_t act_retries = 0;
  // The action fails for good ("no, never").
  bool act_fail = false;
  // The action takes this long (a slow supplier).
  int64_t act_delay_ms = 0;
  // The first compensate_retries attempts of the compensation answer retry.
  uint32_t compensate_retries = 0;
};

std::string EncodeStepPayload(const StepPayload& payload);
// INVALID_ARGUMENT naming the bad field.
absl::StatusOr<StepPayload> DecodeStepPayload(const std::string& text);
// Sets one knob from "name=value" (as the client's --knob takes it).
absl::Status SetKnob(const std::string& assignment, StepPayload* payload);

}  // namespace baton::samples

#endif  // BATON_SAMPLES_TRAVEL_STEP_PAYLOAD_H_
