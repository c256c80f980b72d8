#include "coordinator/two_phase_driver.h"

#include "common/failpoint.h"
#include "coordinator/coordinator_metrics.h"
#include "fmt/format.h"
#include "protocols/transitions.h"
#include "protocols/two_phase.h"
#include "spdlog/spdlog.h"

namespace baton {

TwoPhaseDriver::TwoPhaseDriver(const Options& options, const Backoff* backoff,
                               LogSummary* log_summary)
    : options_(options), backoff_(backoff), log_summary_(log_summary) {}

int64_t TwoPhaseDriver::NextActionTime(const v1::Transaction& record) const {
  return two_phase::NextActionTime(record, options_.retry_window_ms);
}

// Begin's keys live only as long as their transaction.
std::string TwoPhaseDriver::DurableKey(const v1::Transaction&) const {
  return "";
}

template <typename Pick>
void TwoPhaseDriver::QueueOwed(LiveTransaction* t, Effects* fx, Pick pick) {
  if (t->record.paused()) return;  // Resume queues what is owed.
  for (const v1::Branch& b : t->record.branches()) {
    v1::BranchAction action;
    if (!two_phase::OwedAction(t->record, b, &action)) continue;
    if (!pick(b) || t->Owes(b.branch_id())) continue;
    fx->Send(b.branch_id(), action);
  }
}

// Commands may be queued before the decision is durable: the outbox holds
// them until the write carrying it is.
void TwoPhaseDriver::Advance(LiveTransaction* t, int64_t now, Effects* fx) {
  if (t->resume_pending || t->record.status() == v1::GLOBAL_STATUS_BEGUN) {
    return;
  }
  QueueOwed(t, fx, [now](const v1::Branch& b) {
    return b.next_retry_unix_ms() <= now;
  });
}

absl::Status TwoPhaseDriver::Decide(v1::Transaction* record, bool commit,
                                    const std::string& reason, int64_t now) {
  if (record->status() == v1::GLOBAL_STATUS_BEGUN) {
    absl::Status fp = failpoint::Hit(commit ? "before_commit_decision"
                                            : "before_rollback_decision");
    if (!fp.ok()) return fp;
  }
  return commit ? two_phase::DecideCommit(record, now)
                : two_phase::DecideRollback(record, reason, now);
}

absl::StatusOr<uint64_t> TwoPhaseDriver::RegisterBranch(
    v1::Transaction* record, two_phase::NewBranch branch, int64_t now) {
  if (branch.type == v1::BRANCH_TYPE_UNSPECIFIED) {
    branch.type = two_phase::BranchTypeFor(record->protocol());
  }
  return two_phase::RegisterBranch(record, branch, now);
}

absl::Status TwoPhaseDriver::ReportBranch(
    v1::Transaction* record, const v1::ReportBranchRequest& request,
    int64_t now) {
  return two_phase::ReportPhaseOne(record, request.branch_id(),
                                   request.outcome(), request.error(), now);
}

void TwoPhaseDriver::OnDurable(LiveTransaction* t, v1::GlobalStatus status,
                               int64_t, Effects*) {
  if (status != v1::GLOBAL_STATUS_BEGUN && !t->decision_durable) {
    failpoint::Hit(IsCommitSide(status) ? "after_commit_decision"
                                        : "after_rollback_decision")
        .IgnoreError();
  }
}

ProtocolDriver::Release TwoPhaseDriver::Prepare(const LiveTransaction& t,
                                                const Outgoing& o, int64_t) {
  Release release;
  const v1::Transaction& r = t.record;
  if (r.paused() || o.branch_id < 1 ||
      o.branch_id > static_cast<uint64_t>(r.branches_size())) {
    return release;
  }
  auto d = t.deliveries.find(o.branch_id);
  if (d != t.deliveries.end() && d->second.command_id != 0) return release;
  const v1::Branch& b = r.branches(static_cast<int>(o.branch_id - 1));
  v1::BranchAction action;
  if (!two_phase::OwedAction(r, b, &action)) return release;
  failpoint::Hit("before_branch_command").IgnoreError();
  release.kind = Release::kSend;
  v1::BranchCommand& command = release.command;
  command.set_xid(r.xid());
  command.set_branch_id(o.branch_id);
  command.set_resource(b.resource());
  command.set_type(b.type());
  command.set_action(action);
  command.set_application_data(b.application_data());
  command.set_attempt(b.attempts() + 1);
  release.instance = b.instance_id();
  release.answer_within_ms = options_.command_timeout_ms;
  release.attempt_label = ActionLabel(action);
  return release;
}

void TwoPhaseDriver::OnResult(LiveTransaction* t,
                              const v1::BranchResult& result, int64_t now,
                              Effects* fx) {
  v1::Branch* b = two_phase::FindBranch(&t->record, result.branch_id());
  if (b == nullptr) return;
  v1::BranchStatus before = b->status();
  uint32_t attempts_before = b->attempts();
  v1::GlobalStatus global_before = t->record.status();
  absl::Status s = two_phase::ApplyCommandResult(
      &t->record, result.branch_id(), result.action(), result.outcome(),
      result.message(), now, backoff_->DelayMs(b->attempts()));
  if (!s.ok()) {
    log_summary_->Log(
        spdlog::level::warn, "stale results",
        fmt::format("xid={} ignoring result: {}", result.xid(), s.ToString()));
    return;
  }
  if (b->status() == before && b->attempts() == attempts_before) return;
  if (result.outcome() != v1::COMMAND_OUTCOME_DONE) {
    Metrics()
        .phase_two_failures.With({b->resource(), ActionLabel(result.action())})
        ->Add();
    log_summary_->Log(
        spdlog::level::warn, fmt::format("failures at '{}'", b->resource()),
        fmt::format("xid={} branch {} ({}) attempt {} failed{}: {}",
                    result.xid(), result.branch_id(), b->resource(),
                    b->attempts(),
                    result.outcome() == v1::COMMAND_OUTCOME_FAILED
                        ? " for good"
                        : fmt::format(", retry in {} ms",
                                      b->next_retry_unix_ms() - now),
                    result.message()));
  }
  // A DONE that leaves the transaction's status as it was rides along with
  // its next write, at the latest the final one: lost in a crash, it only
  // repeats that branch's phase two, which is idempotent. Saves a write per
  // branch but the last.
  if (result.outcome() == v1::COMMAND_OUTCOME_DONE &&
      t->record.status() == global_before) {
    t->unwritten = true;
    t->dirty_branches.push_back(result.branch_id());
    failpoint::Hit("branch_done_unwritten").IgnoreError();
    return;
  }
  fx->WriteBranch(result.branch_id());
}

void TwoPhaseDriver::OnLost(LiveTransaction* t, uint64_t branch_id, int64_t,
                            Effects* fx) {
  QueueOwed(t, fx, [branch_id](const v1::Branch& b) {
    return b.branch_id() == branch_id;
  });
}

// Backoff is skipped: the participant is back now.
void TwoPhaseDriver::OnAttached(LiveTransaction* t,
                                const std::set<std::string>& resources, int64_t,
                                Effects* fx) {
  if (t->resume_pending || !t->decision_durable) return;
  QueueOwed(t, fx, [&resources](const v1::Branch& b) {
    return resources.contains(b.resource());
  });
}

// Open transactions get their command once decided.
void TwoPhaseDriver::OnInDoubt(LiveTransaction* t, uint64_t branch_id,
                               int64_t now, Effects* fx) {
  if (t->resume_pending || !t->decision_durable) return;
  OnLost(t, branch_id, now, fx);
}

// Its caller's view was lost with the coordinator: an open one rolls back.
void TwoPhaseDriver::Adopt(LiveTransaction* t, int64_t now, Effects* fx) {
  if (t->record.status() != v1::GLOBAL_STATUS_BEGUN) return;
  const std::string& xid = t->record.xid();
  log_summary_->Log(
      spdlog::level::warn, "open at restart",
      fmt::format("xid={} was open when the coordinator stopped; rolling back",
                  xid));
  absl::Status s = two_phase::DecideRollback(
      &t->record, "coordinator restarted while it was open", now);
  if (!s.ok()) {
    spdlog::error("xid={} could not be rolled back at restart: {}", xid,
                  s.ToString());
  }
  fx->persist = true;
}

// The rollback Adopt decided may not be durable yet: the outbox holds the
// commands until it is.
void TwoPhaseDriver::Resume(LiveTransaction* t, int64_t now, Effects* fx) {
  Advance(t, now, fx);
}

void TwoPhaseDriver::OnDue(LiveTransaction* t, int64_t now, Effects* fx) {
  const std::string& xid = t->record.xid();
  if (two_phase::ExpireIfPastDeadline(&t->record, now)) {
    log_summary_->Log(spdlog::level::warn, "timed out",
                      fmt::format("xid={} timed out; rolling back", xid));
    fx->WriteHeader();
    return;
  }
  if (!t->decision_durable) return;
  if (two_phase::MarkStuckIfRetryWindowPassed(&t->record, now,
                                              options_.retry_window_ms)) {
    log_summary_->Log(
        spdlog::level::err, "needs attention",
        fmt::format("xid={} needs attention: {}", xid, t->record.reason()));
    fx->persist = true;
  }
  ExpireCommands(t, now, fx);
  QueueOwed(t, fx, [now](const v1::Branch& b) {
    return b.next_retry_unix_ms() != 0 && b.next_retry_unix_ms() <= now;
  });
}

// A command with no answer in time counts as a failed attempt; the retry
// goes wherever the resource is served then.
void TwoPhaseDriver::ExpireCommands(LiveTransaction* t, int64_t now,
                                    Effects* fx) {
  for (auto& [branch_id, d] : t->deliveries) {
    if (d.command_id == 0 || d.overdue_ms == 0 || d.overdue_ms > now) continue;
    d.command_id = 0;
    v1::Branch* b = two_phase::FindBranch(&t->record, branch_id);
    v1::BranchAction action;
    if (b == nullptr || !two_phase::OwedAction(t->record, *b, &action)) {
      continue;
    }
    std::string why =
        fmt::format("no answer within {} ms", options_.command_timeout_ms);
    log_summary_->Log(spdlog::level::warn,
                      fmt::format("no answers from '{}'", b->resource()),
                      fmt::format("xid={} branch {} ({}): {}", t->record.xid(),
                                  branch_id, b->resource(), why));
    Metrics()
        .phase_two_failures.With({b->resource(), ActionLabel(action)})
        ->Add();
    absl::Status s = two_phase::ApplyCommandResult(
        &t->record, branch_id, action, v1::COMMAND_OUTCOME_RETRY, why, now,
        backoff_->DelayMs(b->attempts()));
    if (!s.ok()) {
      spdlog::error("xid={} branch {}: cannot count the timeout: {}",
                    t->record.xid(), branch_id, s.ToString());
      continue;
    }
    fx->WriteBranch(branch_id);
  }
}

void TwoPhaseDriver::Kick(LiveTransaction* t, int64_t, Effects* fx) {
  if (t->resume_pending || !t->decision_durable) return;
  QueueOwed(t, fx, [](const v1::Branch&) { return true; });
}

uint64_t TwoPhaseDriver::AddBacklog(
    const LiveTransaction& t, int64_t,
    std::map<std::string, uint64_t>* by_resource) const {
  uint64_t owed = 0;
  for (const v1::Branch& b : t.record.branches()) {
    v1::BranchAction action;
    if (!two_phase::OwedAction(t.record, b, &action)) continue;
    auto d = t.deliveries.find(b.branch_id());
    if (d == t.deliveries.end() || d->second.command_id == 0) {
      ++(*by_resource)[b.resource()];
      ++owed;
    }
  }
  return owed;
}

}  // namespace baton
