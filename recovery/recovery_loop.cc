#include "recovery/recovery_loop.h"

#include <algorithm>
#include <future>
#include <vector>

#include "spdlog/spdlog.h"

namespace baton {

RecoveryLoop::RecoveryLoop(const RecoveryOptions& options,
                           TransactionStore* store, GroupCommitter* committer,
                           CommandSink* sink)
    : options_(options),
      store_(store),
      committer_(committer),
      in_doubt_(store, sink, &log_summary_) {}

RecoveryLoop::~RecoveryLoop() { Stop(); }

void RecoveryLoop::Stop() {
  {
    absl::MutexLock lock(&wait_mu_);
    stopping_ = true;
  }
  wake_.Signal();
  if (thread_.joinable()) thread_.join();
  purger_.Drain();
  in_doubt_.Drain();
}

ManagerHooks RecoveryLoop::hooks() {
  return {
      .wakeups = [this](uint32_t shard) -> Wakeups* { return schedule(shard); },
      .in_doubt = &in_doubt_};
}

ShardSchedule* RecoveryLoop::schedule(uint32_t shard) {
  absl::MutexLock lock(&schedules_mu_);
  std::unique_ptr<ShardSchedule>& s = schedules_[shard];
  if (s == nullptr)
    s = std::make_unique<ShardSchedule>(options_.resume_per_tick);
  return s.get();
}

void RecoveryLoop::Attach(TransactionManager* manager) {
  manager_ = manager;
  offset_saver_ =
      std::make_unique<TimelineOffsetSaver>(manager->timeline(), committer_);
  next_purge_ms_ = manager->timeline()->Now();
}

absl::Status RecoveryLoop::ResumeUnfinished() {
  size_t count = 0;
  absl::Status adopted;
  absl::Status s = store_->ScanUnfinished([&](const v1::Transaction& txn) {
    std::string xid = txn.xid();
    adopted = manager_->Adopt(txn);
    if (!adopted.ok()) return false;
    schedule(manager_->TableFor(xid)->shard())->QueueResume(xid);
    ++count;
    return true;
  });
  if (s.ok()) s = adopted;
  if (s.ok()) {
    spdlog::info("recovery: resumed {} unfinished transaction(s)", count);
  }
  return s;
}

absl::Status RecoveryLoop::ResumeShard(uint32_t shard, uint64_t epoch) {
  size_t count = 0;
  absl::Status adopted;
  absl::Status s =
      store_->ScanShardUnfinished(shard, [&](const v1::Transaction& txn) {
        std::string xid = txn.xid();
        adopted = manager_->Adopt(txn);
        if (!adopted.ok()) return false;
        schedule(shard)->QueueResume(xid);
        ++count;
        return true;
      });
  if (s.ok()) s = adopted;
  if (!s.ok()) {
    manager_->DropShard(shard);
    return s;
  }
  manager_->ServeShard(shard, epoch);
  spdlog::info("recovery: shard {} resumed {} unfinished transaction(s)", shard,
               count);
  return absl::OkStatus();
}

void RecoveryLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RecoveryLoop::RunDue(int64_t now_ms) {
  for (const auto& table : manager_->tables()) {
    schedule(table->shard())->RunDue(table.get(), now_ms);
  }
  manager_->log_summary()->Flush();
  log_summary_.Flush();
}

void RecoveryLoop::Run() {
  while (!stopping_) {
    int64_t now = manager_->timeline()->Now();
    RunDue(now);
    offset_saver_->SaveIfMoved();
    MaybePurge(now);
    absl::MutexLock lock(&wait_mu_);
    wake_.WaitFor(&wait_mu_, std::chrono::milliseconds(options_.tick_ms),
                  [this] { return stopping_.load(); });
  }
}

void RecoveryLoop::MaybePurge(int64_t now_ms) {
  if (now_ms < next_purge_ms_ || purging_.exchange(true)) return;
  next_purge_ms_ =
      now_ms + std::clamp<int64_t>(options_.finished_retention_ms / 10, 100,
                                   options_.purge_interval_ms);
  purger_.Post([this, cutoff = now_ms - options_.finished_retention_ms] {
    while (PurgeFinishedBefore(cutoff) == options_.purge_batch) {
    }
    purging_ = false;
  });
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
