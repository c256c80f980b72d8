#include "protocols/instants.h"

#include <algorithm>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace baton::instants {

namespace {

// A past event read later than now came from a clock that has since
// stepped back.
bool NotAfter(int64_t now_ms, int64_t value, auto set) {
  if (value <= now_ms) return false;
  set(now_ms);
  return true;
}

#define BATON_NOT_AFTER(message, field) \
  NotAfter(now_ms, (message)->field(),  \
           [&](int64_t v) { (message)->set_##field(v); })

// What is due at `due` (0: nothing), `full_ms` after it was set, must come
// within [now + soonest, now + full].
bool Hold(int64_t now_ms, int64_t due, int64_t full_ms, int64_t soonest_ms,
          auto set) {
  if (due == 0) return false;
  int64_t held = std::min(due, now_ms + std::max<int64_t>(0, full_ms));
  if (soonest_ms > 0) {
    held = std::max(held, now_ms + std::min(soonest_ms, full_ms));
  }
  if (held == due) return false;
  set(held);
  return true;
}

}  // namespace

void Shift(google::protobuf::Message* message, int64_t delta_ms) {
  if (delta_ms == 0) return;
  const google::protobuf::Reflection* reflection = message->GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    using Field = google::protobuf::FieldDescriptor;
    if (field->cpp_type() == Field::CPPTYPE_MESSAGE) {
      if (!field->is_repeated()) {
        Shift(reflection->MutableMessage(message, field), delta_ms);
        continue;
      }
      for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
        Shift(reflection->MutableRepeatedMessage(message, field, i), delta_ms);
      }
    } else if (field->cpp_type() == Field::CPPTYPE_INT64 &&
               !field->is_repeated() && field->name().ends_with("unix_ms")) {
      int64_t value = reflection->GetInt64(*message, field);
      if (value != 0) reflection->SetInt64(message, field, value + delta_ms);
    }
  }
}

bool CarryOver(v1::Transaction* txn, int64_t now_ms,
               const CarryOverLimits& limits) {
  const int64_t grace = limits.grace_ms;
  // Before begun is held back: older records know their timeout only as the
  // distance between the two.
  const int64_t timeout = txn->timeout_ms() != 0
                              ? txn->timeout_ms()
                              : txn->deadline_unix_ms() - txn->begun_unix_ms();
  bool changed = false;
  changed |= BATON_NOT_AFTER(txn, begun_unix_ms);
  changed |= BATON_NOT_AFTER(txn, decided_unix_ms);
  changed |= BATON_NOT_AFTER(txn, retry_window_start_unix_ms);
  for (v1::AuditRecord& a : *txn->mutable_audit())
    changed |= BATON_NOT_AFTER(&a, unix_ms);
  if (txn->status() == v1::GLOBAL_STATUS_BEGUN) {
    changed |= Hold(now_ms, txn->deadline_unix_ms(), timeout, grace,
                    [&](int64_t v) { txn->set_deadline_unix_ms(v); });
  }
  // The window counts from the later of the decision and its start.
  int64_t window_from =
      std::max(txn->decided_unix_ms(), txn->retry_window_start_unix_ms());
  if (window_from != 0) {
    int64_t earliest = now_ms - limits.retry_window_ms +
                       std::min(grace, limits.retry_window_ms);
    if (window_from < earliest) {
      txn->set_retry_window_start_unix_ms(earliest);
      changed = true;
    }
  }
  for (v1::Branch& b : *txn->mutable_branches()) {
    changed |= BATON_NOT_AFTER(&b, registered_unix_ms);
    changed |= BATON_NOT_AFTER(&b, updated_unix_ms);
    changed |=
        Hold(now_ms, b.next_retry_unix_ms(), limits.retry_max_ms,
             /*soonest_ms=*/0, [&](int64_t v) { b.set_next_retry_unix_ms(v); });
  }
  if (!txn->has_saga()) return changed;
  const v1::SagaDefinition& definition = txn->saga().definition();
  const int steps = std::min(txn->saga().steps_size(), definition.steps_size());
  for (int i = 0; i < steps; ++i) {
    v1::StepProgress& p = *txn->mutable_saga()->mutable_steps(i);
    const v1::SagaStep& step = definition.steps(i);
    changed |= BATON_NOT_AFTER(&p, dispatched_unix_ms);
    changed |= BATON_NOT_AFTER(&p, updated_unix_ms);
    changed |= Hold(now_ms, p.next_attempt_unix_ms(),
                    step.retry().max_backoff_ms(), /*soonest_ms=*/0,
                    [&](int64_t v) { p.set_next_attempt_unix_ms(v); });
    changed |= Hold(now_ms, p.timeout_unix_ms(), step.timeout_ms(), grace,
                    [&](int64_t v) { p.set_timeout_unix_ms(v); });
  }
  return changed;
}

#undef BATON_NOT_AFTER

}  // namespace baton::instants
