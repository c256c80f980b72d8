#include "coordinator/transaction_manager.h"

// The manager's read models: what the status pages, the metrics and batonctl
// are told about the transactions in memory. The rest of TransactionManager
// is in transaction_manager.cc.

namespace baton {

std::map<std::pair<v1::GlobalStatus, v1::Protocol>, uint64_t>
TransactionManager::Summary::Counts() const {
  std::map<std::pair<v1::GlobalStatus, v1::Protocol>, uint64_t> all;
  for (const auto& [id, shard] : shards) {
    for (const auto& [key, count] : shard.counts) all[key] += count;
  }
  return all;
}

uint64_t TransactionManager::Summary::RetryBacklog() const {
  uint64_t all = 0;
  for (const auto& [id, shard] : shards) all += shard.retry_backlog;
  return all;
}

std::vector<uint32_t> TransactionManager::ServingShards() const {
  std::vector<uint32_t> out;
  for (const auto& table : tables_) {
    if (table->serving()) out.push_back(table->shard());
  }
  return out;
}

std::map<uint32_t, uint64_t> TransactionManager::LiveByShard() const {
  std::map<uint32_t, uint64_t> live;
  for (const auto& table : tables_) live[table->shard()] = table->LiveCount();
  return live;
}

TransactionManager::Summary TransactionManager::Summarize() const {
  Summary summary;
  const int64_t now = timeline_->Now();
  for (const auto& table : tables_) {
    Summary::Shard& shard = summary.shards[table->shard()];
    std::string after;
    do {
      after = table->ReadPage(after, kScanPage, [&](const LiveTransaction& t) {
        const v1::Transaction& r = t.record;
        ++shard.counts[{r.status(), r.protocol()}];
        if (summary.oldest_xid.empty() ||
            r.begun_unix_ms() < summary.oldest_begun_unix_ms) {
          summary.oldest_xid = r.xid();
          summary.oldest_begun_unix_ms = r.begun_unix_ms();
        }
        shard.retry_backlog +=
            DriverFor(r)->AddBacklog(t, now, &summary.backlog_by_resource);
        return true;
      });
    } while (!after.empty());
  }
  return summary;
}

void TransactionManager::ReadLive(
    const std::string& after,
    const std::function<bool(const v1::Transaction&)>& read) const {
  size_t first = 0;
  if (TransactionTable* table = TableFor(after); table != nullptr) {
    first = table->shard() - options_.node_id;
  }
  for (size_t i = first; i < tables_.size(); ++i) {
    std::string cursor = i == first ? after : "";
    bool stopped = false;
    do {
      cursor = tables_[i]->ReadPage(cursor, kScanPage,
                                    [&](const LiveTransaction& t) {
                                      stopped = !read(t.record);
                                      return !stopped;
                                    });
    } while (!stopped && !cursor.empty());
    if (stopped) return;
  }
}

size_t TransactionManager::LiveCount() const {
  size_t count = 0;
  for (const auto& table : tables_) count += table->LiveCount();
  return count;
}

}  // namespace baton
