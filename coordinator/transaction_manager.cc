#include "coordinator/transaction_manager.h"

#include <future>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "common/failpoint.h"
#include "common/stable_hash.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/xid.h"
#include "fmt/format.h"
#include "protocols/instants.h"
#include "protocols/transitions.h"
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

}  // namespace

TransactionManager::TransactionManager(const ManagerOptions& options,
                                       GroupCommitter* committer,
                                       TransactionStore* store,
                                       CommandSink* sink, ManagerHooks hooks)
    : options_(options),
      timeline_(options.timeline != nullptr ? options.timeline
                                            : SystemTimeline()),
      committer_(committer),
      store_(store),
      sink_(sink),
      hooks_(std::move(hooks)),
      backoff_(options.retry_initial_ms, options.retry_max_ms),
      two_phase_({.retry_window_ms = options.retry_window_ms,
                  .command_timeout_ms = options.command_timeout_ms},
                 &backoff_, &log_summary_),
      saga_({.retry_window_ms = options.retry_window_ms}, sink, &log_summary_),
      drivers_{.two_phase = &two_phase_, .saga = &saga_} {}

TransactionManager::~TransactionManager() = default;

absl::Status TransactionManager::Init() {
  if (options_.leased_shards) {
    MakeTables();
    for (const auto& table : tables_) table->set_serving(false);
    spdlog::info("shards {}..{} are served while leased here", options_.node_id,
                 options_.node_id + tables_.size() - 1);
    return LoadDraining();
  }
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
  if (!s.ok()) return s;
  MakeTables();
  spdlog::info("coordinator epoch {}, hosting shard(s) {}..{}", epoch_,
               options_.node_id, options_.node_id + tables_.size() - 1);
  return LoadDraining();
}

void TransactionManager::MakeTables() {
  for (uint32_t i = 0; i < std::max<uint32_t>(1, options_.shards); ++i) {
    uint32_t shard = options_.node_id + i;
    tables_.push_back(std::make_unique<TransactionTable>(
        TransactionTable::Options{.shard = shard,
                                  .epoch = epoch_,
                                  .first_command_id = (uint64_t{i} << 48) + 1,
                                  .timeline = timeline_,
                                  .committer = committer_,
                                  .sink = sink_,
                                  .wakeups = hooks_.wakeups(shard),
                                  .drivers = drivers_,
                                  .log_summary = &log_summary_}));
  }
}

TransactionTable* TransactionManager::TableFor(const std::string& xid) const {
  XidParts parts;
  if (!ParseXid(xid, &parts)) return nullptr;
  TransactionTable* table = HostedTable(parts.node);
  return table != nullptr && table->serving() ? table : nullptr;
}

TransactionTable* TransactionManager::HostedTable(uint32_t shard) const {
  if (shard < options_.node_id || shard - options_.node_id >= tables_.size()) {
    return nullptr;
  }
  return tables_[shard - options_.node_id].get();
}

void TransactionManager::DropShard(uint32_t shard) {
  if (TransactionTable* table = HostedTable(shard)) table->Drop();
}

void TransactionManager::ServeShard(uint32_t shard, uint64_t epoch) {
  TransactionTable* table = HostedTable(shard);
  if (table == nullptr) return;
  // A drain outlives a move: the mark is the shard's, in the store.
  table->set_draining(ShardDrainingInStore(shard));
  table->Serve(epoch);
}

// A key always lands on the same shard, in this process and the next (a
// hash salted per process would not do), and in a cluster on the same shard
// whichever node it reaches first, so a retry finds what the first call
// started without any lock shared across shards or nodes.
absl::StatusOr<TransactionTable*> TransactionManager::TableForNew(
    const std::string& request_id) {
  size_t n = tables_.size();
  if (request_id.empty()) {
    size_t first = next_table_.fetch_add(1, std::memory_order_relaxed);
    bool serving = false;
    for (size_t i = 0; i < n; ++i) {
      TransactionTable* table = tables_[(first + i) % n].get();
      serving |= table->serving();
      if (table->serving() && !table->draining()) return table;
    }
    if (!serving) {
      return absl::UnavailableError(
          "this node serves no shard now (their leases are other nodes'): "
          "begin on another node");
    }
    return absl::FailedPreconditionError(
        "every shard this node hosts is draining and takes no new "
        "transactions: begin on another node");
  }
  std::optional<uint32_t> shard;
  if (options_.directory != nullptr) {
    shard = options_.directory->ShardForKey(request_id);
  }
  if (!shard) return tables_[StableHash(request_id) % n].get();
  if (TransactionTable* table = HostedTable(*shard);
      table != nullptr && table->serving()) {
    return table;
  }
  v1::WrongShard refusal;
  refusal.set_shard(*shard);
  if (auto owner = options_.directory->Elsewhere(*shard)) refusal = *owner;
  return WrongShardForKeyError(request_id, refusal);
}

