#include "coordinator/group_commit.h"

#include <pthread.h>

#include <chrono>

#include "common/failpoint.h"
#include "coordinator/coordinator_metrics.h"

namespace baton {

GroupCommitter::GroupCommitter(TransactionStore* store,
                               FailureObserver on_failure)
    : store_(store),
      on_failure_(std::move(on_failure)),
      committer_([this] { RunCommitter(); }),
      finisher_([this] { RunFinisher(); }) {}

GroupCommitter::~GroupCommitter() { Stop(); }

void GroupCommitter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_committer_.Signal();
  committer_.join();
  finisher_.join();
}

void GroupCommitter::Submit(StoreBatch batch, Callback done) {
  {
    absl::MutexLock lock(&mu_);
    // Answering here could re-enter a caller that holds its lock; the
    // process is on its way out, so nobody waits for this.
    if (committer_done_) return;
    queue_.push_back({std::move(batch), std::move(done)});
  }
  wake_committer_.Signal();
}

uint64_t GroupCommitter::groups() const {
  absl::MutexLock lock(&mu_);
  return groups_;
}

absl::Status GroupCommitter::failure() const {
  absl::MutexLock lock(&mu_);
  return failed_;
}

std::chrono::milliseconds GroupCommitter::writing_for() const {
  const int64_t since = writing_since_ns_.load(std::memory_order_relaxed);
  if (since == 0) return std::chrono::milliseconds(0);
  const int64_t now =
      std::chrono::steady_clock::now().time_since_epoch().count();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::nanoseconds(now - since));
}

void GroupCommitter::Revive() {
  absl::MutexLock lock(&mu_);
  failed_ = absl::OkStatus();
}

void GroupCommitter::RunCommitter() {
  pthread_setname_np(pthread_self(), "batond-commit");  // For perf and top.
  for (;;) {
    std::vector<Pending> group;
    {
      absl::MutexLock lock(&mu_);
      // Stopping also waits for the finisher: its callbacks may submit more.
      while (queue_.empty() &&
             !(stopping_ && written_.empty() && !finishing_)) {
        wake_committer_.Wait(&mu_);
      }
      if (queue_.empty()) {
        committer_done_ = true;
        wake_finisher_.Signal();
        return;
      }
      group.swap(queue_);
    }
    std::vector<absl::Status> refused;
    absl::Status status = Write(group, &refused);
    {
      absl::MutexLock lock(&mu_);
      written_.push_back(
          {std::move(group), std::move(status), std::move(refused)});
    }
    wake_finisher_.Signal();
  }
}

void GroupCommitter::RunFinisher() {
  pthread_setname_np(pthread_self(), "batond-finish");
  for (;;) {
    std::deque<Written> ready;
    {
      absl::MutexLock lock(&mu_);
      while (!committer_done_ && written_.empty()) wake_finisher_.Wait(&mu_);
      if (written_.empty()) return;  // The committer is done: nothing comes.
      ready.swap(written_);
      finishing_ = true;
    }
    for (Written& w : ready) {
      for (size_t i = 0; i < w.group.size(); ++i) {
        const bool refused = i < w.refused.size() && !w.refused[i].ok();
        w.group[i].done(refused ? w.refused[i] : w.status);
      }
    }
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      finishing_ = false;
      stopping = stopping_;
    }
    // Only a stopping committer waits for this; waking it always would cost
    // a context switch per group.
    if (stopping) wake_committer_.Signal();
  }
}

absl::Status GroupCommitter::Write(const std::vector<Pending>& group,
                                   std::vector<absl::Status>* refused) {
  {
    absl::MutexLock lock(&mu_);
    if (!failed_.ok()) return failed_;
  }
  std::vector<const StoreBatch*> batches;
  std::vector<size_t> positions;  // Of each batch in `group`.
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i].batch.empty()) continue;
    batches.push_back(&group[i].batch);
    positions.push_back(i);
  }
  if (batches.empty()) return absl::OkStatus();
  absl::Status status = failpoint::Hit("group_commit_before_sync");
  auto start = std::chrono::steady_clock::now();
  std::vector<absl::Status> batch_refused;
  writing_since_ns_.store(start.time_since_epoch().count() | 1,
                          std::memory_order_relaxed);
  if (status.ok()) status = store_->ApplyFenced(batches, &batch_refused);
  writing_since_ns_.store(0, std::memory_order_relaxed);
  for (size_t i = 0; i < batch_refused.size(); ++i) {
    if (batch_refused[i].ok()) continue;
    refused->resize(group.size());
    (*refused)[positions[i]] = batch_refused[i];
  }
  static metrics::Histogram* const sync_seconds =
      Metrics().store_sync_seconds.With({});
  static metrics::Histogram* const group_batches =
      Metrics().store_group_batches.With({});
  sync_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count());
  group_batches->Observe(static_cast<double>(batches.size()));
  if (!status.ok()) {
    Metrics().store_write_failures.With({})->Add();
    {
      absl::MutexLock lock(&mu_);
      failed_ = absl::Status(
          status.code(),
          "the coordinator's store failed earlier, so it acknowledges nothing "
          "until it is restarted with the cause fixed: " +
              std::string(status.message()));
      ++groups_;
    }
    if (on_failure_) on_failure_(status);
    return status;
  }
  // The write is durable; only the answers fail, so nothing is sticky.
  status = failpoint::Hit("group_commit_after_sync");
  absl::MutexLock lock(&mu_);
  ++groups_;
  return status;
}

}  // namespace baton
