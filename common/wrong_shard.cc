#include "common/wrong_shard.h"

#include "absl/strings/cord.h"
#include "fmt/format.h"

namespace baton {

absl::Status WrongShardError(const std::string& xid,
                             const v1::WrongShard& refusal) {
  std::string where =
      refusal.owner_address().empty()
          ? fmt::format(
                "no node has announced shard {} yet; refresh the "
                "topology and retry",
                refusal.shard())
          : fmt::format("send it to node {} at {}", refusal.owner_node(),
                        refusal.owner_address());
  return WithWrongShard(
      absl::FailedPreconditionError(
          fmt::format("transaction {} is on shard {}, which this node does "
                      "not own: {}",
                      xid, refusal.shard(), where)),
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
