#include "coordinator/message_size.h"

#include <algorithm>

#include "common/limits.h"
#include "fmt/format.h"

namespace baton {

size_t PeerReceiveBytes(uint32_t stated) {
  if (stated == 0) return limits::kDefaultPeerReceiveBytes;
  return std::min<size_t>(stated, limits::kMaxMessageBytes);
}

absl::Status FitTransaction(v1::Transaction* txn, size_t max_bytes) {
  if (txn->ByteSizeLong() <= max_bytes) return absl::OkStatus();
  for (v1::Branch& b : *txn->mutable_branches()) b.clear_application_data();
  if (txn->has_saga()) {
    for (v1::SagaStep& step :
         *txn->mutable_saga()->mutable_definition()->mutable_steps()) {
      if (step.has_action()) step.mutable_action()->clear_payload();
      if (step.has_compensation()) step.mutable_compensation()->clear_payload();
    }
  }
  txn->set_application_data_omitted(true);
  size_t size = txn->ByteSizeLong();
  if (size <= max_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(fmt::format(
      "the record of transaction {} is {} bytes even without its application "
      "data, over the {} bytes the receiver reads: raise its limit "
      "(max_response_bytes, and the channel's receive limit)",
      txn->xid(), size, max_bytes));
}

}  // namespace baton
