#include "coordinator/lease_keeper.h"

#include <algorithm>
#include <chrono>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace baton {

LeaseKeeper::LeaseKeeper(std::unique_ptr<ShardLeaseTable> table,
                         ShardFences* fences, const Options& options,
                         Hooks hooks)
    : table_(std::move(table)),
      fences_(fences),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : SystemClock()),
      hooks_(std::move(hooks)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

void LeaseKeeper::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LeaseKeeper::Stop() {
  {
    absl::MutexLock lock(&wait_mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::Run() {
  const int64_t round_ms =
      options_.round_ms > 0 ? options_.round_ms : options_.lease_ms / 3;
  std::string last_error;
  for (;;) {
    absl::Status s = RunOnce();
    std::string error = s.ok() ? "" : s.ToString();
    if (error != last_error) {
      if (s.ok()) {
        spdlog::info("shard leases: the database answers again");
      } else {
        spdlog::warn("shard leases: {}", error);
      }
      last_error = error;
    }
    absl::MutexLock lock(&wait_mu_);
    if (wake_.WaitFor(&wait_mu_, std::chrono::milliseconds(round_ms),
                      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait_mu_) {
                        return stopping_;
                      })) {
      return;
    }
  }
}

absl::Status LeaseKeeper::RunOnce() {
  if (hooks_.can_serve && !hooks_.can_serve()) {
    for (const auto& [shard, fencing] : fences_->All()) {
      fences_->Drop(shard);
      spdlog::warn("shard {}: letting its lease go, the store cannot write",
                   shard);
      if (hooks_.lost) hooks_.lost(shard);
    }
    renewed_at_ms_ = -1;
    absl::Status revived =
        hooks_.revive ? hooks_.revive()
                      : absl::FailedPreconditionError("the store cannot write");
    if (!revived.ok()) return revived;
  }
  const int64_t started = clock_->SteadyMs();
  std::vector<uint32_t> lost;
  absl::Status s;
  if (!shards_made_) {
    s = table_->EnsureShards(options_.shards);
    shards_made_ = s.ok();
  }
  if (s.ok()) s = Renew(&lost);
  if (s.ok()) renewed_at_ms_ = started;
  // Unheard past a lease, it may be another's already.
  if (!s.ok() && renewed_at_ms_ >= 0 &&
      clock_->SteadyMs() - renewed_at_ms_ >= options_.lease_ms) {
    for (const auto& [shard, fencing] : fences_->All()) lost.push_back(shard);
    renewed_at_ms_ = -1;
  }
  for (uint32_t shard : lost) {
    fences_->Drop(shard);
    spdlog::warn("shard {}: lease lost; no longer serving it", shard);
    if (hooks_.lost) hooks_.lost(shard);
  }
  if (!s.ok()) return s;

  absl::StatusOr<ShardLeaseTable::Reading> reading = table_->Read();
  if (!reading.ok()) return reading.status();
  if (reading->leases.size() != options_.shards) {
    return absl::FailedPreconditionError(fmt::format(
        "the lease table holds {} shards, and this node was started with "
        "--cluster-shards {}: every node of a cluster needs the same count",
        reading->leases.size(), options_.shards));
  }
  const std::map<uint32_t, int64_t> held = fences_->All();
  // A lease in this node's name it does not hold (its own before a
  // restart) is one to take again: Take raises its number.
  for (ShardLease& lease : reading->leases) {
    if (lease.owner == table_->node() && !held.contains(lease.shard)) {
      lease.owner.clear();
    }
  }
  LeasePlan plan = PlanLeases(table_->node(), reading->live, reading->leases);
  for (uint32_t shard : plan.give_back) {
    if (hooks_.quiesce && !hooks_.quiesce(shard)) continue;
    fences_->Drop(shard);
    if (hooks_.lost) hooks_.lost(shard);
    s = table_->GiveBack(shard, held.at(shard));
    if (!s.ok()) return s;  // Its lease runs out instead.
    spdlog::info("shard {}: given back (share {})", shard, plan.share);
  }
  for (uint32_t shard : plan.take) {
    absl::StatusOr<std::optional<int64_t>> fencing =
        table_->Take(shard, reading->leases[shard].fencing);
    if (!fencing.ok()) return fencing.status();
    if (!fencing->has_value()) continue;  // Another node was quicker.
    fences_->Set(shard, **fencing);
    spdlog::info("shard {}: leased with fencing number {}", shard, **fencing);
    if (hooks_.acquired) hooks_.acquired(shard, **fencing);
  }
  return absl::OkStatus();
}

absl::Status LeaseKeeper::Renew(std::vector<uint32_t>* lost) {
  const std::map<uint32_t, int64_t> held = fences_->All();
  if (held.empty()) return absl::OkStatus();
  absl::StatusOr<std::vector<uint32_t>> kept = table_->Renew(held);
  if (!kept.ok()) return kept.status();
  for (const auto& [shard, fencing] : held) {
    if (!std::binary_search(kept->begin(), kept->end(), shard)) {
      lost->push_back(shard);
    }
  }
  return absl::OkStatus();
}

}  // namespace baton
