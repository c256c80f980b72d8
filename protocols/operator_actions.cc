#include "protocols/operator_actions.h"

#include <algorithm>
#include <vector>

#include "fmt/format.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "protocols/two_phase.h"

namespace baton::operator_actions {
namespace {

bool InPhaseTwo(v1::GlobalStatus status) {
  return status == v1::GLOBAL_STATUS_COMMITTING ||
         status == v1::GLOBAL_STATUS_ROLLING_BACK || NeedsAttention(status);
}

std::string BranchList(const std::vector<const v1::Branch*>& branches) {
  std::string out;
  for (const v1::Branch* b : branches) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} ({})", b->branch_id(), b->resource());
  }
  return out;
}

absl::Status NeverReversed(const v1::Transaction& txn, bool want_commit) {
  return absl::FailedPreconditionError(fmt::format(
      "transaction {} is {}{}: a durable decision is never reversed, since "
      "branches may have applied it and the caller may have been told; use "
      "`batonctl {} {}` to finish it",
      txn.xid(), GlobalStatusName(txn.status()),
      txn.reason().empty() ? "" : fmt::format(" ({})", txn.reason()),
      want_commit ? "rollback" : "commit", txn.xid()));
}

absl::Status NothingToDo(const v1::Transaction& txn, std::string_view what,
                         std::string_view hint) {
  return absl::FailedPreconditionError(
      fmt::format("cannot {} transaction {}: it is {}; {}", what, txn.xid(),
                  GlobalStatusName(txn.status()), hint));
}

// Marks every branch not yet `done` as done by the operator and finishes the
// transaction with `terminal`. Returns which branches it marked.
std::string FinishByHand(v1::Transaction* txn, v1::BranchStatus done,
                         v1::GlobalStatus terminal, int64_t now_ms) {
  std::vector<const v1::Branch*> marked;
  for (v1::Branch& b : *txn->mutable_branches()) {
    if (b.status() == done) continue;
    MoveBranchStatus(txn->xid(), &b, done);  // Legal from every unfinished.
    b.set_next_retry_unix_ms(0);
    b.set_updated_unix_ms(now_ms);
    marked.push_back(&b);
  }
  MoveGlobalStatus(txn, terminal);
  txn->set_finished_unix_ms(now_ms);
  txn->set_paused(false);
  return marked.empty()
             ? "no branch was unfinished"
             : fmt::format("marked {} by hand: branch {}",
                           BranchStatusName(done), BranchList(marked));
}

absl::Status CommitOpen(v1::Transaction* txn, const Request& request,
                        int64_t now_ms) {
  std::vector<const v1::Branch*> failed, unreported;
  for (const v1::Branch& b : txn->branches()) {
    if (b.status() == v1::BRANCH_STATUS_PREPARE_FAILED) failed.push_back(&b);
    if (b.status() == v1::BRANCH_STATUS_REGISTERED) unreported.push_back(&b);
  }
  if (!failed.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "cannot commit transaction {}: phase one failed at branch {}: {}; it "
        "can only roll back",
        txn->xid(), BranchList(failed), failed.front()->phase_one_error()));
  }
  if (!unreported.empty() && !request.override_unprepared) {
    return absl::FailedPreconditionError(fmt::format(
        "cannot commit transaction {}: branch {} never reported prepared; "
        "check that each holds its prepared work and pass --override to "
        "treat it as prepared, or roll back",
        txn->xid(), BranchList(unreported)));
  }
  v1::Transaction changed = *txn;
  for (v1::Branch& b : *changed.mutable_branches()) {
    if (b.status() != v1::BRANCH_STATUS_REGISTERED) continue;
    MoveBranchStatus(txn->xid(), &b, v1::BRANCH_STATUS_PREPARED);
    b.set_updated_unix_ms(now_ms);
  }
  if (absl::Status s = two_phase::DecideCommit(&changed, now_ms); !s.ok()) {
    return s;
  }
  std::string detail =
      unreported.empty()
          ? "decided commit"
          : fmt::format("decided commit; treated branch {} as prepared",
                        BranchList(unreported));
  *txn = std::move(changed);
  AppendAudit(txn, "force-commit", request, detail, now_ms);
  return absl::OkStatus();
}

bool IsSaga(const v1::Transaction& txn) {
  return txn.protocol() == v1::PROTOCOL_SAGA;
}

// A saga's forced outcome: compensation if it still runs forward (and a
// rollback is asked), else every unfinished step marked done by hand.
absl::Status ForceSaga(v1::Transaction* txn, bool commit,
                       const Request& request, int64_t now_ms) {
  const char* action = commit ? "force-commit" : "force-rollback";
  if (txn->status() == v1::GLOBAL_STATUS_BEGUN) {
    if (commit) {
      return NothingToDo(*txn, "commit",
                         "a saga running forward commits by itself once its "
                         "steps succeed");
    }
    absl::Status s = saga::RequestCompensation(
        txn, fmt::format("rolled back by an operator: {}", request.reason),
        now_ms);
    if (s.ok())
      AppendAudit(txn, action, request, "compensation started", now_ms);
    return s;
  }
  absl::StatusOr<std::string> marked = saga::FinishByHand(txn, now_ms);
  if (!marked.ok()) return marked.status();
  AppendAudit(txn, action, request,
              marked->empty()
                  ? "no step was unfinished"
                  : fmt::format("marked {} by hand: step {}",
                                commit ? "succeeded" : "compensated", *marked),
              now_ms);
  return absl::OkStatus();
}

}  // namespace

