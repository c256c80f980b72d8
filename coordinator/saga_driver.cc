// The transaction manager's saga half: how a saga's commands reach
// participants and its answers and timers reach protocols/saga.h.
//
// A command goes out only after the record saying it was dispatched is on
// disk, so a crash can never forget that a step may have run (it would then
// skip the step's compensation). AdvanceSagaLocked marks what may run in the
// record and puts it in the outbox tagged with the write that carries the
// mark; OnDurable sends what its write made durable.

#include "coordinator/coordinator_metrics.h"
#include "coordinator/transaction_manager.h"
#include "coordinator/xid.h"
#include "fmt/format.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

saga::StepCommand ToStepCommand(uint64_t branch_id, v1::BranchAction action) {
  return {.step = static_cast<uint32_t>(branch_id - 1),
          .kind = action == v1::BRANCH_ACTION_ROLLBACK
                      ? saga::StepKind::kCompensation
                      : saga::StepKind::kAction};
}

v1::BranchAction ToAction(bool compensation) {
  return compensation ? v1::BRANCH_ACTION_ROLLBACK : v1::BRANCH_ACTION_COMMIT;
}

v1::SubmitSagaResponse ToResponse(const v1::Transaction& r) {
  v1::SubmitSagaResponse response;
  response.set_xid(r.xid());
  response.set_status(r.status());
  response.set_reason(r.reason());
  return response;
}

// Whether `existing` (started with the same request_id) is this saga.
bool SameSaga(const v1::Transaction& existing,
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

}  // namespace

void TransactionManager::SubmitSaga(const v1::SubmitSagaRequest& request,
                                    Reply<v1::SubmitSagaResponse> reply) {
  Done answer = [this, reply, wait = request.wait(),
                 wait_ms = request.wait_timeout_ms()](
                    const absl::Status& s, const v1::Transaction& r) {
    bool settled = IsTerminal(r.status()) || NeedsAttention(r.status());
    if (!s.ok() || !wait || settled) return reply(s, ToResponse(r));
    AddWaiter(r.xid(), wait_ms,
              [reply](const absl::Status& s, const v1::Transaction& record) {
                reply(s, ToResponse(record));
              });
  };
  const std::string& key = request.request_id();
  if (key.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    return StartSagaLocked(request, std::move(answer));
  }
  // The key is in memory while its saga lives and in the store after; the
  // store is read without the lock, so the key is reserved meanwhile and no
  // other submit of it can start a saga in between.
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = xid_by_begin_request_.find(key);
    if (it != xid_by_begin_request_.end()) {
      return AnswerExisting(FindLocked(it->second)->record, request,
                            std::move(answer));
    }
    if (!submitting_.insert(key).second) {
      return AnswerWhenDurable(
          absl::UnavailableError(fmt::format(
              "another submit with request_id '{}' is under way; retry "
              "shortly",
              key)),
          v1::Transaction(), std::move(answer));
    }
  }
  std::string xid;
  v1::Transaction stored;
  absl::Status s = store_->GetMeta(kSagaRequestPrefix + key, &xid);
  if (s.ok()) s = store_->Get(xid, &stored);
  std::lock_guard<std::mutex> lock(mu_);
  submitting_.erase(key);
  if (!s.ok() && !absl::IsNotFound(s)) {
    // Not knowing whether the key started a saga, starting one could run
    // its steps twice.
    return AnswerWhenDurable(s, v1::Transaction(), std::move(answer));
  }
  if (s.ok() && IsTerminal(stored.status())) {
    return AnswerExisting(stored, request, std::move(answer));
  }
  if (s.ok()) {
    // Unfinished on disk and not in memory: not loaded yet after a restart.
    return AnswerWhenDurable(
        absl::UnavailableError(fmt::format(
            "saga {} of request_id '{}' is still being loaded after a "
            "restart; retry shortly",
            xid, key)),
        v1::Transaction(), std::move(answer));
  }
  // A Begin may have taken the key meanwhile.
  auto it = xid_by_begin_request_.find(key);
  if (it != xid_by_begin_request_.end()) {
    return AnswerExisting(FindLocked(it->second)->record, request,
                          std::move(answer));
  }
  StartSagaLocked(request, std::move(answer));
}

void TransactionManager::AnswerExisting(const v1::Transaction& existing,
                                        const v1::SubmitSagaRequest& request,
                                        Done done) {
  AnswerWhenDurable(SameSaga(existing, request)
                        ? absl::OkStatus()
                        : KeyTaken(request.request_id(), existing),
                    existing, std::move(done));
}

