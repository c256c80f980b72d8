#include "recovery/recovery_loop.h"

#include <algorithm>
#include <future>
#include <vector>

#include "spdlog/spdlog.h"

namespace baton {

RecoveryLoop::RecoveryLoop(const RecoveryOptions& options,
                           TransactionStore* store, GroupCommitter* committer,
                           TransactionManager* manager)
    : options_(options),
      store_(store),
      committer_(committer),
      manager_(manager),
      offset_saver_(manager->timeline(), committer) {}

RecoveryLoop::~RecoveryLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

absl::Status RecoveryLoop::ResumeUnfinished() {
  size_t count = 0;
  absl::Status s = store_->ScanUnfinished([&](const v1::Transaction& txn) {
    manager_->Adopt(txn);
    ++count;
    return true;
  });
  if (s.ok())
    spdlog::info("recovery: resumed {} unfinished transaction(s)", count);
  return s;
}

void RecoveryLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RecoveryLoop::Run() {
  int64_t next_purge = manager_->timeline()->Now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    int64_t now = manager_->timeline()->Now();
    manager_->RunDue(now);
    offset_saver_.SaveIfMoved();
    if (now >= next_purge) {
      while (PurgeFinishedBefore(now - options_.finished_retention_ms) ==
             options_.purge_batch) {
      }
      next_purge =
          now + std::clamp<int64_t>(options_.finished_retention_ms / 10, 100,
                                    options_.purge_interval_ms);
    }
    lock.lock();
    wake_.wait_until(lock,
                     std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(options_.tick_ms),
                     [this] { return stopping_; });
  }
}

size_t RecoveryLoop::PurgeFinishedBefore(int64_t cutoff_ms) {
  std::vector<FinishedRef> refs;
  absl::Status s =
      store_->ScanFinished(nullptr, cutoff_ms, options_.purge_batch, &refs);
  if (!s.ok() || refs.empty()) {
    if (!s.ok()) spdlog::error("purge scan failed: {}", s.ToString());
    return 0;
  }
  StoreBatch batch;
  for (const FinishedRef& ref : refs) {
    batch.DeleteTransaction(ref.xid, ref.finished_ms);
    if (!ref.owned_meta_key.empty()) batch.DeleteMeta(ref.owned_meta_key);
  }
  std::promise<absl::Status> done;
  committer_->Submit(std::move(batch),
                     [&done](const absl::Status& st) { done.set_value(st); });
  s = done.get_future().get();
  if (!s.ok()) {
    spdlog::error("purge failed: {}", s.ToString());
    return 0;
  }
  spdlog::debug("purged {} finished transaction(s)", refs.size());
  return refs.size();
}

}  // namespace baton
