#include "coordinator/leased_shards.h"

#include <future>

#include "spdlog/spdlog.h"

namespace baton {

absl::StatusOr<std::unique_ptr<LeaseKeeper>> StartLeaseKeeper(
    const LeasedShards& leased) {
  absl::StatusOr<std::unique_ptr<ShardLeaseTable>> table =
      ShardLeaseTable::Open({.conninfo = leased.conninfo,
                             .node = leased.node,
                             .address = leased.address,
                             .lease_ms = leased.lease_ms});
  if (!table.ok()) return table.status();
  LeaseKeeper::Hooks hooks{
      .acquired =
          [leased](uint32_t shard, int64_t fencing) {
            absl::Status s = leased.recovery->ResumeShard(
                shard, static_cast<uint64_t>(fencing));
            if (!s.ok()) {
              // Unrenewed, the lease runs out; the next round takes it
              // again and retries the load.
              spdlog::error("shard {}: cannot resume it: {}", shard,
                            s.ToString());
              leased.fences->Drop(shard);
            }
            leased.cluster->SelfChanged();
          },
      .lost =
          [leased](uint32_t shard) {
            leased.manager->DropShard(shard);
            leased.cluster->SelfChanged();
          },
      .quiesce =
          [leased](uint32_t shard) {
            if (TransactionTable* table = leased.manager->HostedTable(shard)) {
              table->set_serving(false);
            }
            // Everything submitted before is written (or refused) once an
            // empty batch's callback runs.
            std::promise<void> written;
            leased.committer->Submit(
                StoreBatch(),
                [&written](const absl::Status&) { written.set_value(); });
            written.get_future().wait();
            return true;
          },
      .can_serve = [leased] { return leased.committer->failure().ok(); },
      .revive =
          [leased] {
            if (absl::Status s = leased.store->Revive(); !s.ok()) return s;
            leased.committer->Revive();
            if (leased.revived) leased.revived();
            return absl::OkStatus();
          }};
  auto keeper = std::make_unique<LeaseKeeper>(
      std::move(*table), leased.fences,
      LeaseKeeper::Options{.shards = leased.shards,
                           .lease_ms = leased.lease_ms},
      std::move(hooks));
  keeper->Start();
  return keeper;
}

}  // namespace baton
