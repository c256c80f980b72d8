#include "coordinator/transaction_manager.h"

#include <future>
#include <random>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "common/failpoint.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/xid.h"
#include "fmt/format.h"
#include "protocols/instants.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "protocols/two_phase.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

constexpr char kEpochKey[] = "epoch";
constexpr char kForgottenPrefix[] = "forgotten/";
constexpr uint32_t kDefaultWaitMs = 30'000;

absl::Status CommitAborted(const v1::Transaction& txn) {
  return absl::AbortedError(fmt::format(
      "transaction {} was rolled back instead: {}{}", txn.xid(), txn.reason(),
      IsTerminal(txn.status()) ? "" : "; its rollback is not finished yet"));
}

// The meta key that maps a saga's request_id to its xid; "" for none.
std::string SagaRequestKey(const v1::Transaction& record) {
  if (record.protocol() != v1::PROTOCOL_SAGA || record.request_id().empty())
    return "";
  return kSagaRequestPrefix + record.request_id();
}

}  // namespace

TransactionManager::TransactionManager(const ManagerOptions& options,
                                       GroupCommitter* committer,
                                       TransactionStore* store,
                                       CommandSink* sink)
    : options_(options),
      timeline_(options.timeline != nullptr ? options.timeline
                                            : SystemTimeline()),
      committer_(committer),
      store_(store),
      sink_(sink) {}

absl::Status TransactionManager::Init() {
  std::string value;
  absl::Status s = store_->GetMeta(kEpochKey, &value);
  if (!s.ok() && !absl::IsNotFound(s)) return s;
  uint64_t last = 0;
  if (s.ok() && !absl::SimpleAtoi(value, &last)) {
    return absl::DataLossError(fmt::format(
        "the store is corrupt: m/{} holds '{}', not an epoch number; restore "
        "the data dir from a backup",
        kEpochKey, absl::CHexEscape(value.substr(0, 40))));
  }
  epoch_ = last + 1;
  StoreBatch batch;
  batch.PutMeta(kEpochKey, std::to_string(epoch_));
  std::promise<absl::Status> synced;
  committer_->Submit(std::move(batch), [&synced](const absl::Status& status) {
    synced.set_value(status);
  });
  s = synced.get_future().get();
  if (s.ok())
    spdlog::info("coordinator node {} epoch {}", options_.node_id, epoch_);
  return s;
}

TransactionManager::LiveTransaction* TransactionManager::FindLocked(
    const std::string& xid) {
  auto it = live_.find(xid);
  return it == live_.end() ? nullptr : it->second.get();
}

int64_t TransactionManager::NextActionFor(const v1::Transaction& record) const {
  return record.protocol() == v1::PROTOCOL_SAGA
             ? saga::NextActionTime(record, options_.retry_window_ms)
             : two_phase::NextActionTime(record, options_.retry_window_ms);
}

// ---------------------------------------------------------------------------
// Durability plumbing.

void TransactionManager::PersistLocked(LiveTransaction* t, Done done) {
  v1::Transaction& r = t->record;
  r.set_next_action_unix_ms(NextActionFor(r));
  uint64_t write = ++t->writes_queued;
  StoreBatch batch;
  // A saga's idempotency key outlives its stay in memory, until the purge.
  std::string request_key = SagaRequestKey(r);
  if (write == 1 && !request_key.empty()) batch.PutMeta(request_key, r.xid());
  batch.PutTransaction(r, t->persisted_due,
                       IsTerminal(r.status()) ? std::move(request_key) : "");
  // One heap entry per distinct due time; stale ones are skipped when popped.
  if (r.next_action_unix_ms() > 0 &&
      r.next_action_unix_ms() != t->persisted_due) {
    due_.push({r.next_action_unix_ms(), r.xid()});
  }
  t->persisted_due = IsTerminal(r.status()) ? -1 : r.next_action_unix_ms();
  t->unwritten = false;
  // Only a caller's reply needs the whole record as it was written.
  std::shared_ptr<v1::Transaction> snapshot;
  if (done) snapshot = std::make_shared<v1::Transaction>(r);
  committer_->Submit(
      std::move(batch),
      [this, xid = r.xid(), status = r.status(), write, snapshot,
       done = std::move(done)](const absl::Status& s) {
        if (s.ok()) {
          OnDurable(xid, status, write);
        } else {
          log_summary_.Log(
              spdlog::level::critical, "not durable",
              fmt::format("xid={} not durable: {}", xid, s.ToString()));
        }
        if (done) done(s, *snapshot);
      });
}

void TransactionManager::AnswerWhenDurable(absl::Status status,
                                           v1::Transaction snapshot,
                                           Done done) {
  committer_->Submit(
      StoreBatch(), [status = std::move(status), snapshot = std::move(snapshot),
                     done = std::move(done)](const absl::Status& s) {
        done(s.ok() ? status : s, snapshot);
      });
}

// Everything an answer reveals must be on disk first: a barrier covers
// what queued writes carry, and a change none carries gets its own write.
void TransactionManager::AnswerFromRecordLocked(LiveTransaction* t,
                                                absl::Status status,
                                                Done done) {
  if (!t->unwritten) {
    return AnswerWhenDurable(std::move(status), t->record, std::move(done));
  }
  PersistLocked(t, [status = std::move(status), done = std::move(done)](
                       const absl::Status& s, const v1::Transaction& r) {
    done(s.ok() ? status : s, r);
  });
}

