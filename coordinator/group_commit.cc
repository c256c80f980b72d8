#include "coordinator/group_commit.h"

#include <chrono>

#include "common/failpoint.h"
#include "coordinator/coordinator_metrics.h"

namespace baton {

GroupCommitter::GroupCommitter(TransactionStore* store)
    : store_(store), thread_([this] { Run(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void GroupCommitter::Submit(StoreBatch batch, Callback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({std::move(batch), std::move(done)});
  }
  wake_.notify_one();
}

uint64_t GroupCommitter::groups() const {
  std::lock_guard<std::mutex> lock(mu_);
  return groups_;
}

void GroupCommitter::Run() {
  std::vector<Pending> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // Stopping with nothing left.
      group.swap(queue_);
    }
    CommitGroup(&group);
    group.clear();
  }
}

void GroupCommitter::CommitGroup(std::vector<Pending>* group) {
  std::vector<const StoreBatch*> batches;
  for (const Pending& p : *group) {
    if (!p.batch.empty()) batches.push_back(&p.batch);
  }
  absl::Status status;
  if (!batches.empty()) {
    status = failpoint::Hit("group_commit_before_sync");
    auto start = std::chrono::steady_clock::now();
    if (status.ok()) status = store_->Apply(batches);
    static metrics::Histogram* const sync_seconds =
        Metrics().store_sync_seconds.With({});
    static metrics::Histogram* const group_batches =
        Metrics().store_group_batches.With({});
    sync_seconds->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    group_batches->Observe(static_cast<double>(batches.size()));
    if (status.ok()) status = failpoint::Hit("group_commit_after_sync");
    std::lock_guard<std::mutex> lock(mu_);
    ++groups_;
  }
  for (Pending& p : *group) p.done(status);
}

}  // namespace baton