void AppendAudit(v1::Transaction* txn, const std::string& action,
                 const Request& request, const std::string& detail,
                 int64_t now_ms) {
  auto* records = txn->mutable_audit();
  if (records->size() >= kMaxAuditRecords) {
    auto repeatable = std::find_if(
        records->begin(), records->end(), [](const v1::AuditRecord& a) {
          return a.action() == "retry" || a.action() == "pause" ||
                 a.action() == "resume";
        });
    if (repeatable != records->end()) records->erase(repeatable);
  }
  v1::AuditRecord* audit = txn->add_audit();
  audit->set_unix_ms(now_ms);
  audit->set_action(action);
  audit->set_reason(request.reason);
  audit->set_actor(request.actor);
  audit->set_detail(detail);
}

absl::Status ForceCommit(v1::Transaction* txn, const Request& request,
                         int64_t now_ms) {
  if (txn->status() == v1::GLOBAL_STATUS_COMMITTED) return absl::OkStatus();
  if (IsRollbackSide(txn->status())) return NeverReversed(*txn, true);
  if (IsSaga(*txn)) return ForceSaga(txn, /*commit=*/true, request, now_ms);
  if (txn->status() == v1::GLOBAL_STATUS_BEGUN) {
    return CommitOpen(txn, request, now_ms);
  }
  std::string detail = FinishByHand(txn, v1::BRANCH_STATUS_COMMITTED,
                                    v1::GLOBAL_STATUS_COMMITTED, now_ms);
  AppendAudit(txn, "force-commit", request, detail, now_ms);
  return absl::OkStatus();
}

absl::Status ForceRollback(v1::Transaction* txn, const Request& request,
                           int64_t now_ms) {
  if (txn->status() == v1::GLOBAL_STATUS_ROLLED_BACK) return absl::OkStatus();
  if (IsCommitSide(txn->status())) return NeverReversed(*txn, false);
  if (IsSaga(*txn)) return ForceSaga(txn, /*commit=*/false, request, now_ms);
  if (txn->status() == v1::GLOBAL_STATUS_BEGUN) {
    absl::Status s = two_phase::DecideRollback(
        txn, fmt::format("rolled back by an operator: {}", request.reason),
        now_ms);
    if (s.ok())
      AppendAudit(txn, "force-rollback", request, "decided rollback", now_ms);
    return s;
  }
  std::string detail = FinishByHand(txn, v1::BRANCH_STATUS_ROLLED_BACK,
                                    v1::GLOBAL_STATUS_ROLLED_BACK, now_ms);
  AppendAudit(txn, "force-rollback", request, detail, now_ms);
  return absl::OkStatus();
}

absl::Status RetryNow(v1::Transaction* txn, const Request& request,
                      int64_t now_ms) {
  if (!InPhaseTwo(txn->status())) {
    return NothingToDo(*txn, "retry",
                       "only phase two (committing, rolling back or needing "
                       "attention) has commands to retry");
  }
  if (txn->paused()) {
    return absl::FailedPreconditionError(
        fmt::format("transaction {} is paused; `batonctl resume {}` restarts "
                    "its retries",
                    txn->xid(), txn->xid()));
  }
  if (IsSaga(*txn)) {
    absl::StatusOr<std::string> reopened = saga::RetryParked(txn, now_ms);
    if (!reopened.ok()) return reopened.status();
    AppendAudit(txn, "retry", request,
                reopened->empty()
                    ? "backoffs due now"
                    : fmt::format("step {} owed again, due now", *reopened),
                now_ms);
    return absl::OkStatus();
  }
  bool commit = IsCommitSide(txn->status());
  v1::BranchStatus failed = commit ? v1::BRANCH_STATUS_COMMIT_FAILED
                                   : v1::BRANCH_STATUS_ROLLBACK_FAILED;
  std::vector<const v1::Branch*> reopened;
  for (v1::Branch& b : *txn->mutable_branches()) {
    if (b.status() != failed) continue;
    MoveBranchStatus(txn->xid(), &b, v1::BRANCH_STATUS_PREPARED);
    reopened.push_back(&b);
  }
  two_phase::MakeRetriesDue(txn);
  if (NeedsAttention(txn->status())) {
    MoveGlobalStatus(txn, commit ? v1::GLOBAL_STATUS_COMMITTING
                                 : v1::GLOBAL_STATUS_ROLLING_BACK);
  }
  txn->set_retry_window_start_unix_ms(now_ms);
  std::string detail = fmt::format("{} command(s) due now",
                                   two_phase::PendingCommands(*txn).size());
  if (!reopened.empty()) {
    detail +=
        fmt::format("; failed branch {} owed again", BranchList(reopened));
  }
  AppendAudit(txn, "retry", request, detail, now_ms);
  return absl::OkStatus();
}

absl::Status SetPaused(v1::Transaction* txn, bool paused,
                       const Request& request, int64_t now_ms) {
  if (!InPhaseTwo(txn->status())) {
    return NothingToDo(*txn, paused ? "pause" : "resume",
                       "pause and resume apply to phase-two retries only");
  }
  if (txn->paused() == paused) return absl::OkStatus();
  txn->set_paused(paused);
  if (!paused) {
    if (IsSaga(*txn)) {
      saga::MakeBackoffsDue(txn);
    } else {
      two_phase::MakeRetriesDue(txn);
    }
    txn->set_retry_window_start_unix_ms(now_ms);
  }
  AppendAudit(
      txn, paused ? "pause" : "resume", request,
      paused ? "phase-two commands stopped" : "phase-two commands due now",
      now_ms);
  return absl::OkStatus();
}

absl::Status CheckForgettable(const v1::Transaction& txn) {
  if (IsTerminal(txn.status()) || NeedsAttention(txn.status())) {
    return absl::OkStatus();
  }
  return NothingToDo(txn, "forget",
                     "only a finished or needs-attention transaction can be "
                     "forgotten; dropping it now would lose work the "
                     "coordinator still has to do");
}

}  // namespace baton::operator_actions
