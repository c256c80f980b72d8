#include "coordinator/saga_driver.h"

#include "coordinator/coordinator_metrics.h"
#include "fmt/format.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

// A step's branch id is its index + 1; its compensation travels as a
// rollback.
saga::StepCommand ToStepCommand(uint64_t branch_id, v1::BranchAction action) {
  return {.step = static_cast<uint32_t>(branch_id - 1),
          .kind = action == v1::BRANCH_ACTION_ROLLBACK
                      ? saga::StepKind::kCompensation
                      : saga::StepKind::kAction};
}

v1::BranchAction ToAction(saga::StepKind kind) {
  return kind == saga::StepKind::kCompensation ? v1::BRANCH_ACTION_ROLLBACK
                                               : v1::BRANCH_ACTION_COMMIT;
}

const char* KindLabel(saga::StepKind kind) {
  return kind == saga::StepKind::kCompensation ? "compensation" : "action";
}

}  // namespace

SagaDriver::SagaDriver(const Options& options, const CommandSink* sink,
                       LogSummary* log_summary)
    : options_(options), sink_(sink), log_summary_(log_summary) {}

bool SagaDriver::SameSaga(const v1::Transaction& existing,
                          const v1::SubmitSagaRequest& request) {
  const auto& steps = existing.saga().definition().steps();
  const auto& asked = request.definition().steps();
  if (existing.protocol() != v1::PROTOCOL_SAGA ||
      existing.name() != request.name() || steps.size() != asked.size()) {
    return false;
  }
  for (int i = 0; i < steps.size(); ++i) {
    if (steps[i].name() != asked[i].name()) return false;
  }
  return true;
}

int64_t SagaDriver::NextActionTime(const v1::Transaction& record) const {
  return saga::NextActionTime(record, options_.retry_window_ms);
}

// A saga's key outlives its stay in memory, until the purge.
std::string SagaDriver::DurableKey(const v1::Transaction& record) const {
  if (record.request_id().empty()) return "";
  return kSagaRequestPrefix + record.request_id();
}

// Marks dispatched whatever may run now and whose resource some participant
// serves (a step waiting for its participant does not spend attempts).
void SagaDriver::Advance(LiveTransaction* t, int64_t now, Effects* fx) {
  if (t->resume_pending) return;
  for (const saga::StepCommand& c : saga::NextCommands(t->record, now)) {
    if (!sink_->Serves(saga::CallFor(t->record, c).resource())) continue;
    if (!saga::MarkDispatched(&t->record, c, now).ok()) continue;
    fx->Send(c.step + 1, ToAction(c.kind));
    fx->WriteHeader();
  }
}

absl::Status SagaDriver::Decide(v1::Transaction* record, bool commit,
                                const std::string& reason, int64_t now) {
  if (commit) {
    return absl::FailedPreconditionError(fmt::format(
        "transaction {} is a saga: it commits by itself once every step "
        "succeeded",
        record->xid()));
  }
  return saga::RequestCompensation(record, reason, now);
}

absl::StatusOr<uint64_t> SagaDriver::RegisterBranch(v1::Transaction* record,
                                                    two_phase::NewBranch,
                                                    int64_t) {
  return absl::FailedPreconditionError(fmt::format(
      "transaction {} is a saga: its steps came with it and it takes no "
      "branches",
      record->xid()));
}

absl::Status SagaDriver::ReportBranch(v1::Transaction* record,
                                      const v1::ReportBranchRequest& request,
                                      int64_t) {
  return absl::FailedPreconditionError(fmt::format(
      "transaction {} is a saga: it has no branch {} to report; its steps "
      "answer the commands they get",
      record->xid(), request.branch_id()));
}

void SagaDriver::OnDurable(LiveTransaction*, v1::GlobalStatus, int64_t,
                           Effects*) {}

ProtocolDriver::Release SagaDriver::Prepare(const LiveTransaction& t,
                                            const Outgoing& o, int64_t) {
  Release release;
  const v1::Transaction& r = t.record;
  saga::StepCommand step = ToStepCommand(o.branch_id, o.action);
  if (step.step >= static_cast<uint32_t>(r.saga().steps_size())) {
    return release;
  }
  const v1::StepProgress& progress =
      r.saga().steps(static_cast<int>(step.step));
  v1::StepStatus in_flight = step.kind == saga::StepKind::kCompensation
                                 ? v1::STEP_STATUS_COMPENSATING
                                 : v1::STEP_STATUS_RUNNING;
  if (progress.status() != in_flight) return release;  // Moved on meanwhile.
  const v1::SagaCall& call = saga::CallFor(r, step);
  release.kind = Release::kSend;
  v1::BranchCommand& command = release.command;
  command.set_xid(r.xid());
  command.set_branch_id(o.branch_id);
  command.set_resource(call.resource());
  command.set_type(v1::BRANCH_TYPE_SAGA);
  command.set_action(ToAction(step.kind));
  command.set_application_data(call.payload());
  command.set_attempt(step.kind == saga::StepKind::kCompensation
                          ? progress.compensation_attempts()
                          : progress.attempts());
  release.attempt_label = KindLabel(step.kind);
  return release;
}

