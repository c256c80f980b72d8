#include "common/wrong_shard.h"

#include "absl/strings/cord.h"
#include "fmt/format.h"

namespace baton {

namespace {

std::string WhereToSend(const v1::WrongShard& refusal) {
  if (refusal.owner_address().empty()) {
    return fmt::format(
        "no node has announced shard {} yet; refresh the topology and retry",
        refusal.shard());
  }
  return fmt::format("send it to node {} at {}", refusal.owner_node(),
                     refusal.owner_address());
}

}  // namespace

absl::Status WrongShardError(const std::string& xid,
                             const v1::WrongShard& refusal) {
  return WithWrongShard(
      absl::FailedPreconditionError(
          fmt::format("transaction {} is on shard {}, which this node does "
                      "not own: {}",
                      xid, refusal.shard(), WhereToSend(refusal))),
      refusal);
}

absl::Status WrongShardForKeyError(const std::string& key,
                                   const v1::WrongShard& refusal) {
  return WithWrongShard(
      absl::FailedPreconditionError(fmt::format(
          "idempotency key '{}' belongs to shard {}, which this node does not "
          "own, so only that shard can tell whether the key already started "
          "a transaction: {}",
          key, refusal.shard(), WhereToSend(refusal))),
      refusal);
}

absl::Status WithWrongShard(absl::Status status,
                            const v1::WrongShard& refusal) {
  status.SetPayload(kWrongShardTypeUrl,
                    absl::Cord(refusal.SerializeAsString()));
  return status;
}

std::optional<v1::WrongShard> WrongShardOf(const absl::Status& status) {
  auto payload = status.GetPayload(kWrongShardTypeUrl);
  if (!payload) return std::nullopt;
  v1::WrongShard refusal;
  if (!refusal.ParseFromString(std::string(*payload))) return std::nullopt;
  return refusal;
}

}  // namespace baton