// Runs once the state `status` of xid is on disk.
void TransactionManager::OnDurable(const std::string& xid,
                                   v1::GlobalStatus status, uint64_t write) {
  std::lock_guard<std::mutex> lock(mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr) return;
  if (t->record.protocol() == v1::PROTOCOL_SAGA) {
    SendSagaOutboxLocked(t, write);
  } else if (status != v1::GLOBAL_STATUS_BEGUN && !t->decision_durable) {
    t->decision_durable = true;
    failpoint::Hit(IsCommitSide(status) ? "after_commit_decision"
                                        : "after_rollback_decision")
        .IgnoreError();
    if (!t->resume_pending) StartPhaseTwoLocked(t);
  }
  if (IsTerminal(status) || NeedsAttention(status)) {
    for (Waiter& w : t->waiters) {
      // A terminal record never changes again, so memory is what is on disk.
      if (IsTerminal(status)) {
        w.reply(absl::OkStatus(), t->record);
      } else {
        AnswerFromRecordLocked(t, absl::OkStatus(), std::move(w.reply));
      }
    }
    t->waiters.clear();
  }
  if (IsTerminal(status)) FinishLocked(t);
}

// Only if the key is still this transaction's: a restart may load one whose
// key a new Begin took meanwhile.
void TransactionManager::ForgetRequestIdLocked(const v1::Transaction& r) {
  auto it = xid_by_begin_request_.find(r.request_id());
  if (it != xid_by_begin_request_.end() && it->second == r.xid()) {
    xid_by_begin_request_.erase(it);
  }
}

void TransactionManager::FinishLocked(LiveTransaction* t) {
  const v1::Transaction& r = t->record;
  // A line per commit would be a flushed write per transaction; rollbacks
  // are rarer and worth seeing by default.
  std::string line =
      fmt::format("xid={} {} with {} branch(es)", r.xid(),
                  GlobalStatusName(r.status()), r.branches_size());
  if (r.status() == v1::GLOBAL_STATUS_COMMITTED) {
    spdlog::debug("{}", line);
  } else {
    log_summary_.Log(spdlog::level::info, "rolled back", std::move(line));
  }
  metrics::LabelValues labels = {
      ProtocolLabel(r.protocol()),
      r.status() == v1::GLOBAL_STATUS_COMMITTED ? "committed" : "rolled_back"};
  Metrics().finished.With(labels)->Add();
  Metrics().transaction_seconds.With(labels)->Observe(
      (r.finished_unix_ms() - r.begun_unix_ms()) / 1000.0);
  ForgetRequestIdLocked(r);
  live_.erase(r.xid());
}

// ---------------------------------------------------------------------------
// Generic read-modify-write of one transaction.

void TransactionManager::Mutate(const std::string& xid, Mutation mutate,
                                Done done) {
  std::unique_lock<std::mutex> lock(mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr) {
    lock.unlock();
    MutateStored(xid, mutate, done);
    return;
  }
  bool changed = false;
  absl::Status s = mutate(&t->record, &changed);
  if (s.ok() && changed) {
    if (t->record.protocol() == v1::PROTOCOL_SAGA) AdvanceSagaLocked(t);
    PersistLocked(t, std::move(done));
    return;
  }
  AnswerFromRecordLocked(t, std::move(s), std::move(done));
}

// Terminal records live only in the store and never change again, so the
// mutation runs on a copy and only its verdict matters. An unfinished record
// outside memory is one a restart has not adopted yet (the server listens
// while recovery loads): changing a copy would acknowledge what is never
// written, so the caller is asked to retry.
void TransactionManager::MutateStored(const std::string& xid,
                                      const Mutation& mutate,
                                      const Done& done) {
  v1::Transaction record;
  absl::Status s = store_->Get(xid, &record);
  if (absl::IsNotFound(s)) s = NotFound(xid);
  if (s.ok() && !IsTerminal(record.status())) {
    s = absl::UnavailableError(fmt::format(
        "transaction {} is still being loaded after a restart; retry shortly",
        xid));
  }
  if (s.ok()) {
    bool changed = false;
    s = mutate(&record, &changed);
  }
  done(s, record);
}

absl::Status TransactionManager::KeyTaken(const std::string& request_id,
                                          const v1::Transaction& existing) {
  return absl::AlreadyExistsError(fmt::format(
      "request_id '{}' already started transaction {} ({} '{}'), which is "
      "not this one: an idempotency key belongs to one kind of call and one "
      "protocol; use a new key",
      request_id, existing.xid(), ProtocolLabel(existing.protocol()),
      existing.name()));
}

absl::Status TransactionManager::NotFound(const std::string& xid) {
  std::string bytes;
  v1::Transaction tombstone;
  if (store_->GetMeta(kForgottenPrefix + xid, &bytes).ok() &&
      tombstone.ParseFromString(bytes) && tombstone.audit_size() > 0) {
    const v1::AuditRecord& forget = *tombstone.audit().rbegin();
    return absl::NotFoundError(fmt::format(
        "transaction {} was forgotten by an operator ({}) at unix ms {}: {}",
        xid, forget.actor().empty() ? "unknown" : forget.actor(),
        forget.unix_ms() + timeline_->WallOffsetMs(), forget.reason()));
  }
  return absl::NotFoundError(fmt::format(
      "no transaction {} (never begun here, or finished and purged)", xid));
}

// ---------------------------------------------------------------------------
// Caller and participant calls.