absl::Status TransactionManager::Adopt(v1::Transaction record) {
  XidParts parts;
  TransactionTable* table =
      ParseXid(record.xid(), &parts) ? HostedTable(parts.node) : nullptr;
  if (table == nullptr) {
    return absl::FailedPreconditionError(fmt::format(
        "the data dir holds unfinished transaction {}, whose shard this "
        "batond does not host (it hosts {} shard(s) from {}); start it with "
        "--node-id and --shards covering that shard until it is drained",
        record.xid(), tables_.size(), options_.node_id));
  }
  // Written with the next change; until then a restart holds it again, to
  // the same effect.
  instants::CarryOver(&record, timeline_->Now(),
                      {.grace_ms = options_.restart_grace_ms,
                       .retry_max_ms = options_.retry_max_ms,
                       .retry_window_ms = options_.retry_window_ms});
  return table->Adopt(std::move(record));
}

void TransactionManager::AnswerWhenDurable(absl::Status status,
                                           v1::Transaction snapshot,
                                           Done done) {
  baton::AnswerWhenDurable(committer_, std::move(status), std::move(snapshot),
                           std::move(done));
}

// ---------------------------------------------------------------------------
// Generic read-modify-write of one transaction.

void TransactionManager::Mutate(const std::string& xid,
                                TransactionTable::Change change, Done done) {
  TransactionTable* table = TableFor(xid);
  if (table != nullptr && table->Apply(xid, change, done)) return;
  if (table == nullptr) {
    if (std::optional<absl::Status> refused = Elsewhere(xid)) {
      return done(*refused, v1::Transaction());
    }
  }
  store_reads_.Post(
      [this, xid, change = std::move(change), done = std::move(done)] {
        MutateStored(xid, change, done);
      });
}

std::optional<absl::Status> TransactionManager::Elsewhere(
    const std::string& xid) const {
  XidParts parts;
  if (options_.directory == nullptr || !ParseXid(xid, &parts)) {
    return std::nullopt;
  }
  std::optional<v1::WrongShard> refusal =
      options_.directory->Elsewhere(parts.node);
  if (!refusal) return std::nullopt;
  return WrongShardError(xid, *refusal);
}

