#ifndef BATON_COMMON_GRPC_STATUS_H_
#define BATON_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace baton {

// absl and gRPC share the canonical codes, so these conversions are lossless
// for code and message; payloads are dropped.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// The same, but absl::Status payloads travel as gRPC's rich error details:
// a google.rpc.Status in the "grpc-status-details-bin" trailer, each
// payload one google.protobuf.Any (its type URL and bytes as they were). So
// a typed refusal such as WrongShard reaches clients in any language, and
// comes back whole on our own side.
grpc::Status ToRichGrpcStatus(const absl::Status& status);
absl::Status FromRichGrpcStatus(const grpc::Status& status);

}  // namespace baton

#endif  // BATON_COMMON_GRPC_STATUS_H_