void TransactionManager::Begin(const v1::BeginRequest& request,
                               Reply<v1::BeginResponse> reply) {
  auto answer = [reply](const absl::Status& s, const v1::Transaction& r) {
    v1::BeginResponse response;
    response.set_xid(r.xid());
    response.set_deadline_unix_ms(r.deadline_unix_ms());
    reply(s, response);
  };
  std::lock_guard<std::mutex> lock(mu_);
  if (!request.request_id().empty()) {
    auto it = xid_by_begin_request_.find(request.request_id());
    if (it != xid_by_begin_request_.end()) {
      const v1::Transaction& existing = FindLocked(it->second)->record;
      v1::Protocol asked = request.protocol() == v1::PROTOCOL_UNSPECIFIED
                               ? v1::PROTOCOL_TWO_PHASE
                               : request.protocol();
      AnswerWhenDurable(existing.protocol() == asked
                            ? absl::OkStatus()
                            : KeyTaken(request.request_id(), existing),
                        existing, answer);
      return;
    }
  }
  auto t = std::make_unique<LiveTransaction>();
  v1::Transaction& r = t->record;
  int64_t now = timeline_->Now();
  uint32_t timeout_ms = request.timeout_ms() == 0 ? options_.default_timeout_ms
                                                  : request.timeout_ms();
  r.set_xid(FormatXid({options_.node_id, epoch_, ++next_sequence_}));
  r.set_name(request.name());
  r.set_protocol(request.protocol() == v1::PROTOCOL_UNSPECIFIED
                     ? v1::PROTOCOL_TWO_PHASE
                     : request.protocol());
  r.set_status(v1::GLOBAL_STATUS_BEGUN);
  r.set_begun_unix_ms(now);
  r.set_deadline_unix_ms(now + timeout_ms);
  r.set_timeout_ms(timeout_ms);
  r.set_request_id(request.request_id());
  if (!r.request_id().empty()) xid_by_begin_request_[r.request_id()] = r.xid();
  spdlog::debug("xid={} begun: {}", r.xid(), r.name());
  Metrics().begun.With({ProtocolLabel(r.protocol())})->Add();
  LiveTransaction* raw = t.get();
  live_.emplace(r.xid(), std::move(t));
  PersistLocked(raw, answer);
}

void TransactionManager::Commit(const v1::CommitRequest& request,
                                Reply<v1::CommitResponse> reply) {
  DecideAndReply(request.xid(), /*commit=*/true, "", request.wait(),
                 request.wait_timeout_ms(),
                 [reply](const absl::Status& s, v1::GlobalStatus status) {
                   v1::CommitResponse response;
                   response.set_status(status);
                   reply(s, response);
                 });
}

void TransactionManager::Rollback(const v1::RollbackRequest& request,
                                  Reply<v1::RollbackResponse> reply) {
  std::string reason =
      request.reason().empty() ? "rolled back by caller" : request.reason();
  DecideAndReply(request.xid(), /*commit=*/false, std::move(reason),
                 request.wait(), request.wait_timeout_ms(),
                 [reply](const absl::Status& s, v1::GlobalStatus status) {
                   v1::RollbackResponse response;
                   response.set_status(status);
                   reply(s, response);
                 });
}

void TransactionManager::DecideAndReply(const std::string& xid, bool commit,
                                        std::string reason, bool wait,
                                        uint32_t wait_timeout_ms,
                                        Reply<v1::GlobalStatus> reply) {
  auto aborted = std::make_shared<bool>(false);
  Mutation mutate = [commit, reason, aborted, timeline = timeline_](
                        v1::Transaction* r, bool* changed) {
    v1::GlobalStatus before = r->status();
    if (r->protocol() == v1::PROTOCOL_SAGA) {
      if (commit) {
        return absl::FailedPreconditionError(fmt::format(
            "transaction {} is a saga: it commits by itself once every step "
            "succeeded",
            r->xid()));
      }
      absl::Status s = saga::RequestCompensation(r, reason, timeline->Now());
      *changed = r->status() != before;
      return s;
    }
    if (before == v1::GLOBAL_STATUS_BEGUN) {
      absl::Status fp = failpoint::Hit(commit ? "before_commit_decision"
                                              : "before_rollback_decision");
      if (!fp.ok()) return fp;
    }
    int64_t now = timeline->Now();
    absl::Status s = commit ? two_phase::DecideCommit(r, now)
                            : two_phase::DecideRollback(r, reason, now);
    *changed = r->status() != before;
    *aborted = commit && *changed && IsRollbackSide(r->status());
    return s;
  };
  // With wait, an ABORTED commit too answers once the rollback finished
  // (or the wait ran out), so the caller knows the branches let go.
  Done done = [this, aborted, wait, wait_timeout_ms, reply](
                  const absl::Status& s, const v1::Transaction& r) {
    if (!s.ok()) return reply(s, r.status());
    auto outcome = [aborted](const absl::Status& s,
                             const v1::Transaction& record) {
      return s.ok() && *aborted ? CommitAborted(record) : s;
    };
    if (!wait || IsTerminal(r.status()) || NeedsAttention(r.status())) {
      return reply(outcome(s, r), r.status());
    }
    AddWaiter(
        r.xid(), wait_timeout_ms,
        [reply, outcome](const absl::Status& s, const v1::Transaction& record) {
          reply(outcome(s, record), record.status());
        });
  };
  Mutate(xid, std::move(mutate), std::move(done));
}

void TransactionManager::StopWaiting() {
  std::lock_guard<std::mutex> lock(mu_);
  stopped_waiting_ = true;
  for (auto& [xid, t] : live_) {
    for (Waiter& w : t->waiters) w.reply(ShuttingDown(xid), t->record);
    t->waiters.clear();
  }
  waiter_deadlines_.clear();
}

