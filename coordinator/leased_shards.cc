#include "coordinator/leased_shards.h"

#include <chrono>
#include <future>
#include <memory>

#include "fmt/format.h"
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
            TransactionTable* table = leased.manager->HostedTable(shard);
            if (table == nullptr) return true;
            const uint64_t generation = table->generation();
            table->set_serving(false);
            // Everything submitted before is written (or refused) once an
            // empty batch's callback runs. Not waited for past a round, so
            // a hung write cannot hold up the renewals.
            auto written = std::make_shared<std::promise<void>>();
            std::future<void> done = written->get_future();
            leased.committer->Submit(
                StoreBatch(),
                [written](const absl::Status&) { written->set_value(); });
            if (done.wait_for(std::chrono::milliseconds(leased.lease_ms / 3)) ==
                std::future_status::ready) {
              return true;
            }
            // Asked again next round, if it is still to go.
            table->ServeAgainUnlessDropped(generation);
            return false;
          },
      // A write hung for a lease's length (a stalled database, a stopped
      // session) keeps this node from serving as surely as a failed one.
      .can_serve =
          [leased] {
            return leased.committer->failure().ok() &&
                   leased.committer->writing_for() <
                       std::chrono::milliseconds(leased.lease_ms);
          },
      .revive = [leased]() -> absl::Status {
        // A hung write holds the store: wait for it to end, or fail.
        if (leased.committer->failure().ok()) {
          return absl::UnavailableError(fmt::format(
              "a store write has taken {} ms so far; no shard is leased "
              "until it ends",
              leased.committer->writing_for().count()));
        }
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