// Terminal records live only in the store and never change again, so the
// change runs on a copy and only its verdict matters. An unfinished record
// outside memory is one a restart has not adopted yet (the server listens
// while recovery loads): changing a copy would acknowledge what is never
// written, so the caller is asked to retry.
void TransactionManager::MutateStored(const std::string& xid,
                                      const TransactionTable::Change& change,
                                      const Done& done) {
  LiveTransaction copy;
  absl::Status s = store_->Get(xid, &copy.record);
  if (absl::IsNotFound(s)) s = NotFound(xid);
  if (s.ok() && !IsTerminal(copy.record.status())) {
    s = absl::UnavailableError(fmt::format(
        "transaction {} is still being loaded after a restart; retry shortly",
        xid));
  }
  if (s.ok()) {
    Effects ignored;
    s = change(&copy, timeline_->Now(), &ignored);
  }
  done(s, copy.record);
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

absl::Status TransactionManager::NewRecord(v1::Transaction* r, int64_t now,
                                           const std::string& name,
                                           v1::Protocol protocol,
                                           uint32_t timeout_ms) const {
  if (timeout_ms == 0) timeout_ms = options_.default_timeout_ms;
  r->set_name(name);
  r->set_protocol(protocol);
  r->set_status(v1::GLOBAL_STATUS_BEGUN);
  r->set_begun_unix_ms(now);
  r->set_deadline_unix_ms(now + timeout_ms);
  r->set_timeout_ms(timeout_ms);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Caller calls.

void TransactionManager::Begin(const v1::BeginRequest& request,
                               Reply<v1::BeginResponse> reply) {
  v1::Protocol protocol = request.protocol() == v1::PROTOCOL_UNSPECIFIED
                              ? v1::PROTOCOL_TWO_PHASE
                              : request.protocol();
  absl::StatusOr<TransactionTable*> table = TableForNew(request.request_id());
  if (!table.ok()) return reply(table.status(), v1::BeginResponse());
  (*table)->Create(
      request.request_id(), /*reserved=*/false,
      [this, &request, protocol](v1::Transaction* r, int64_t now) {
        spdlog::debug("xid={} begun: {}", r->xid(), request.name());
        return NewRecord(r, now, request.name(), protocol,
                         request.timeout_ms());
      },
      [&request, protocol](const v1::Transaction& existing) {
        return existing.protocol() == protocol
                   ? absl::OkStatus()
                   : KeyTaken(request.request_id(), existing);
      },
      [reply](const absl::Status& s, const v1::Transaction& r) {
        v1::BeginResponse response;
        response.set_xid(r.xid());
        response.set_deadline_unix_ms(r.deadline_unix_ms());
        reply(s, response);
      });
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
  TransactionTable::Change change = [this, commit, reason, aborted](
                                        LiveTransaction* t, int64_t now,
                                        Effects* fx) {
    v1::Transaction* r = &t->record;
    v1::GlobalStatus before = r->status();
    absl::Status s = DriverFor(*r)->Decide(r, commit, reason, now);
    bool changed = r->status() != before;
    if (changed) fx->WriteHeader();
    *aborted = commit && changed && IsRollbackSide(r->status());
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
  Mutate(xid, std::move(change), std::move(done));
}

void TransactionManager::AddWaiter(const std::string& xid,
                                   uint32_t wait_timeout_ms, Done reply) {
  int64_t deadline = timeline_->Now() +
                     (wait_timeout_ms == 0 ? kDefaultWaitMs : wait_timeout_ms);
  TransactionTable* table = TableFor(xid);
  if (table != nullptr && table->AddWaiter(xid, deadline, reply)) return;
  // Finished between the decision and now: the store has the outcome.
  store_reads_.Post([this, xid, reply = std::move(reply)] {
    v1::Transaction record;
    absl::Status s = store_->Get(xid, &record);
    reply(s, record);
  });
}

void TransactionManager::StopWaiting() {
  for (auto& table : tables_) table->StopWaiting();
}

void TransactionManager::GetTransaction(const std::string& xid,
                                        Reply<v1::Transaction> reply) {
  Mutate(
      xid, [](LiveTransaction*, int64_t, Effects*) { return absl::OkStatus(); },
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
      [this, branch = std::move(branch), branch_id](LiveTransaction* t,
                                                    int64_t now, Effects* fx) {
        int before = t->record.branches_size();
        absl::StatusOr<uint64_t> id =
            DriverFor(t->record)->RegisterBranch(&t->record, branch, now);
        if (!id.ok()) return id.status();
        *branch_id = *id;
        if (t->record.branches_size() != before) fx->WriteBranch(*id);
        return absl::OkStatus();
      },
      [reply, branch_id](const absl::Status& s, const v1::Transaction&) {
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
      [this, request, first](LiveTransaction* t, int64_t now, Effects* fx) {
        v1::Branch* b = two_phase::FindBranch(&t->record, request.branch_id());
        v1::BranchStatus before =
            b == nullptr ? v1::BRANCH_STATUS_UNSPECIFIED : b->status();
        absl::Status s =
            DriverFor(t->record)->ReportBranch(&t->record, request, now);
        *first = s.ok() && b != nullptr && b->status() != before;
        if (*first) fx->WriteBranch(request.branch_id());
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
// Participant events.

void TransactionManager::OnCommandResult(const v1::BranchResult& result) {
  TransactionTable* table = TableFor(result.xid());
  if (table == nullptr) return;
  // Not live: already finished, and this is a duplicate answer.
  table->Handle(
      result.xid(), [&result](ProtocolDriver* driver, LiveTransaction* t,
                              int64_t now, Effects* fx) {
        LiveTransaction::Delivery& d = t->deliveries[result.branch_id()];
        bool current = d.command_id == result.command_id();
        // A stale "done" is still the truth about the branch; a stale failure
        // is not.
        if (!current && result.outcome() != v1::COMMAND_OUTCOME_DONE) return;
        if (current) d.command_id = 0;
        driver->OnResult(t, result, now, fx);
      });
}

void TransactionManager::OnCommandLost(const std::string& xid,
                                       uint64_t branch_id,
                                       uint64_t command_id) {
  TransactionTable* table = TableFor(xid);
  if (table == nullptr) return;
  table->Handle(
      xid, [branch_id, command_id](ProtocolDriver* driver, LiveTransaction* t,
                                   int64_t now, Effects* fx) {
        LiveTransaction::Delivery& d = t->deliveries[branch_id];
        if (d.command_id != command_id) return;
        d.command_id = 0;
        driver->OnLost(t, branch_id, now, fx);
      });
}

// A scan, not an index: attaches are rare and this keeps no extra state to
// get wrong. It goes a page at a time, so calls on the shard go on between.
void TransactionManager::OnResourcesAttached(
    const std::vector<std::string>& resources) {
  std::set<std::string> attached(resources.begin(), resources.end());
  for (auto& table : tables_) {
    std::string after;
    do {
      after = table->HandlePage(
          after, kScanPage,
          [&attached](ProtocolDriver* driver, LiveTransaction* t, int64_t now,
                      Effects* fx) {
            driver->OnAttached(t, attached, now, fx);
          });
    } while (!after.empty());
  }
}

void TransactionManager::ResolveInDoubt(
    const std::string& instance_id,
    const std::vector<v1::InDoubtBranch>& branches) {
  std::vector<v1::InDoubtBranch> not_live;
  for (const v1::InDoubtBranch& branch : branches) {
    TransactionTable* table = TableFor(branch.xid());
    if (table == nullptr) continue;  // Another coordinator's: not ours.
    bool live = table->Handle(
        branch.xid(), [&branch](ProtocolDriver* driver, LiveTransaction* t,
                                int64_t now, Effects* fx) {
          driver->OnInDoubt(t, branch.branch_id(), now, fx);
        });
    if (!live) not_live.push_back(branch);
  }
  if (!not_live.empty())
    hooks_.in_doubt->Resolve(instance_id, std::move(not_live));
}

}  // namespace baton
