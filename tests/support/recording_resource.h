#ifndef BATON_TESTS_SUPPORT_RECORDING_RESOURCE_H_
#define BATON_TESTS_SUPPORT_RECORDING_RESOURCE_H_

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/participant.h"

namespace baton {

// An XA resource that prepares everything and records each xid's phase
// two, for tests that ask what a participant was told. While held, commits
// answer Retry, so a decided transaction stays unfinished at its
// coordinator. Thread-safe.
class RecordingResource : public XaResource {
 public:
  enum class Outcome { kNone, kCommitted, kRolledBack };

  absl::Status Prepare(const BranchContext&) override {
    return absl::OkStatus();
  }
  PhaseTwoResult Commit(const BranchContext& branch) override {
    absl::MutexLock lock(&mu_);
    if (hold_commits_) return PhaseTwoResult::Retry("held by the test");
    if (outcomes_[branch.xid] != Outcome::kCommitted) {
      outcomes_[branch.xid] = Outcome::kCommitted;
      ++committed_[branch.xid[0]];
    }
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Rollback(const BranchContext& branch) override {
    absl::MutexLock lock(&mu_);
    outcomes_[branch.xid] = Outcome::kRolledBack;
    return PhaseTwoResult::Done();
  }

  void HoldCommits(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_commits_ = hold;
  }
  Outcome OutcomeOf(const std::string& xid) {
    absl::MutexLock lock(&mu_);
    auto it = outcomes_.find(xid);
    return it == outcomes_.end() ? Outcome::kNone : it->second;
  }
  // Commits applied per shard, keyed by the xid's first character.
  std::map<char, int> committed() {
    absl::MutexLock lock(&mu_);
    return committed_;
  }
  int committed(char shard) { return committed()[shard]; }

 private:
  absl::Mutex mu_;
  bool hold_commits_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
  std::map<char, int> committed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_TESTS_SUPPORT_RECORDING_RESOURCE_H_
