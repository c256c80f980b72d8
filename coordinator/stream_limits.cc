#include "coordinator/stream_limits.h"

#include "fmt/format.h"

namespace baton {

StreamGate::Slot StreamGate::Enter(grpc::Status* refusal) {
  int open = open_.fetch_add(1, std::memory_order_relaxed);
  if (open < max_) return Slot(this);
  open_.fetch_sub(1, std::memory_order_relaxed);
  *refusal = grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      fmt::format("batond has {} {} streams open, its limit ({}): close idle "
                  "streams, share one per process, or raise the limit",
                  max_, kind_, flag_));
  return Slot();
}

}  // namespace baton