absl::Status TransactionManager::ShuttingDown(const std::string& xid) {
  return absl::UnavailableError(fmt::format(
      "the coordinator is shutting down; the decision on {} stands: ask "
      "again",
      xid));
}

void TransactionManager::AddWaiter(const std::string& xid,
                                   uint32_t wait_timeout_ms, Done reply) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_waiting_) return reply(ShuttingDown(xid), v1::Transaction());
    LiveTransaction* t = FindLocked(xid);
    if (t != nullptr) {
      int64_t deadline =
          timeline_->Now() +
          (wait_timeout_ms == 0 ? kDefaultWaitMs : wait_timeout_ms);
      uint64_t id = next_waiter_id_++;
      t->waiters.push_back({id, deadline, std::move(reply)});
      waiter_deadlines_.emplace(deadline, std::make_pair(xid, id));
      return;
    }
  }
  // Finished between the decision and now: the store has the outcome.
  v1::Transaction record;
  absl::Status s = store_->Get(xid, &record);
  reply(s, record);
}

void TransactionManager::GetTransaction(const std::string& xid,
                                        Reply<v1::Transaction> reply) {
  Mutate(
      xid, [](v1::Transaction*, bool*) { return absl::OkStatus(); },
      [reply](const absl::Status& s, const v1::Transaction& r) {
        reply(s, r);
      });
}

void TransactionManager::RegisterBranch(
    const v1::RegisterBranchRequest& request,
    Reply<v1::RegisterBranchResponse> reply) {
  auto branch_id = std::make_shared<uint64_t>(0);
  two_phase::NewBranch branch{.resource = request.resource(),
                              .type = request.type(),
                              .application_data = request.application_data(),
                              .request_id = request.request_id(),
                              .instance_id = request.instance_id()};
  Mutate(
      request.xid(),
      [branch = std::move(branch), branch_id, timeline = timeline_](
          v1::Transaction* r, bool* changed) mutable {
        if (r->protocol() == v1::PROTOCOL_SAGA) {
          return absl::FailedPreconditionError(fmt::format(
              "transaction {} is a saga: its steps came with it and it takes "
              "no branches",
              r->xid()));
        }
        if (branch.type == v1::BRANCH_TYPE_UNSPECIFIED) {
          branch.type = two_phase::BranchTypeFor(r->protocol());
        }
        int before = r->branches_size();
        absl::StatusOr<uint64_t> id =
            two_phase::RegisterBranch(r, branch, timeline->Now());
        if (!id.ok()) return id.status();
        *branch_id = *id;
        *changed = r->branches_size() != before;
        return absl::OkStatus();
      },
      [reply, branch_id](const absl::Status& s, const v1::Transaction& r) {
        v1::RegisterBranchResponse response;
        response.set_branch_id(*branch_id);
        reply(s, response);
      });
}

void TransactionManager::ReportBranch(const v1::ReportBranchRequest& request,
                                      Reply<v1::ReportBranchResponse> reply) {
  uint64_t branch_id = request.branch_id();
  auto first = std::make_shared<bool>(false);  // For the fault point only.
  Mutate(
      request.xid(),
      [request, first, timeline = timeline_](v1::Transaction* r,
                                             bool* changed) {
        v1::Branch* b = two_phase::FindBranch(r, request.branch_id());
        v1::BranchStatus before =
            b == nullptr ? v1::BRANCH_STATUS_UNSPECIFIED : b->status();
        absl::Status s =
            two_phase::ReportPhaseOne(r, request.branch_id(), request.outcome(),
                                      request.error(), timeline->Now());
        *changed = *first = s.ok() && b->status() != before;
        return s;
      },
      [reply, branch_id, first](const absl::Status& s,
                                const v1::Transaction& r) {
        v1::ReportBranchResponse response;
        if (branch_id >= 1 &&
            branch_id <= static_cast<uint64_t>(r.branches_size())) {
          response.set_status(r.branches(branch_id - 1).status());
        }
        absl::Status fp = s.ok() && *first
                              ? failpoint::Hit("after_branch_report")
                              : absl::OkStatus();
        reply(fp.ok() ? s : fp, response);
      });
}

// ---------------------------------------------------------------------------
// Phase two.

void TransactionManager::StartPhaseTwoLocked(LiveTransaction* t) {
  t->phase_two_started = true;
  for (const two_phase::Command& c : two_phase::PendingCommands(t->record)) {
    DispatchLocked(t, c.branch_id, c.action, /*ignore_backoff=*/false);
  }
}

void TransactionManager::DispatchLocked(LiveTransaction* t, uint64_t branch_id,
                                        v1::BranchAction action,
                                        bool ignore_backoff) {
  if (t->record.paused()) return;  // Resume dispatches what is owed.
  Delivery& d = t->deliveries[branch_id];
  if (d.command_id != 0) return;
  const v1::Branch& b = t->record.branches(static_cast<int>(branch_id - 1));
  if (!ignore_backoff && b.next_retry_unix_ms() > timeline_->Now()) return;
  failpoint::Hit("before_branch_command").IgnoreError();
  v1::BranchCommand command;
  command.set_command_id(next_command_id_++);
  command.set_xid(t->record.xid());
  command.set_branch_id(branch_id);
  command.set_resource(b.resource());
  command.set_type(b.type());
  command.set_action(action);
  command.set_application_data(b.application_data());
  command.set_attempt(b.attempts() + 1);
  if (sink_->Send(command, b.instance_id())) {
    Metrics()
        .phase_two_attempts.With({b.resource(), ActionLabel(action)})
        ->Add();
    d.command_id = command.command_id();
    command_deadlines_.emplace(
        timeline_->Now() + options_.command_timeout_ms,
        CommandRef{t->record.xid(), branch_id, command.command_id()});
    return;
  }
  // OnResourcesAttached picks it up when a participant serves the resource.
  log_summary_.Log(
      spdlog::level::info, fmt::format("waiting for '{}'", b.resource()),
      fmt::format("xid={} branch {} waits for a participant serving '{}'",
                  t->record.xid(), branch_id, b.resource()));
}