void TransactionManager::StartSagaLocked(const v1::SubmitSagaRequest& request,
                                         Done done) {
  auto t = std::make_unique<LiveTransaction>();
  v1::Transaction& r = t->record;
  int64_t now = timeline_->Now();
  uint32_t timeout_ms = request.timeout_ms() == 0 ? options_.default_timeout_ms
                                                  : request.timeout_ms();
  r.set_xid(FormatXid({options_.node_id, epoch_, ++next_sequence_}));
  r.set_name(request.name());
  r.set_protocol(v1::PROTOCOL_SAGA);
  r.set_status(v1::GLOBAL_STATUS_BEGUN);
  r.set_begun_unix_ms(now);
  r.set_deadline_unix_ms(now + timeout_ms);
  r.set_timeout_ms(timeout_ms);
  r.set_request_id(request.request_id());
  if (absl::Status s = saga::Start(&r, request.definition(), now); !s.ok()) {
    return done(s, r);
  }
  if (!r.request_id().empty()) xid_by_begin_request_[r.request_id()] = r.xid();
  Metrics().begun.With({ProtocolLabel(r.protocol())})->Add();
  spdlog::debug("xid={} saga '{}' submitted with {} step(s)", r.xid(), r.name(),
                r.saga().definition().steps_size());
  LiveTransaction* raw = t.get();
  live_.emplace(r.xid(), std::move(t));
  AdvanceSagaLocked(raw);
  PersistLocked(raw, std::move(done));
}

// Marks dispatched whatever may run now and whose resource some participant
// serves (a step waiting for its participant does not spend attempts), and
// queues it for sending once the next write is durable. True if it marked
// any; the caller then persists.
bool TransactionManager::AdvanceSagaLocked(LiveTransaction* t) {
  if (t->resume_pending) return false;
  int64_t now = timeline_->Now();
  bool marked = false;
  for (const saga::StepCommand& c : saga::NextCommands(t->record, now)) {
    if (!sink_->Serves(saga::CallFor(t->record, c).resource())) continue;
    if (!saga::MarkDispatched(&t->record, c, now).ok()) continue;
    QueueSagaCommandLocked(t, t->writes_queued + 1, c.step,
                           c.kind == saga::StepKind::kCompensation);
    marked = true;
  }
  return marked;
}

// One entry per step: a newer command for it replaces an unsent older one.
void TransactionManager::QueueSagaCommandLocked(LiveTransaction* t,
                                                uint64_t write, uint32_t step,
                                                bool compensation) {
  std::erase_if(t->saga_outbox,
                [step](const SagaOutboxEntry& e) { return e.step == step; });
  t->saga_outbox.push_back({write, step, compensation});
}

// Sends every queued command whose dispatch mark is on disk. One that no
// participant can take now stays queued for the next attach; it keeps its
// attempt (the step's timeout still bounds the wait).
void TransactionManager::SendSagaOutboxLocked(LiveTransaction* t,
                                              uint64_t durable_write) {
  t->writes_durable = std::max(t->writes_durable, durable_write);
  std::vector<SagaOutboxEntry> kept;
  for (const SagaOutboxEntry& e : t->saga_outbox) {
    const v1::Transaction& r = t->record;
    const v1::StepProgress& progress = r.saga().steps(e.step);
    v1::StepStatus in_flight =
        e.compensation ? v1::STEP_STATUS_COMPENSATING : v1::STEP_STATUS_RUNNING;
    if (progress.status() != in_flight) continue;  // Moved on meanwhile.
    if (e.write > t->writes_durable) {
      kept.push_back(e);
      continue;
    }
    saga::StepCommand step{.step = e.step,
                           .kind = e.compensation
                                       ? saga::StepKind::kCompensation
                                       : saga::StepKind::kAction};
    const v1::SagaCall& call = saga::CallFor(r, step);
    v1::BranchCommand command;
    command.set_command_id(next_command_id_++);
    command.set_xid(r.xid());
    command.set_branch_id(e.step + 1);
    command.set_resource(call.resource());
    command.set_type(v1::BRANCH_TYPE_SAGA);
    command.set_action(ToAction(e.compensation));
    command.set_application_data(call.payload());
    command.set_attempt(e.compensation ? progress.compensation_attempts()
                                       : progress.attempts());
    if (!sink_->Send(command, "")) {
      kept.push_back(e);
      continue;
    }
    Metrics()
        .phase_two_attempts
        .With({call.resource(), e.compensation ? "compensation" : "action"})
        ->Add();
    t->deliveries[e.step + 1].command_id = command.command_id();
  }
  t->saga_outbox.swap(kept);
}

