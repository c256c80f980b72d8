#include "recovery/schedule.h"

namespace baton {

ShardSchedule::ShardSchedule(size_t resume_per_run)
    : resume_per_run_(resume_per_run) {}

void ShardSchedule::WakeAt(RecordKey record, int64_t when_ms) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = when_.try_emplace(record, when_ms);
  if (!inserted) {
    if (it->second <= when_ms) return;
    by_time_.erase({it->second, record});
    it->second = when_ms;
  }
  by_time_.emplace(when_ms, record);
}

void ShardSchedule::Forget(RecordKey record) {
  absl::MutexLock lock(&mu_);
  auto it = when_.find(record);
  if (it == when_.end()) return;
  by_time_.erase({it->second, record});
  when_.erase(it);
}

void ShardSchedule::QueueResume(const std::string& xid) {
  absl::MutexLock lock(&mu_);
  to_resume_.push_back(xid);
}

std::vector<RecordKey> ShardSchedule::TakeDue(int64_t now_ms) {
  std::vector<RecordKey> due;
  absl::MutexLock lock(&mu_);
  while (!by_time_.empty() && by_time_.begin()->first <= now_ms) {
    due.push_back(by_time_.begin()->second);
    by_time_.erase(by_time_.begin());
    when_.erase(due.back());
  }
  return due;
}

void ShardSchedule::RunDue(TransactionTable* table, int64_t now_ms) {
  std::vector<std::string> resume;
  {
    absl::MutexLock lock(&mu_);
    while (resume.size() < resume_per_run_ && !to_resume_.empty()) {
      resume.push_back(std::move(to_resume_.front()));
      to_resume_.pop_front();
    }
  }
  for (const std::string& xid : resume) table->Resume(xid);
  for (RecordKey record : TakeDue(now_ms)) table->RunDue(record, now_ms);
}

size_t ShardSchedule::pending_wakeups() const {
  absl::MutexLock lock(&mu_);
  return by_time_.size();
}

size_t ShardSchedule::pending_resumes() const {
  absl::MutexLock lock(&mu_);
  return to_resume_.size();
}

}  // namespace baton
