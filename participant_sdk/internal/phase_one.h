#ifndef BATON_PARTICIPANT_SDK_INTERNAL_PHASE_ONE_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_PHASE_ONE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "baton/client.h"
#include "baton/participant.h"
#include "common/steady_cond_var.h"
#include "participant_sdk/internal/worker_pool.h"

namespace baton::internal {

// Striped locks by branch, so that a branch's handlers (Prepare and phase
// two) run one at a time. Thread-safe.
class BranchLocks {
 public:
  absl::Mutex& For(const std::string& xid, uint64_t branch_id) {
    size_t h = std::hash<std::string>()(xid) ^ (branch_id * 0x9e3779b97f4a7c15);
    return locks_[h % locks_.size()];
  }

 private:
  std::array<absl::Mutex, 64> locks_;
};

// Phase one of a branch in this process, for Participant::Enlist and Try
// and their asynchronous forms: registers the branch, runs the resource's
// Prepare (for TCC the try, behind its barrier), and reports the outcome.
//
// Thread-safe. `client`, `locks` and `workers` must outlive it. The
// destructor waits for the asynchronous runs still going, each of which
// ends within the client's deadlines.
class PhaseOne {
 public:
  struct Branch {
    std::string xid;
    std::string resource_name;
    XaResource* resource;
    v1::BranchType type;
    std::string application_data;
    std::string instance_id;
  };

  PhaseOne(TransactionClient* client, BranchLocks* locks, WorkerPool* workers)
      : client_(client), locks_(locks), workers_(workers) {}
  ~PhaseOne();

  // The branch id if prepared; Prepare's error (after reporting the branch
  // failed), or the coordinator's error if it refused the branch. Prepare
  // runs on the caller's thread.
  absl::StatusOr<uint64_t> Run(const Branch& branch);

  // The same outcome, given to `done` (see Participant::PhaseOneDone): no
  // thread waits for the coordinator, and Prepare runs on a worker.
  void RunAsync(Branch branch, Participant::PhaseOneDone done);

 private:
  static v1::RegisterBranchRequest RegisterRequest(const Branch& branch);
  absl::Status Prepare(const Branch& branch, uint64_t branch_id);
  static v1::PhaseOneOutcome Reported(const absl::Status& prepared);
  static std::string Reason(const absl::Status& prepared);
  // A repeated report is OK whatever happened since, so these two mean the
  // transaction was rolled back without this branch's report, or is gone:
  // what Prepare holds is released at once rather than left for a rollback
  // command that may never come. Any other error leaves the branch prepared
  // and in doubt, which the coordinator resolves (a command, or its answer
  // to the in-doubt report at the next attach).
  static bool Orphaned(const absl::Status& prepared,
                       const absl::Status& reported);
  void Release(const Branch& branch, uint64_t branch_id);
  static absl::StatusOr<uint64_t> Result(uint64_t branch_id,
                                         const absl::Status& prepared,
                                         const absl::Status& reported);
  // Ends an asynchronous run.
  void Finish(const Participant::PhaseOneDone& done,
              absl::StatusOr<uint64_t> outcome);

  TransactionClient* const client_;
  BranchLocks* const locks_;
  WorkerPool* const workers_;
  absl::Mutex mu_;
  SteadyCondVar idle_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // Asynchronous runs.
};

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_PHASE_ONE_H_