// Sends the command phase two owes `branch_id` now, if any, regardless of
// backoff.
void TransactionManager::DispatchOwedLocked(LiveTransaction* t,
                                            uint64_t branch_id) {
  for (const two_phase::Command& c : two_phase::PendingCommands(t->record)) {
    if (c.branch_id == branch_id) {
      DispatchLocked(t, branch_id, c.action, /*ignore_backoff=*/true);
    }
  }
}

void TransactionManager::OnCommandResult(const v1::BranchResult& result) {
  std::lock_guard<std::mutex> lock(mu_);
  LiveTransaction* t = FindLocked(result.xid());
  if (t == nullptr) return;  // Already finished: a duplicate answer.
  if (t->record.protocol() == v1::PROTOCOL_SAGA) {
    return OnSagaResultLocked(t, result);
  }
  Delivery& d = t->deliveries[result.branch_id()];
  bool current = d.command_id == result.command_id();
  // A stale "done" is still the truth about the branch; a stale failure is not.
  if (!current && result.outcome() != v1::COMMAND_OUTCOME_DONE) return;
  if (current) d.command_id = 0;
  v1::Branch* b = two_phase::FindBranch(&t->record, result.branch_id());
  if (b == nullptr) return;
  v1::BranchStatus before = b->status();
  uint32_t attempts_before = b->attempts();
  v1::GlobalStatus global_before = t->record.status();
  absl::Status s = two_phase::ApplyCommandResult(
      &t->record, result.branch_id(), result.action(), result.outcome(),
      result.message(), timeline_->Now(), RetryDelayMs(b->attempts()));
  if (!s.ok()) {
    log_summary_.Log(
        spdlog::level::warn, "stale results",
        fmt::format("xid={} ignoring result: {}", result.xid(), s.ToString()));
    return;
  }
  if (b->status() == before && b->attempts() == attempts_before) return;
  if (result.outcome() != v1::COMMAND_OUTCOME_DONE) {
    Metrics()
        .phase_two_failures.With({b->resource(), ActionLabel(result.action())})
        ->Add();
    log_summary_.Log(
        spdlog::level::warn, fmt::format("failures at '{}'", b->resource()),
        fmt::format(
            "xid={} branch {} ({}) attempt {} failed{}: {}", result.xid(),
            result.branch_id(), b->resource(), b->attempts(),
            result.outcome() == v1::COMMAND_OUTCOME_FAILED
                ? " for good"
                : fmt::format(", retry in {} ms",
                              b->next_retry_unix_ms() - timeline_->Now()),
            result.message()));
  }
  // A DONE that leaves the transaction's status as it was rides along with
  // its next write, at the latest the final one: lost in a crash, it only
  // repeats that branch's phase two, which is idempotent. Saves a write per
  // branch but the last.
  if (result.outcome() == v1::COMMAND_OUTCOME_DONE &&
      t->record.status() == global_before) {
    t->unwritten = true;
    failpoint::Hit("branch_done_unwritten").IgnoreError();
    return;
  }
  PersistLocked(t, nullptr);
}

void TransactionManager::OnCommandLost(const std::string& xid,
                                       uint64_t branch_id,
                                       uint64_t command_id) {
  std::lock_guard<std::mutex> lock(mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr) return;
  if (t->record.protocol() == v1::PROTOCOL_SAGA) {
    return OnSagaCommandLostLocked(t, branch_id, command_id);
  }
  Delivery& d = t->deliveries[branch_id];
  if (d.command_id != command_id) return;
  d.command_id = 0;
  DispatchOwedLocked(t, branch_id);
}

void TransactionManager::OnResourcesAttached(
    const std::vector<std::string>& resources) {
  std::set<std::string> attached(resources.begin(), resources.end());
  std::lock_guard<std::mutex> lock(mu_);
  // A scan, not an index: attaches are rare and this keeps no extra state
  // to get wrong. Backoff is skipped: the participant is back now.
  for (auto& [xid, t] : live_) {
    if (t->record.protocol() == v1::PROTOCOL_SAGA) {
      if (t->resume_pending) continue;
      SendSagaOutboxLocked(t.get(), t->writes_durable);
      if (AdvanceSagaLocked(t.get())) PersistLocked(t.get(), nullptr);
      continue;
    }
    if (!t->phase_two_started) continue;
    for (const two_phase::Command& c : two_phase::PendingCommands(t->record)) {
      const v1::Branch& b =
          t->record.branches(static_cast<int>(c.branch_id - 1));
      if (attached.contains(b.resource())) {
        DispatchLocked(t.get(), c.branch_id, c.action, /*ignore_backoff=*/true);
      }
    }
  }
}