void TransactionManager::OnSagaResultLocked(LiveTransaction* t,
                                            const v1::BranchResult& result) {
  Delivery& d = t->deliveries[result.branch_id()];
  bool current = d.command_id == result.command_id();
  // A stale "done" is still the truth about the step; a stale failure is not.
  if (!current && result.outcome() != v1::COMMAND_OUTCOME_DONE) return;
  if (current) d.command_id = 0;
  saga::StepCommand step = ToStepCommand(result.branch_id(), result.action());
  if (step.step >= static_cast<uint32_t>(t->record.saga().steps_size())) return;
  absl::Status s = saga::ApplyResult(&t->record, step, result.outcome(),
                                     result.message(), timeline_->Now());
  if (!s.ok()) {
    spdlog::debug("xid={} ignoring saga result: {}", result.xid(),
                  s.ToString());
    return;
  }
  if (result.outcome() != v1::COMMAND_OUTCOME_DONE) {
    const v1::SagaCall& call = saga::CallFor(t->record, step);
    Metrics()
        .phase_two_failures
        .With({call.resource(), step.kind == saga::StepKind::kAction
                                    ? "action"
                                    : "compensation"})
        ->Add();
    log_summary_.Log(
        spdlog::level::warn, fmt::format("failures at '{}'", call.resource()),
        fmt::format(
            "xid={} step '{}' {} answered {}: {}", result.xid(),
            t->record.saga().definition().steps(step.step).name(),
            step.kind == saga::StepKind::kAction ? "action" : "compensation",
            v1::CommandOutcome_Name(result.outcome()), result.message()));
  }
  AdvanceSagaLocked(t);
  PersistLocked(t, nullptr);
}

// The command's session ended unanswered: the same attempt goes again,
// wherever the resource is served (the participant's barrier makes a repeat
// harmless).
void TransactionManager::OnSagaCommandLostLocked(LiveTransaction* t,
                                                 uint64_t branch_id,
                                                 uint64_t command_id) {
  Delivery& d = t->deliveries[branch_id];
  if (d.command_id != command_id) return;
  d.command_id = 0;
  uint32_t step = static_cast<uint32_t>(branch_id - 1);
  bool compensating = t->record.saga().steps(static_cast<int>(step)).status() ==
                      v1::STEP_STATUS_COMPENSATING;
  QueueSagaCommandLocked(t, /*write=*/0, step, compensating);
  SendSagaOutboxLocked(t, t->writes_durable);
}

void TransactionManager::RunSagaTimersLocked(LiveTransaction* t,
                                             int64_t now_ms) {
  v1::Transaction& r = t->record;
  bool changed = false;
  if (saga::ExpireIfPastDeadline(&r, now_ms)) {
    log_summary_.Log(
        spdlog::level::warn, "timed out",
        fmt::format("xid={} saga timed out; compensating", r.xid()));
    changed = true;
  }
  changed |= saga::ExpireTimedOutSteps(&r, now_ms);
  if (saga::MarkStuckIfRetryWindowPassed(&r, now_ms,
                                         options_.retry_window_ms)) {
    log_summary_.Log(
        spdlog::level::err, "needs attention",
        fmt::format("xid={} needs attention: {}", r.xid(), r.reason()));
    changed = true;
  }
  changed |= AdvanceSagaLocked(t);
  if (changed) PersistLocked(t, nullptr);
}

// Commands in flight when the coordinator stopped went with its sessions.
// Their dispatch is on disk, so the same attempts go again (to the
// participants as they reattach); a restart costs a step no attempt.
void TransactionManager::ResumeSagaLocked(LiveTransaction* t) {
  const v1::Transaction& r = t->record;
  for (int i = 0; i < r.saga().steps_size(); ++i) {
    v1::StepStatus status = r.saga().steps(i).status();
    if (status == v1::STEP_STATUS_RUNNING ||
        status == v1::STEP_STATUS_COMPENSATING) {
      QueueSagaCommandLocked(t, /*write=*/0, static_cast<uint32_t>(i),
                             status == v1::STEP_STATUS_COMPENSATING);
    }
  }
  SendSagaOutboxLocked(t, t->writes_durable);
  if (AdvanceSagaLocked(t)) PersistLocked(t, nullptr);
}

}  // namespace baton
