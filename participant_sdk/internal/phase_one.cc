#include "participant_sdk/internal/phase_one.h"

#include <exception>
#include <memory>

#include "common/failpoint.h"
#include "common/limits.h"
#include "fmt/format.h"
#include "participant_sdk/internal/rpc.h"

namespace baton::internal {

PhaseOne::~PhaseOne() {
  absl::MutexLock lock(&mu_);
  while (running_ > 0) idle_.Wait(&mu_);
}

absl::StatusOr<uint64_t> PhaseOne::Run(const Branch& branch) {
  absl::StatusOr<uint64_t> branch_id =
      client_->RegisterBranch(RegisterRequest(branch));
  if (!branch_id.ok()) return branch_id.status();
  absl::Status prepared = Prepare(branch, *branch_id);
  absl::Status reported = client_->ReportBranch(
      branch.xid, *branch_id, Reported(prepared), Reason(prepared));
  if (Orphaned(prepared, reported)) Release(branch, *branch_id);
  return Result(*branch_id, prepared, reported);
}

void PhaseOne::RunAsync(Branch branch, Participant::PhaseOneDone done) {
  {
    absl::MutexLock lock(&mu_);
    ++running_;
  }
  v1::RegisterBranchRequest request = RegisterRequest(branch);
  auto shared = std::make_shared<const Branch>(std::move(branch));
  client_->RegisterBranchAsync(request, [this, shared, done = std::move(done)](
                                            absl::StatusOr<uint64_t> id) {
    if (!id.ok()) return Finish(done, id.status());
    // Prepare may block; the answer came on a thread that must not.
    workers_->Post([this, shared, done, branch_id = *id] {
      absl::Status prepared = Prepare(*shared, branch_id);
      client_->ReportBranchAsync(
          shared->xid, branch_id, Reported(prepared), Reason(prepared),
          [this, shared, done, branch_id, prepared](absl::Status reported) {
            if (!Orphaned(prepared, reported)) {
              return Finish(done, Result(branch_id, prepared, reported));
            }
            workers_->Post([this, shared, done, branch_id, prepared, reported] {
              Release(*shared, branch_id);
              Finish(done, Result(branch_id, prepared, reported));
            });
          });
    });
  });
}

v1::RegisterBranchRequest PhaseOne::RegisterRequest(const Branch& branch) {
  v1::RegisterBranchRequest request;
  request.set_xid(branch.xid);
  request.set_resource(branch.resource_name);
  request.set_type(branch.type);
  request.set_application_data(branch.application_data);
  request.set_request_id(NewRequestId());
  request.set_instance_id(branch.instance_id);
  return request;
}

absl::Status PhaseOne::Prepare(const Branch& branch, uint64_t branch_id) {
  BranchContext context{branch.xid, branch_id, branch.resource_name,
                        branch.application_data, 0};
  if (branch.type == v1::BRANCH_TYPE_TCC) {
    // Before the branch lock, so a cancel can overtake a slow try.
    failpoint::Hit("participant_before_try").IgnoreError();
  }
  absl::Status prepared;
  {
    absl::MutexLock lock(&locks_->For(branch.xid, branch_id));
    try {
      prepared = branch.resource->Prepare(context);
    } catch (const std::exception& e) {
      prepared =
          absl::InternalError(fmt::format("Prepare threw: {}", e.what()));
    }
  }
  failpoint::Hit("participant_after_prepare").IgnoreError();
  return prepared;
}

v1::PhaseOneOutcome PhaseOne::Reported(const absl::Status& prepared) {
  return prepared.ok() ? v1::PHASE_ONE_OUTCOME_PREPARED
                       : v1::PHASE_ONE_OUTCOME_FAILED;
}

std::string PhaseOne::Reason(const absl::Status& prepared) {
  // The coordinator keeps no more of the reason than this, and refuses a
  // longer one.
  return limits::TruncatedReason(
      std::string_view(prepared.message().data(), prepared.message().size()));
}

bool PhaseOne::Orphaned(const absl::Status& prepared,
                        const absl::Status& reported) {
  return prepared.ok() &&
         (absl::IsFailedPrecondition(reported) || absl::IsNotFound(reported));
}

void PhaseOne::Release(const Branch& branch, uint64_t branch_id) {
  BranchContext context{branch.xid, branch_id, branch.resource_name,
                        branch.application_data, 0};
  absl::MutexLock lock(&locks_->For(branch.xid, branch_id));
  branch.resource->Rollback(context);
}

absl::StatusOr<uint64_t> PhaseOne::Result(uint64_t branch_id,
                                          const absl::Status& prepared,
                                          const absl::Status& reported) {
  if (!prepared.ok()) return prepared;
  if (!reported.ok()) return reported;
  return branch_id;
}

void PhaseOne::Finish(const Participant::PhaseOneDone& done,
                      absl::StatusOr<uint64_t> outcome) {
  done(std::move(outcome));
  absl::MutexLock lock(&mu_);
  if (--running_ == 0) idle_.SignalAll();
}

}  // namespace baton::internal