void TransactionManager::ResolveInDoubt(
    const std::string& instance_id,
    const std::vector<v1::InDoubtBranch>& branches) {
  std::vector<const v1::InDoubtBranch*> not_live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const v1::InDoubtBranch& branch : branches) {
      LiveTransaction* t = FindLocked(branch.xid());
      if (t == nullptr) {
        not_live.push_back(&branch);
      } else if (t->phase_two_started) {
        // Open transactions get their command once decided.
        DispatchOwedLocked(t, branch.branch_id());
      }
    }
  }
  for (const v1::InDoubtBranch* branch : not_live) {
    XidParts parts;
    if (!ParseXid(branch->xid(), &parts) || parts.node != options_.node_id) {
      continue;  // Another coordinator's transaction: not ours to decide.
    }
    v1::Transaction record;
    absl::Status s = store_->Get(branch->xid(), &record);
    if (!s.ok() && !absl::IsNotFound(s)) {
      spdlog::error("xid={} in-doubt lookup failed: {}", branch->xid(),
                    s.ToString());
      continue;
    }
    // Presumed abort: no record means no commit decision was ever durable.
    bool commit = s.ok() && IsCommitSide(record.status());
    log_summary_.Log(
        spdlog::level::info, "in doubt at " + instance_id,
        fmt::format("xid={} branch {} in doubt at {}: {}", branch->xid(),
                    branch->branch_id(), instance_id,
                    s.ok() ? GlobalStatusName(record.status())
                           : "unknown, presumed aborted"));
    // The branch's data goes along: TCC hooks need their action context.
    const v1::Branch* known =
        s.ok() ? two_phase::FindBranch(&record, branch->branch_id()) : nullptr;
    SendResolution(
        instance_id, *branch,
        commit ? v1::BRANCH_ACTION_COMMIT : v1::BRANCH_ACTION_ROLLBACK, known);
  }
}

void TransactionManager::SendResolution(const std::string& instance_id,
                                        const v1::InDoubtBranch& branch,
                                        v1::BranchAction action,
                                        const v1::Branch* known) {
  v1::BranchCommand command;
  {
    std::lock_guard<std::mutex> lock(mu_);
    command.set_command_id(next_command_id_++);
  }
  command.set_xid(branch.xid());
  command.set_branch_id(branch.branch_id());
  command.set_resource(branch.resource());
  command.set_action(action);
  command.set_attempt(1);
  if (known != nullptr) {
    command.set_type(known->type());
    command.set_application_data(known->application_data());
  }
  // Its answer finds no live transaction and is dropped; a lost command is
  // asked for again at the participant's next attach.
  sink_->Send(command, instance_id);
}

int64_t TransactionManager::RetryDelayMs(uint32_t attempts) {
  int64_t delay = options_.retry_initial_ms;
  for (uint32_t i = 0; i < attempts && delay < options_.retry_max_ms; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, options_.retry_max_ms);
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return std::max<int64_t>(1, static_cast<int64_t>(delay * jitter(rng)));
}

// ---------------------------------------------------------------------------
// Timed work and restart.

void TransactionManager::RunDue(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < options_.resume_per_tick && !to_resume_.empty(); ++i) {
    LiveTransaction* t = FindLocked(to_resume_.front());
    to_resume_.pop_front();
    if (t != nullptr) ResumeLocked(t);
  }
  while (!due_.empty() && due_.top().first <= now_ms) {
    auto [due, xid] = due_.top();
    due_.pop();
    LiveTransaction* t = FindLocked(xid);
    if (t == nullptr || t->record.next_action_unix_ms() != due) continue;
    if (t->record.protocol() == v1::PROTOCOL_SAGA) {
      if (!t->resume_pending) RunSagaTimersLocked(t, now_ms);
      continue;
    }
    if (two_phase::ExpireIfPastDeadline(&t->record, now_ms)) {
      log_summary_.Log(spdlog::level::warn, "timed out",
                       fmt::format("xid={} timed out; rolling back", xid));
      PersistLocked(t, nullptr);
      continue;
    }
    if (!t->phase_two_started) continue;
    if (two_phase::MarkStuckIfRetryWindowPassed(&t->record, now_ms,
                                                options_.retry_window_ms)) {
      log_summary_.Log(
          spdlog::level::err, "needs attention",
          fmt::format("xid={} needs attention: {}", xid, t->record.reason()));
      PersistLocked(t, nullptr);
    }
    RetryDueLocked(t, now_ms);
  }
  ExpireCommandsLocked(now_ms);
  ExpireWaitersLocked(now_ms);
  log_summary_.Flush();
}

// A command with no answer in time counts as a failed attempt; the retry
// goes wherever the resource is served then.
void TransactionManager::ExpireCommandsLocked(int64_t now_ms) {
  while (!command_deadlines_.empty() &&
         command_deadlines_.begin()->first <= now_ms) {
    CommandRef ref = command_deadlines_.begin()->second;
    command_deadlines_.erase(command_deadlines_.begin());
    LiveTransaction* t = FindLocked(ref.xid);
    if (t == nullptr) continue;
    Delivery& d = t->deliveries[ref.branch_id];
    if (d.command_id != ref.command_id) continue;
    d.command_id = 0;
    v1::Branch* b = two_phase::FindBranch(&t->record, ref.branch_id);
    for (const two_phase::Command& c : two_phase::PendingCommands(t->record)) {
      if (c.branch_id != ref.branch_id) continue;
      std::string why =
          fmt::format("no answer within {} ms", options_.command_timeout_ms);
      log_summary_.Log(spdlog::level::warn,
                       fmt::format("no answers from '{}'", b->resource()),
                       fmt::format("xid={} branch {} ({}): {}", ref.xid,
                                   ref.branch_id, b->resource(), why));
      Metrics()
          .phase_two_failures.With({b->resource(), ActionLabel(c.action)})
          ->Add();
      absl::Status s = two_phase::ApplyCommandResult(
          &t->record, ref.branch_id, c.action, v1::COMMAND_OUTCOME_RETRY, why,
          now_ms, RetryDelayMs(b->attempts()));
      if (!s.ok()) {
        spdlog::error("xid={} branch {}: cannot count the timeout: {}", ref.xid,
                      ref.branch_id, s.ToString());
        continue;
      }
      PersistLocked(t, nullptr);
    }
  }
}

