// Draining a shard: no new transactions, so its node can leave once the
// shard has nothing unfinished. The mark is a meta key per shard, so a
// restart keeps it.

#include "absl/strings/str_cat.h"
#include "coordinator/transaction_manager.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

std::string DrainingKey(uint32_t shard) {
  return absl::StrCat("draining/", shard);
}

}  // namespace

absl::Status TransactionManager::LoadDraining() {
  for (const auto& table : tables_) {
    std::string ignored;
    absl::Status s = store_->GetMeta(DrainingKey(table->shard()), &ignored);
    if (absl::IsNotFound(s)) continue;
    if (!s.ok()) return s;
    table->set_draining(true);
    spdlog::warn(
        "shard {} is draining: it takes no new transactions "
        "(batonctl drain {} --undo ends that)",
        table->shard(), table->shard());
  }
  return absl::OkStatus();
}

bool TransactionManager::ShardDrainingInStore(uint32_t shard) const {
  std::string ignored;
  return store_->GetMeta(DrainingKey(shard), &ignored).ok();
}

void TransactionManager::Drain(uint32_t shard, bool draining,
                               const std::string& why,
                               std::function<void(const absl::Status&)> done) {
  TransactionTable* table = HostedTable(shard);
  // Leased shards are drained where they are served.
  if (table == nullptr || !table->serving()) {
    if (options_.directory != nullptr) {
      if (std::optional<v1::WrongShard> refusal =
              options_.directory->Elsewhere(shard)) {
        return done(WithWrongShard(
            absl::FailedPreconditionError(absl::StrCat(
                "shard ", shard, " is not this node's: ",
                refusal->owner_address().empty()
                    ? "no node has announced it"
                    : absl::StrCat("drain it at node ", refusal->owner_node(),
                                   ", ", refusal->owner_address()))),
            *refusal));
      }
    }
    return done(absl::NotFoundError(absl::StrCat(
        "no shard ", shard, " here: this node hosts ", options_.node_id, "..",
        options_.node_id + tables_.size() - 1)));
  }
  StoreBatch batch;
  if (draining) {
    batch.PutMeta(DrainingKey(shard), why);
  } else {
    batch.DeleteMeta(DrainingKey(shard));
  }
  committer_->Submit(
      std::move(batch), [table, shard, draining, why,
                         done = std::move(done)](const absl::Status& synced) {
        if (synced.ok()) {
          table->set_draining(draining);
          spdlog::warn("shard {} {}: {}", shard,
                       draining ? "drains, taking no new transactions"
                                : "takes new transactions again",
                       why);
        }
        done(synced);
      });
}

std::set<uint32_t> TransactionManager::DrainingShards() const {
  std::set<uint32_t> out;
  for (const auto& table : tables_) {
    if (table->draining()) out.insert(table->shard());
  }
  return out;
}

}  // namespace baton
