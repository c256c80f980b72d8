#ifndef BATON_COORDINATOR_MESSAGE_SIZE_H_
#define BATON_COORDINATOR_MESSAGE_SIZE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "baton/v1/types.pb.h"

// The coordinator never sends a peer a message larger than the peer said it
// reads (4 MiB, gRPC's default, unless it said otherwise): batches are cut to
// fit, and a record too large for its message travels without its
// application data.
namespace baton {

// Room left in a message for the fields around its records or batched
// elements (call ids, codes, tags and lengths).
inline constexpr size_t kMessageOverheadBytes = 1024;

// The largest message a peer reads, from what it said: 0 means gRPC's
// default; nothing is sent above the coordinator's own limit.
size_t PeerReceiveBytes(uint32_t stated);

// Makes `txn` at most `max_bytes` long by leaving out every branch's
// application_data and every saga step's payloads (marking it
// application_data_omitted) if it is longer. RESOURCE_EXHAUSTED, naming both
// sizes, if even that is too long.
absl::Status FitTransaction(v1::Transaction* txn, size_t max_bytes);

}  // namespace baton

#endif  // BATON_COORDINATOR_MESSAGE_SIZE_H_