void SagaDriver::OnResult(LiveTransaction* t, const v1::BranchResult& result,
                          int64_t now, Effects* fx) {
  saga::StepCommand step = ToStepCommand(result.branch_id(), result.action());
  if (step.step >= static_cast<uint32_t>(t->record.saga().steps_size())) return;
  absl::Status s = saga::ApplyResult(&t->record, step, result.outcome(),
                                     result.message(), now);
  if (!s.ok()) {
    spdlog::debug("xid={} ignoring saga result: {}", result.xid(),
                  s.ToString());
    return;
  }
  if (result.outcome() != v1::COMMAND_OUTCOME_DONE) {
    const v1::SagaCall& call = saga::CallFor(t->record, step);
    Metrics()
        .phase_two_failures.With({call.resource(), KindLabel(step.kind)})
        ->Add();
    log_summary_->Log(
        spdlog::level::warn, fmt::format("failures at '{}'", call.resource()),
        fmt::format("xid={} step '{}' {} answered {}: {}", result.xid(),
                    t->record.saga().definition().steps(step.step).name(),
                    KindLabel(step.kind),
                    v1::CommandOutcome_Name(result.outcome()),
                    result.message()));
  }
  fx->WriteHeader();
}

// The same attempt goes again, wherever the resource is served (the
// participant's barrier makes a repeat harmless).
void SagaDriver::OnLost(LiveTransaction* t, uint64_t branch_id, int64_t,
                        Effects* fx) {
  int step = static_cast<int>(branch_id - 1);
  if (step < 0 || step >= t->record.saga().steps_size()) return;
  bool compensating =
      t->record.saga().steps(step).status() == v1::STEP_STATUS_COMPENSATING;
  fx->Send(branch_id, compensating ? v1::BRANCH_ACTION_ROLLBACK
                                   : v1::BRANCH_ACTION_COMMIT);
}

void SagaDriver::OnAttached(LiveTransaction* t, const std::set<std::string>&,
                            int64_t now, Effects* fx) {
  Advance(t, now, fx);
}

void SagaDriver::OnInDoubt(LiveTransaction*, uint64_t, int64_t, Effects*) {}

// A saga's caller only waits for it: it runs on.
void SagaDriver::Adopt(LiveTransaction*, int64_t, Effects*) {}

// Commands in flight when the coordinator stopped went with its sessions.
// Their dispatch is on disk, so the same attempts go again (to the
// participants as they reattach); a restart costs a step no attempt.
void SagaDriver::Resume(LiveTransaction* t, int64_t now, Effects* fx) {
  const v1::Transaction& r = t->record;
  for (int i = 0; i < r.saga().steps_size(); ++i) {
    v1::StepStatus status = r.saga().steps(i).status();
    if (status == v1::STEP_STATUS_RUNNING) {
      fx->Send(i + 1, v1::BRANCH_ACTION_COMMIT);
    } else if (status == v1::STEP_STATUS_COMPENSATING) {
      fx->Send(i + 1, v1::BRANCH_ACTION_ROLLBACK);
    }
  }
  Advance(t, now, fx);
}

void SagaDriver::OnDue(LiveTransaction* t, int64_t now, Effects* fx) {
  v1::Transaction& r = t->record;
  if (saga::ExpireIfPastDeadline(&r, now)) {
    log_summary_->Log(
        spdlog::level::warn, "timed out",
        fmt::format("xid={} saga timed out; compensating", r.xid()));
    fx->WriteHeader();
  }
  if (saga::ExpireTimedOutSteps(&r, now)) fx->WriteHeader();
  if (saga::MarkStuckIfRetryWindowPassed(&r, now, options_.retry_window_ms)) {
    log_summary_->Log(
        spdlog::level::err, "needs attention",
        fmt::format("xid={} needs attention: {}", r.xid(), r.reason()));
    fx->WriteHeader();
  }
  Advance(t, now, fx);
}

void SagaDriver::Kick(LiveTransaction* t, int64_t now, Effects* fx) {
  Advance(t, now, fx);
}

uint64_t SagaDriver::AddBacklog(
    const LiveTransaction& t, int64_t now,
    std::map<std::string, uint64_t>* by_resource) const {
  std::vector<saga::StepCommand> owed = saga::OwedCommands(t.record, now);
  for (const saga::StepCommand& c : owed) {
    ++(*by_resource)[saga::CallFor(t.record, c).resource()];
  }
  return owed.size();
}

}  // namespace baton
