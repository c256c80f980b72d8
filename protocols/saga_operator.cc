#include "fmt/format.h"
#include "protocols/saga.h"
#include "protocols/saga_record.h"
#include "protocols/transitions.h"

// What an operator may do to a saga that is stuck: make its backoffs due,
// reopen its failed steps, or mark it finished by hand.
namespace baton::saga {
namespace {

// What operators may act on: a saga past its decision and not finished.
absl::Status CheckDecidedUnfinished(const v1::Transaction& txn,
                                    std::string_view what) {
  if (HasSaga(txn) && txn.status() != v1::GLOBAL_STATUS_BEGUN &&
      !IsTerminal(txn.status())) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(fmt::format(
      "cannot {} saga {}: it is {}; only a decided, unfinished saga can be",
      what, txn.xid(), GlobalStatusName(txn.status())));
}

}  // namespace

void MakeBackoffsDue(v1::Transaction* txn) {
  for (v1::StepProgress& p : *txn->mutable_saga()->mutable_steps()) {
    if (!InFlight(p)) p.set_next_attempt_unix_ms(0);
  }
}

absl::StatusOr<std::string> RetryParked(v1::Transaction* txn, int64_t now_ms) {
  if (absl::Status s = CheckDecidedUnfinished(*txn, "retry"); !s.ok()) {
    return s;
  }
  MakeBackoffsDue(txn);
  std::string reopened;
  for (int i = 0; i < txn->saga().steps_size(); ++i) {
    v1::StepProgress* p = ProgressOf(txn, static_cast<uint32_t>(i));
    v1::StepStatus owed = p->status() == v1::STEP_STATUS_FAILED
                              ? v1::STEP_STATUS_PENDING
                          : p->status() == v1::STEP_STATUS_COMPENSATION_FAILED
                              ? v1::STEP_STATUS_COMPENSATION_PENDING
                              : v1::STEP_STATUS_UNSPECIFIED;
    if (owed == v1::STEP_STATUS_UNSPECIFIED) continue;
    MoveStepStatus(txn->xid(), p, owed);
    p->set_updated_unix_ms(now_ms);
    if (!reopened.empty()) reopened += ", ";
    reopened += fmt::format("'{}'", StepOf(*txn, i).name());
  }
  if (NeedsAttention(txn->status())) {
    MoveGlobalStatus(txn, IsCommitSide(txn->status())
                              ? v1::GLOBAL_STATUS_COMMITTING
                              : v1::GLOBAL_STATUS_ROLLING_BACK);
  }
  txn->set_retry_window_start_unix_ms(now_ms);
  return reopened;
}

absl::StatusOr<std::string> FinishByHand(v1::Transaction* txn, int64_t now_ms) {
  if (absl::Status s = CheckDecidedUnfinished(*txn, "finish by hand");
      !s.ok()) {
    return s;
  }
  bool commit = IsCommitSide(txn->status());
  std::string marked;
  for (int i = 0; i < txn->saga().steps_size(); ++i) {
    v1::StepProgress* p = ProgressOf(txn, static_cast<uint32_t>(i));
    bool done = commit ? p->status() == v1::STEP_STATUS_SUCCEEDED
                       : p->status() == v1::STEP_STATUS_COMPENSATED ||
                             p->status() == v1::STEP_STATUS_SKIPPED;
    if (done) continue;
    MoveStepStatus(
        txn->xid(), p,
        commit ? v1::STEP_STATUS_SUCCEEDED : v1::STEP_STATUS_COMPENSATED);
    p->set_next_attempt_unix_ms(0);
    p->set_timeout_unix_ms(0);
    p->set_updated_unix_ms(now_ms);
    if (!marked.empty()) marked += ", ";
    marked += fmt::format("'{}'", StepOf(*txn, i).name());
  }
  Settle(txn, now_ms);
  return marked;
}

}  // namespace baton::saga