void TransactionManager::RetryDueLocked(LiveTransaction* t, int64_t now_ms) {
  for (const two_phase::Command& c : two_phase::PendingCommands(t->record)) {
    const v1::Branch& b = t->record.branches(static_cast<int>(c.branch_id - 1));
    if (b.next_retry_unix_ms() != 0 && b.next_retry_unix_ms() <= now_ms) {
      DispatchLocked(t, c.branch_id, c.action, /*ignore_backoff=*/true);
    }
  }
}

void TransactionManager::ExpireWaitersLocked(int64_t now_ms) {
  while (!waiter_deadlines_.empty() &&
         waiter_deadlines_.begin()->first <= now_ms) {
    auto [xid, id] = waiter_deadlines_.begin()->second;
    waiter_deadlines_.erase(waiter_deadlines_.begin());
    LiveTransaction* t = FindLocked(xid);
    if (t == nullptr) continue;
    auto& waiters = t->waiters;
    for (auto it = waiters.begin(); it != waiters.end(); ++it) {
      if (it->id != id) continue;
      Done reply = std::move(it->reply);
      waiters.erase(it);
      AnswerFromRecordLocked(t, absl::OkStatus(), std::move(reply));
      break;
    }
  }
}

void TransactionManager::Adopt(v1::Transaction record) {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = std::make_unique<LiveTransaction>();
  t->persisted_due = record.next_action_unix_ms();
  t->record = std::move(record);
  // Written with the next change; until then a restart holds it again, to
  // the same effect.
  instants::CarryOver(&t->record, timeline_->Now(),
                      {.grace_ms = options_.restart_grace_ms,
                       .retry_max_ms = options_.retry_max_ms,
                       .retry_window_ms = options_.retry_window_ms});
  t->record.set_next_action_unix_ms(NextActionFor(t->record));
  const std::string xid = t->record.xid();
  if (!t->record.request_id().empty()) {
    xid_by_begin_request_.try_emplace(t->record.request_id(), xid);
  }
  LiveTransaction* raw = t.get();
  live_.emplace(xid, std::move(t));
  raw->resume_pending = true;
  raw->decision_durable = raw->record.status() != v1::GLOBAL_STATUS_BEGUN;
  to_resume_.push_back(xid);
  // Decided here, not when resumed, so no caller can commit it meanwhile. A
  // saga's caller only waits for it: it runs on.
  if (raw->record.status() == v1::GLOBAL_STATUS_BEGUN &&
      raw->record.protocol() != v1::PROTOCOL_SAGA) {
    log_summary_.Log(
        spdlog::level::warn, "open at restart",
        fmt::format(
            "xid={} was open when the coordinator stopped; rolling back", xid));
    absl::Status s = two_phase::DecideRollback(
        &raw->record, "coordinator restarted while it was open",
        timeline_->Now());
    if (!s.ok()) {
      spdlog::error("xid={} could not be rolled back at restart: {}", xid,
                    s.ToString());
    }
    PersistLocked(raw, nullptr);
  }
}

void TransactionManager::ResumeLocked(LiveTransaction* t) {
  const std::string& xid = t->record.xid();
  t->resume_pending = false;
  log_summary_.Log(spdlog::level::info, "resuming",
                   fmt::format("xid={} resuming {}", xid,
                               GlobalStatusName(t->record.status())));
  if (t->record.protocol() == v1::PROTOCOL_SAGA) {
    ResumeSagaLocked(t);
  } else if (t->decision_durable) {
    StartPhaseTwoLocked(t);
  }
  if (t->record.next_action_unix_ms() > 0) {
    due_.push({t->record.next_action_unix_ms(), xid});
  }
}

// ---------------------------------------------------------------------------
// Operator actions.

void TransactionManager::Operate(const std::string& xid, OperatorAction action,
                                 const operator_actions::Request& request,
                                 Reply<v1::Transaction> reply) {
  auto audited = std::make_shared<bool>(false);
  Mutation mutate = [action, request, audited, timeline = timeline_](
                        v1::Transaction* r, bool* changed) {
    int audits = r->audit_size();
    int64_t now = timeline->Now();
    absl::Status s;
    switch (action) {
      case OperatorAction::kForceCommit:
        s = operator_actions::ForceCommit(r, request, now);
        break;
      case OperatorAction::kForceRollback:
        s = operator_actions::ForceRollback(r, request, now);
        break;
      case OperatorAction::kRetry:
        s = operator_actions::RetryNow(r, request, now);
        break;
      case OperatorAction::kPause:
      case OperatorAction::kResume:
        s = operator_actions::SetPaused(r, action == OperatorAction::kPause,
                                        request, now);
        break;
    }
    *changed = *audited = r->audit_size() != audits;
    return s;
  };
  Done done = [this, reply, action, audited](const absl::Status& s,
                                             const v1::Transaction& r) {
    if (s.ok() && *audited) {
      const v1::AuditRecord& audit = *r.audit().rbegin();
      Metrics().operator_actions.With({audit.action()})->Add();
      spdlog::warn("xid={} operator {} ({}): {}; reason: {}", r.xid(),
                   audit.action(), audit.actor(), audit.detail(),
                   audit.reason());
    }
    if (s.ok() && (action == OperatorAction::kRetry ||
                   action == OperatorAction::kResume)) {
      Kick(r.xid());
    }
    reply(s, r);
  };
  Mutate(xid, std::move(mutate), std::move(done));
}

