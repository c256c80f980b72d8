#include "protocols/two_phase.h"

#include <algorithm>

#include "common/limits.h"
#include "fmt/format.h"
#include "protocols/transitions.h"

namespace baton::two_phase {
namespace {

absl::Status NotOpen(const v1::Transaction& txn, std::string_view what) {
  return absl::FailedPreconditionError(
      txn.reason().empty()
          ? fmt::format("cannot {}: transaction {} is {}", what, txn.xid(),
                        GlobalStatusName(txn.status()))
          : fmt::format("cannot {}: transaction {} is {} ({})", what, txn.xid(),
                        GlobalStatusName(txn.status()), txn.reason()));
}

absl::Status UnknownBranch(const v1::Transaction& txn, uint64_t branch_id) {
  return absl::NotFoundError(
      fmt::format("transaction {} has no branch {}", txn.xid(), branch_id));
}

bool BranchIsPrepared(const v1::Branch& b) {
  return b.status() == v1::BRANCH_STATUS_PREPARED;
}

v1::BranchStatus DoneStatus(v1::BranchAction action) {
  return action == v1::BRANCH_ACTION_COMMIT ? v1::BRANCH_STATUS_COMMITTED
                                            : v1::BRANCH_STATUS_ROLLED_BACK;
}

v1::BranchStatus FailedStatus(v1::BranchAction action) {
  return action == v1::BRANCH_ACTION_COMMIT ? v1::BRANCH_STATUS_COMMIT_FAILED
                                            : v1::BRANCH_STATUS_ROLLBACK_FAILED;
}

// Moves a phase-two transaction to its terminal or needs-attention status
// once no command is pending.
void Settle(v1::Transaction* txn, int64_t now_ms) {
  if (!PendingCommands(*txn).empty()) return;
  bool commit = IsCommitSide(txn->status());
  v1::BranchStatus done =
      commit ? v1::BRANCH_STATUS_COMMITTED : v1::BRANCH_STATUS_ROLLED_BACK;
  for (const v1::Branch& b : txn->branches()) {
    if (b.status() != done) {
      txn->set_reason(fmt::format("branch {} ({}) failed: {}", b.branch_id(),
                                  b.resource(), b.last_error()));
      MoveGlobalStatus(txn, commit ? v1::GLOBAL_STATUS_COMMIT_STUCK
                                   : v1::GLOBAL_STATUS_ROLLBACK_STUCK);
      return;
    }
  }
  MoveGlobalStatus(txn, commit ? v1::GLOBAL_STATUS_COMMITTED
                               : v1::GLOBAL_STATUS_ROLLED_BACK);
  txn->set_finished_unix_ms(now_ms);
}

void Decide(v1::Transaction* txn, v1::GlobalStatus to, int64_t now_ms) {
  MoveGlobalStatus(txn, to);  // Callers checked BEGUN.
  txn->set_decided_unix_ms(now_ms);
  Settle(txn, now_ms);
}

}  // namespace

// The action phase two owes this branch, if any.
bool OwedAction(const v1::Transaction& txn, const v1::Branch& b,
                v1::BranchAction* action) {
  if (IsCommitSide(txn.status())) {
    *action = v1::BRANCH_ACTION_COMMIT;
    return b.status() == v1::BRANCH_STATUS_PREPARED;
  }
  if (IsRollbackSide(txn.status())) {
    *action = v1::BRANCH_ACTION_ROLLBACK;
    return b.status() == v1::BRANCH_STATUS_REGISTERED ||
           b.status() == v1::BRANCH_STATUS_PREPARED ||
           b.status() == v1::BRANCH_STATUS_PREPARE_FAILED;
  }
  return false;
}

v1::BranchType BranchTypeFor(v1::Protocol protocol) {
  switch (protocol) {
    case v1::PROTOCOL_TCC:
      return v1::BRANCH_TYPE_TCC;
    case v1::PROTOCOL_SAGA:
      return v1::BRANCH_TYPE_SAGA;
    default:
      return v1::BRANCH_TYPE_XA;
  }
}

v1::Branch* FindBranch(v1::Transaction* txn, uint64_t branch_id) {
  // Branch ids are assigned 1..n in order.
  if (branch_id == 0 || branch_id > static_cast<uint64_t>(txn->branches_size()))
    return nullptr;
  return txn->mutable_branches(static_cast<int>(branch_id - 1));
}

absl::StatusOr<uint64_t> RegisterBranch(v1::Transaction* txn,
                                        const NewBranch& branch,
                                        int64_t now_ms) {
  if (!branch.request_id.empty()) {
    for (const v1::Branch& b : txn->branches()) {
      if (b.request_id() == branch.request_id) return b.branch_id();
    }
  }
  if (txn->status() != v1::GLOBAL_STATUS_BEGUN) {
    return NotOpen(*txn, "register a branch");
  }
  if (branch.type != BranchTypeFor(txn->protocol())) {
    return absl::FailedPreconditionError(
        fmt::format("cannot register a {} branch in {}, a {} transaction",
                    v1::BranchType_Name(branch.type), txn->xid(),
                    v1::Protocol_Name(txn->protocol())));
  }
  if (now_ms >= txn->deadline_unix_ms()) {
    return absl::FailedPreconditionError(fmt::format(
        "cannot register a branch: transaction {} is past its deadline and "
        "is being rolled back",
        txn->xid()));
  }
  if (static_cast<size_t>(txn->branches_size()) >=
      limits::kMaxBranchesPerTransaction) {
    return absl::ResourceExhaustedError(
        fmt::format("transaction {} already has {} branches", txn->xid(),
                    limits::kMaxBranchesPerTransaction));
  }
  size_t data_bytes = branch.application_data.size();
  for (const v1::Branch& b : txn->branches()) {
    data_bytes += b.application_data().size();
  }
  if (data_bytes > limits::kMaxTransactionDataBytes) {
    return absl::ResourceExhaustedError(fmt::format(
        "transaction {} would carry more than {} bytes of application data",
        txn->xid(), limits::kMaxTransactionDataBytes));
  }
  v1::Branch* b = txn->add_branches();
  b->set_branch_id(txn->branches_size());
  b->set_resource(branch.resource);
  b->set_type(branch.type);
  b->set_status(v1::BRANCH_STATUS_REGISTERED);
  b->set_application_data(branch.application_data);
  b->set_request_id(branch.request_id);
  b->set_instance_id(branch.instance_id);
  b->set_registered_unix_ms(now_ms);
  b->set_updated_unix_ms(now_ms);
  return b->branch_id();
}

v1::PhaseOneOutcome RecordedPhaseOne(const v1::Branch& b) {
  if (b.phase_one() != v1::PHASE_ONE_OUTCOME_UNSPECIFIED) return b.phase_one();
  // Records written before phase_one existed: the status tells, except once
  // a rollback overwrote it.
  switch (b.status()) {
    case v1::BRANCH_STATUS_PREPARED:
    case v1::BRANCH_STATUS_COMMITTED:
    case v1::BRANCH_STATUS_COMMIT_FAILED:
      return v1::PHASE_ONE_OUTCOME_PREPARED;
    case v1::BRANCH_STATUS_PREPARE_FAILED:
      return v1::PHASE_ONE_OUTCOME_FAILED;
    default:
      return v1::PHASE_ONE_OUTCOME_UNSPECIFIED;
  }
}

absl::Status ReportPhaseOne(v1::Transaction* txn, uint64_t branch_id,
                            v1::PhaseOneOutcome outcome, std::string_view error,
                            int64_t now_ms) {
  v1::Branch* b = FindBranch(txn, branch_id);
  if (b == nullptr) return UnknownBranch(*txn, branch_id);
  v1::PhaseOneOutcome recorded = RecordedPhaseOne(*b);
  if (recorded == outcome) return absl::OkStatus();
  auto name = [](v1::PhaseOneOutcome o) {
    return o == v1::PHASE_ONE_OUTCOME_PREPARED ? "prepared" : "failed";
  };
  if (recorded != v1::PHASE_ONE_OUTCOME_UNSPECIFIED) {
    return absl::FailedPreconditionError(fmt::format(
        "branch {} of transaction {} already reported {}; a report of {} "
        "cannot change that",
        branch_id, txn->xid(), name(recorded), name(outcome)));
  }
  if (txn->status() != v1::GLOBAL_STATUS_BEGUN) {
    return NotOpen(*txn, "report phase one");
  }
  v1::BranchStatus to = outcome == v1::PHASE_ONE_OUTCOME_PREPARED
                            ? v1::BRANCH_STATUS_PREPARED
                            : v1::BRANCH_STATUS_PREPARE_FAILED;
  if (absl::Status s = SetBranchStatus(b, to); !s.ok()) return s;
  b->set_phase_one(outcome);
  b->set_phase_one_error(std::string(error));
  b->set_updated_unix_ms(now_ms);
  return absl::OkStatus();
}

absl::Status DecideCommit(v1::Transaction* txn, int64_t now_ms) {
  if (IsCommitSide(txn->status())) return absl::OkStatus();
  if (txn->status() != v1::GLOBAL_STATUS_BEGUN) return NotOpen(*txn, "commit");
  auto not_prepared = std::find_if_not(txn->branches().begin(),
                                       txn->branches().end(), BranchIsPrepared);
  if (not_prepared == txn->branches().end()) {
    Decide(txn, v1::GLOBAL_STATUS_COMMITTING, now_ms);
    return absl::OkStatus();
  }
  const v1::Branch& b = *not_prepared;
  txn->set_reason(fmt::format("commit refused: branch {} ({}) {}",
                              b.branch_id(), b.resource(),
                              b.status() == v1::BRANCH_STATUS_PREPARE_FAILED
                                  ? "failed to prepare: " + b.phase_one_error()
                                  : std::string("never reported prepared")));
  Decide(txn, v1::GLOBAL_STATUS_ROLLING_BACK, now_ms);
  return absl::OkStatus();
}

absl::Status DecideRollback(v1::Transaction* txn, std::string_view reason,
                            int64_t now_ms) {
  if (IsRollbackSide(txn->status())) return absl::OkStatus();
  if (txn->status() != v1::GLOBAL_STATUS_BEGUN) {
    return NotOpen(*txn, "roll back");
  }
  txn->set_reason(std::string(reason));
  Decide(txn, v1::GLOBAL_STATUS_ROLLING_BACK, now_ms);
  return absl::OkStatus();
}

bool ExpireIfPastDeadline(v1::Transaction* txn, int64_t now_ms) {
  if (txn->status() != v1::GLOBAL_STATUS_BEGUN ||
      now_ms < txn->deadline_unix_ms()) {
    return false;
  }
  return DecideRollback(txn, "timeout", now_ms).ok();
}

std::vector<Command> PendingCommands(const v1::Transaction& txn) {
  std::vector<Command> commands;
  for (const v1::Branch& b : txn.branches()) {
    v1::BranchAction action;
    if (OwedAction(txn, b, &action))
      commands.push_back({b.branch_id(), action});
  }
  return commands;
}

void MakeRetriesDue(v1::Transaction* txn) {
  for (const Command& c : PendingCommands(*txn)) {
    FindBranch(txn, c.branch_id)->set_next_retry_unix_ms(0);
  }
}

absl::Status ApplyCommandResult(v1::Transaction* txn, uint64_t branch_id,
                                v1::BranchAction action,
                                v1::CommandOutcome outcome,
                                std::string_view message, int64_t now_ms,
                                int64_t retry_delay_ms) {
  v1::Branch* b = FindBranch(txn, branch_id);
  if (b == nullptr) return UnknownBranch(*txn, branch_id);
  bool commit = action == v1::BRANCH_ACTION_COMMIT;
  if ((commit && !IsCommitSide(txn->status())) ||
      (!commit && !IsRollbackSide(txn->status()))) {
    return absl::FailedPreconditionError(
        fmt::format("stale {} result for branch {}: transaction {} is {}",
                    commit ? "commit" : "rollback", branch_id, txn->xid(),
                    GlobalStatusName(txn->status())));
  }
  if (b->status() == DoneStatus(action)) return absl::OkStatus();
  v1::BranchStatus to = b->status();
  if (outcome == v1::COMMAND_OUTCOME_DONE) {
    to = DoneStatus(action);
  } else if (outcome == v1::COMMAND_OUTCOME_FAILED) {
    to = FailedStatus(action);
  }
  if (absl::Status s = SetBranchStatus(b, to); !s.ok()) return s;
  b->set_attempts(b->attempts() + 1);
  b->set_updated_unix_ms(now_ms);
  b->set_next_retry_unix_ms(
      outcome == v1::COMMAND_OUTCOME_RETRY ? now_ms + retry_delay_ms : 0);
  if (outcome != v1::COMMAND_OUTCOME_DONE)
    b->set_last_error(std::string(message));
  Settle(txn, now_ms);
  return absl::OkStatus();
}

bool MarkStuckIfRetryWindowPassed(v1::Transaction* txn, int64_t now_ms,
                                  int64_t retry_window_ms) {
  bool in_phase_two = txn->status() == v1::GLOBAL_STATUS_COMMITTING ||
                      txn->status() == v1::GLOBAL_STATUS_ROLLING_BACK;
  int64_t window_start =
      std::max(txn->decided_unix_ms(), txn->retry_window_start_unix_ms());
  if (!in_phase_two || txn->paused() ||
      now_ms < window_start + retry_window_ms) {
    return false;
  }
  std::vector<Command> pending = PendingCommands(*txn);
  if (pending.empty()) return false;
  const v1::Branch& b = *FindBranch(txn, pending.front().branch_id);
  txn->set_reason(fmt::format(
      "phase two unfinished after {} s: branch {} ({}) {}",
      retry_window_ms / 1000, b.branch_id(), b.resource(),
      b.attempts() == 0 ? std::string("was never answered")
                        : fmt::format("failed {} attempt(s), last: {}",
                                      b.attempts(), b.last_error())));
  MoveGlobalStatus(txn, IsCommitSide(txn->status())
                            ? v1::GLOBAL_STATUS_COMMIT_STUCK
                            : v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  return true;
}

int64_t NextActionTime(const v1::Transaction& txn, int64_t retry_window_ms) {
  if (txn.status() == v1::GLOBAL_STATUS_BEGUN) return txn.deadline_unix_ms();
  if (IsTerminal(txn.status()) || txn.paused()) return 0;
  int64_t next =
      NeedsAttention(txn.status())
          ? 0
          : std::max(txn.decided_unix_ms(), txn.retry_window_start_unix_ms()) +
                retry_window_ms;
  for (const v1::Branch& b : txn.branches()) {
    v1::BranchAction action;
    if (!OwedAction(txn, b, &action) || b.next_retry_unix_ms() == 0) continue;
    if (next == 0 || b.next_retry_unix_ms() < next)
      next = b.next_retry_unix_ms();
  }
  return next;
}

}  // namespace baton::two_phase
