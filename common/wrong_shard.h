#ifndef BATON_COMMON_WRONG_SHARD_H_
#define BATON_COMMON_WRONG_SHARD_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "baton/v1/topology.pb.h"

namespace baton {

// The typed refusal of a call that reached a node not owning its xid's
// shard (topology.proto), as an absl::Status payload: batond attaches it,
// ToRichGrpcStatus (grpc_status.h) carries it over the wire, and the SDK reads
// it back to reroute.

// FAILED_PRECONDITION carrying `refusal` as a payload (type URL
// kWrongShardTypeUrl, the serialized WrongShard), with a message a person
// can act on.
absl::Status WrongShardError(const std::string& xid,
                             const v1::WrongShard& refusal);

// The same refusal for a new transaction whose idempotency key belongs to
// a shard this node does not own.
absl::Status WrongShardForKeyError(const std::string& key,
                                   const v1::WrongShard& refusal);

// `status` with `refusal` attached.
absl::Status WithWrongShard(absl::Status status, const v1::WrongShard& refusal);

// The WrongShard a status carries, if any.
std::optional<v1::WrongShard> WrongShardOf(const absl::Status& status);

inline constexpr char kWrongShardTypeUrl[] =
    "type.googleapis.com/baton.v1.WrongShard";

}  // namespace baton

#endif  // BATON_COMMON_WRONG_SHARD_H_