// Sends every owed command now, backoff or not.
void TransactionManager::Kick(const std::string& xid) {
  std::lock_guard<std::mutex> lock(mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr) return;
  if (t->record.protocol() == v1::PROTOCOL_SAGA) {
    if (AdvanceSagaLocked(t)) PersistLocked(t, nullptr);
    return;
  }
  if (!t->phase_two_started) return;
  for (const two_phase::Command& c : two_phase::PendingCommands(t->record)) {
    DispatchLocked(t, c.branch_id, c.action, /*ignore_backoff=*/true);
  }
}

void TransactionManager::Forget(const std::string& xid,
                                const operator_actions::Request& request,
                                Reply<v1::Transaction> reply) {
  std::unique_lock<std::mutex> lock(mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr) {
    lock.unlock();
    ForgetStored(xid, request, std::move(reply));
    return;
  }
  if (absl::Status s = operator_actions::CheckForgettable(t->record); !s.ok()) {
    AnswerWhenDurable(std::move(s), t->record, std::move(reply));
    return;
  }
  v1::Transaction tombstone = std::move(t->record);
  int64_t due = t->persisted_due;
  for (Waiter& w : t->waiters) {
    w.reply(absl::AbortedError(fmt::format(
                "transaction {} was forgotten by an operator", xid)),
            tombstone);
  }
  ForgetRequestIdLocked(tombstone);
  // Gone from memory before the delete is queued, so no later change of this
  // transaction can be written after it and bring the record back.
  live_.erase(xid);
  operator_actions::AppendAudit(&tombstone, "forget", request, "record dropped",
                                timeline_->Now());
  SubmitForget(std::move(tombstone), due, std::move(reply));
}

void TransactionManager::ForgetStored(const std::string& xid,
                                      const operator_actions::Request& request,
                                      Reply<v1::Transaction> reply) {
  v1::Transaction record;
  absl::Status s = store_->Get(xid, &record);
  if (absl::IsNotFound(s)) s = NotFound(xid);
  // As in MutateStored: the loader may adopt it any moment, and would bring
  // back what was deleted.
  if (s.ok() && !IsTerminal(record.status())) {
    s = absl::UnavailableError(fmt::format(
        "transaction {} is still being loaded after a restart; retry shortly",
        xid));
  }
  if (s.ok()) s = operator_actions::CheckForgettable(record);
  if (!s.ok()) return reply(s, record);
  operator_actions::AppendAudit(&record, "forget", request, "record dropped",
                                timeline_->Now());
  SubmitForget(std::move(record), /*unfinished_due=*/-1, std::move(reply));
}

void TransactionManager::SubmitForget(v1::Transaction tombstone,
                                      int64_t unfinished_due,
                                      Reply<v1::Transaction> reply) {
  Metrics().operator_actions.With({"forget"})->Add();
  spdlog::warn("xid={} forgotten by an operator ({}); reason: {}",
               tombstone.xid(), tombstone.audit().rbegin()->actor(),
               tombstone.audit().rbegin()->reason());
  StoreBatch batch;
  batch.DeleteTransaction(tombstone.xid(), tombstone.finished_unix_ms(),
                          unfinished_due);
  batch.PutMeta(kForgottenPrefix + tombstone.xid(),
                tombstone.SerializeAsString());
  if (std::string key = SagaRequestKey(tombstone); !key.empty()) {
    batch.DeleteMeta(key);
  }
  committer_->Submit(
      std::move(batch),
      [tombstone = std::move(tombstone), reply = std::move(reply)](
          const absl::Status& s) { reply(s, tombstone); });
}

TransactionManager::Summary TransactionManager::Summarize() const {
  Summary summary;
  const int64_t now = timeline_->Now();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [xid, t] : live_) {
    const v1::Transaction& r = t->record;
    ++summary.counts[{r.status(), r.protocol()}];
    if (summary.oldest_xid.empty() ||
        r.begun_unix_ms() < summary.oldest_begun_unix_ms) {
      summary.oldest_xid = xid;
      summary.oldest_begun_unix_ms = r.begun_unix_ms();
    }
    if (r.protocol() == v1::PROTOCOL_SAGA) {
      summary.retry_backlog += saga::Backlog(r, now);
      continue;
    }
    for (const two_phase::Command& c : two_phase::PendingCommands(r)) {
      auto d = t->deliveries.find(c.branch_id);
      if (d == t->deliveries.end() || d->second.command_id == 0) {
        ++summary.retry_backlog;
      }
    }
  }
  return summary;
}

std::vector<v1::Transaction> TransactionManager::CopyLive(
    const std::function<bool(const v1::Transaction&)>& match) const {
  std::vector<v1::Transaction> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [xid, t] : live_) {
    if (match(t->record)) out.push_back(t->record);
  }
  return out;
}

size_t TransactionManager::LiveCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

}  // namespace baton
