#include "samples/travel/step_payload.h"

#include <charconv>
#include <sstream>

#include "fmt/format.h"

namespace baton::samples {
namespace {

template <typename T>
bool ParseNumber(const std::string& text, T* out) {
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string EncodeStepPayload(const StepPayload& p) {
  return fmt::format(
      "key={};units={};act_retries={};act_fail={};act_delay_ms={};"
      "compensate_retries={}",
      p.key, p.units, p.act_retries, p.act_fail ? 1 : 0, p.act_delay_ms,
      p.compensate_retries);
}

absl::Status SetKnob(const std::string& assignment, StepPayload* p) {
  size_t eq = assignment.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not NAME=VALUE", assignment));
  }
  std::string name = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  bool ok = true;
  if (name == "key") {
    p->key = value;
  } else if (name == "units") {
    ok = ParseNumber(value, &p->units) && p->units > 0;
  } else if (name == "act_retries") {
    ok = ParseNumber(value, &p->act_retries);
  } else if (name == "act_fail") {
    p->act_fail = value == "1";
  } else if (name == "act_delay_ms") {
    ok = ParseNumber(value, &p->act_delay_ms) && p->act_delay_ms >= 0;
  } else if (name == "compensate_retries") {
    ok = ParseNumber(value, &p->compensate_retries);
  } else {
    return absl::InvalidArgumentError(fmt::format(
        "unknown knob '{}': key, units, act_retries, act_fail, act_delay_ms "
        "or compensate_retries",
        name));
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        fmt::format("bad value '{}' for {}", value, name));
  }
  return absl::OkStatus();
}

absl::StatusOr<StepPayload> DecodeStepPayload(const std::string& text) {
  StepPayload payload;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ';')) {
    if (absl::Status s = SetKnob(item, &payload); !s.ok()) return s;
  }
  if (payload.key.empty()) {
    return absl::InvalidArgumentError("the step payload names no key");
  }
  return payload;
}

}  // namespace baton::samples
