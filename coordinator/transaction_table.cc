#include "coordinator/transaction_table.h"

#include <algorithm>
#include <utility>

#include "common/wrong_shard.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/xid.h"
#include "fmt/format.h"
#include "protocols/transitions.h"
#include "spdlog/spdlog.h"

namespace baton {
void TransactionTable::RunAll(Deferred* deferred) {
  for (auto& call : *deferred) call();
  deferred->clear();
}

TransactionTable::TransactionTable(const Options& options)
    : options_(options),
      epoch_(options.epoch),
      next_command_id_(options.first_command_id) {}

LiveTransaction* TransactionTable::FindLocked(const std::string& xid) {
  std::optional<RecordKey> key = RecordKeyOf(xid);
  return key ? FindLocked(*key) : nullptr;
}

LiveTransaction* TransactionTable::FindLocked(RecordKey key) {
  auto it = live_.find(key);
  return it == live_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------
// Durability plumbing.

void TransactionTable::PersistLocked(LiveTransaction* t, Done done) {
  v1::Transaction& r = t->record;
  ProtocolDriver* driver = DriverLocked(*t);
  r.set_next_action_unix_ms(driver->NextActionTime(r));
  uint64_t write = ++t->writes_queued;
  StoreBatch batch;
  std::string durable_key = driver->DurableKey(r);
  if (write == 1 && !durable_key.empty()) batch.PutMeta(durable_key, r.xid());
  batch.PutTransactionParts(
      &r, t->persisted_due,
      IsTerminal(r.status()) ? std::move(durable_key) : "",
      {.all_branches = t->dirty_all,
       .branches = std::move(t->dirty_branches),
       .definition = !t->definition_stored});
  t->dirty_all = false;
  t->dirty_branches.clear();
  t->definition_stored = true;
  if (r.next_action_unix_ms() > 0 &&
      r.next_action_unix_ms() != t->persisted_due && !t->resume_pending) {
    options_.wakeups->WakeAt(t->key, r.next_action_unix_ms());
  }
  t->persisted_due = IsTerminal(r.status()) ? -1 : r.next_action_unix_ms();
  t->unwritten = false;
  // Only a caller's reply needs the whole record as it was written.
  std::shared_ptr<v1::Transaction> snapshot;
  if (done) snapshot = std::make_shared<v1::Transaction>(r);
  options_.committer->Submit(
      std::move(batch),
      [this, key = t->key, status = r.status(), write, snapshot,
       generation = generation_.load(std::memory_order_acquire),
       done = std::move(done)](const absl::Status& s) {
        // A write from before the shard was dropped speaks for a record
        // this holding of it does not have.
        const bool current =
            generation == generation_.load(std::memory_order_acquire);
        if (s.ok()) {
          if (current) OnDurable(key, status, write);
        } else if (IsShardNotLeased(s)) {
          // Memory is ahead of what the store will ever hold: nothing more
          // may be answered from it.
          if (current) Drop();
        } else {
          options_.log_summary->Log(
              spdlog::level::critical, "not durable",
              fmt::format("xid={} not durable: {}",
                          FormatXid({options_.shard, key.epoch, key.sequence}),
                          s.ToString()));
        }
        // Its caller asks again, and finds the shard's new owner.
        if (done) {
          done(IsShardNotLeased(s) ? Moved(snapshot->xid()) : s, *snapshot);
        }
      });
}

void AnswerWhenDurable(GroupCommitter* committer, absl::Status status,
                       v1::Transaction snapshot, Done done) {
  committer->Submit(StoreBatch(),
                    [status = std::move(status), snapshot = std::move(snapshot),
                     done = std::move(done)](const absl::Status& s) {
                      done(s.ok() ? status : s, snapshot);
                    });
}

// As AnswerWhenDurable, unless the shard was dropped before the barrier
// came through: a write before it may have been refused, so what the answer
// shows may never be durable.
void TransactionTable::AnswerWhenHeldDurable(absl::Status status,
                                             v1::Transaction snapshot,
                                             Done done) {
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  AnswerWhenDurable(
      options_.committer, std::move(status), std::move(snapshot),
      [this, generation, done = std::move(done)](const absl::Status& s,
                                                 const v1::Transaction& r) {
        if (s.ok() &&
            generation != generation_.load(std::memory_order_acquire)) {
          return done(Moved(r.xid()), r);
        }
        done(s, r);
      });
}

absl::Status TransactionTable::Moved(const std::string& xid) {
  return absl::UnavailableError(fmt::format(
      "transaction {}: its shard moved to another node; ask again there", xid));
}

// Everything an answer reveals must be on disk first: a barrier covers
// what queued writes carry, and a change none carries gets its own write.
void TransactionTable::AnswerFromRecordLocked(LiveTransaction* t,
                                              absl::Status status, Done done) {
  if (!t->unwritten) {
    return AnswerWhenHeldDurable(std::move(status), t->record, std::move(done));
  }
  PersistLocked(t, [status = std::move(status), done = std::move(done)](
                       const absl::Status& s, const v1::Transaction& r) {
    done(s.ok() ? status : s, r);
  });
}

void TransactionTable::FinishChangeLocked(LiveTransaction* t, Effects fx,
                                          absl::Status status, Done done,
                                          int64_t now) {
  if (status.ok() && fx.writes()) {
    DriverLocked(*t)->Advance(t, now, &fx);
    if (fx.persist) t->dirty_all = true;
    t->dirty_branches.insert(t->dirty_branches.end(), fx.branches.begin(),
                             fx.branches.end());
    PersistLocked(t, std::move(done));
  } else if (done) {
    AnswerFromRecordLocked(t, std::move(status), std::move(done));
  }
  for (Outgoing& o : fx.send) {
    std::erase_if(t->outbox, [&o](const Outgoing& queued) {
      return queued.branch_id == o.branch_id;
    });
    o.after_write = t->writes_queued;
    t->outbox.push_back(o);
  }
  ReleaseLocked(t, now);
}

// Runs once the state `status` of xid is on disk.
void TransactionTable::OnDurable(RecordKey record, v1::GlobalStatus status,
                                 uint64_t write) {
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    LiveTransaction* t = FindLocked(record);
    if (t == nullptr) return;
    int64_t now = options_.timeline->Now();
    t->writes_durable = std::max(t->writes_durable, write);
    Effects fx;
    DriverLocked(*t)->OnDurable(t, status, now, &fx);
    if (status != v1::GLOBAL_STATUS_BEGUN) t->decision_durable = true;
    FinishChangeLocked(t, std::move(fx), absl::OkStatus(), nullptr, now);
    if (IsTerminal(status) || NeedsAttention(status)) {
      for (LiveTransaction::Waiter& w : t->waiters) {
        if (IsTerminal(status)) {
          // A terminal record never changes again: memory is the disk.
          deferred.push_back([reply = std::move(w.reply), r = t->record] {
            reply(absl::OkStatus(), r);
          });
        } else {
          AnswerFromRecordLocked(t, absl::OkStatus(), std::move(w.reply));
        }
      }
      t->waiters.clear();
    }
    if (IsTerminal(status)) FinishLocked(t);
  }
  RunAll(&deferred);
}

// Sends each queued command whose write is durable; one that no participant
// can take now waits for the next attach.
void TransactionTable::ReleaseLocked(LiveTransaction* t, int64_t now) {
  if (t->resume_pending || t->outbox.empty()) return;
  ProtocolDriver* driver = DriverLocked(*t);
  std::vector<Outgoing> kept;
  for (const Outgoing& o : t->outbox) {
    if (o.after_write > t->writes_durable) {
      kept.push_back(o);
      continue;
    }
    ProtocolDriver::Release release = driver->Prepare(*t, o, now);
    if (release.kind == ProtocolDriver::Release::kDrop) continue;
    if (release.kind == ProtocolDriver::Release::kSend) {
      v1::BranchCommand& command = release.command;
      command.set_command_id(next_command_id_++);
      if (options_.sink->Send(command, release.instance)) {
        Metrics()
            .phase_two_attempts
            .With({command.resource(), release.attempt_label})
            ->Add();
        LiveTransaction::Delivery& d = t->deliveries[o.branch_id];
        d.command_id = command.command_id();
        d.overdue_ms =
            release.answer_within_ms > 0 ? now + release.answer_within_ms : 0;
        if (d.overdue_ms > 0) {
          options_.wakeups->WakeAt(t->key, d.overdue_ms);
        }
        continue;
      }
      // Served, but every stream serving it has a full queue (see
      // StreamLimits): no attach will come to wake this, so a timer does.
      const bool queues_full = options_.sink->Serves(command.resource());
      if (queues_full) {
        options_.wakeups->WakeAt(t->key, now + kFullQueueRetryMs);
      }
      options_.log_summary->Log(
          spdlog::level::info,
          fmt::format("{} '{}'",
                      queues_full ? "queues full for" : "waiting for",
                      command.resource()),
          fmt::format("xid={} branch {} waits {} '{}'", t->record.xid(),
                      o.branch_id,
                      queues_full ? "for room: every participant has a full "
                                    "queue serving"
                                  : "for a participant serving",
                      command.resource()));
    }
    kept.push_back(o);
  }
  t->outbox.swap(kept);
}

// Only if the key is still this record's: a restart may load one whose
// key a new Create took meanwhile.
void TransactionTable::ForgetKeyLocked(const v1::Transaction& r) {
  auto it = xid_by_key_.find(r.request_id());
  if (it != xid_by_key_.end() && it->second == r.xid()) xid_by_key_.erase(it);
}

void TransactionTable::KeepUnclaimedKeyLocked(const v1::Transaction& r) {
  if (r.request_id().empty() || r.protocol() == v1::PROTOCOL_SAGA ||
      r.status() != v1::GLOBAL_STATUS_ROLLED_BACK || r.branches_size() > 0) {
    return;
  }
  if (!unclaimed_.insert_or_assign(r.request_id(), r).second) return;
  unclaimed_order_.push_back(r.request_id());
  if (unclaimed_order_.size() > kMaxUnclaimedKeys) {
    unclaimed_.erase(unclaimed_order_.front());
    unclaimed_order_.pop_front();
  }
}

void TransactionTable::FinishLocked(LiveTransaction* t) {
  const v1::Transaction& r = t->record;
  // A line per commit would be a flushed write per transaction; rollbacks
  // are rarer and worth seeing by default. A line nobody logs is not even
  // formatted: this runs once per transaction.
  bool committed = r.status() == v1::GLOBAL_STATUS_COMMITTED;
  if (!committed || spdlog::should_log(spdlog::level::debug)) {
    std::string line =
        fmt::format("xid={} {} with {} branch(es)", r.xid(),
                    GlobalStatusName(r.status()), r.branches_size());
    if (committed) {
      spdlog::debug("{}", line);
    } else {
      options_.log_summary->Log(spdlog::level::info, "rolled back",
                                std::move(line));
    }
  }
  metrics::LabelValues labels = {ProtocolLabel(r.protocol()),
                                 committed ? "committed" : "rolled_back"};
  Metrics().finished.With(labels)->Add();
  Metrics().transaction_seconds.With(labels)->Observe(
      (r.finished_unix_ms() - r.begun_unix_ms()) / 1000.0);
  ForgetKeyLocked(r);
  KeepUnclaimedKeyLocked(r);
  options_.wakeups->Forget(t->key);
  const RecordKey key = t->key;  // *t goes with the erase.
  live_.erase(key);
}

// ---------------------------------------------------------------------------
// Calls.

absl::Status TransactionTable::DrainingRefusal() const {
  v1::WrongShard refusal;
  refusal.set_shard(options_.shard);
  refusal.set_draining(true);
  return WithWrongShard(
      absl::FailedPreconditionError(fmt::format(
          "shard {} is draining and takes no new transactions: begin with "
          "another idempotency key, which picks another shard",
          options_.shard)),
      refusal);
}

void TransactionTable::Create(const std::string& request_id, bool reserved,
                              const Init& init, const OnExisting& on_existing,
                              Done done) {
  Deferred deferred;
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    // Dropped while the call was on its way: no record may outlive that.
    if (!serving()) {
      refused = absl::UnavailableError(fmt::format(
          "shard {} moved to another node; begin again", options_.shard));
    } else if (!request_id.empty()) {
      if (reserved) reserved_keys_.erase(request_id);
      auto it = xid_by_key_.find(request_id);
      const v1::Transaction* existing = nullptr;
      if (it != xid_by_key_.end()) {
        existing = &FindLocked(it->second)->record;
      } else if (auto gone = unclaimed_.find(request_id);
                 gone != unclaimed_.end()) {
        existing = &gone->second;
      }
      if (existing != nullptr) {
        AnswerWhenHeldDurable(on_existing(*existing), *existing,
                              std::move(done));
        return;
      }
      if (draining()) refused = DrainingRefusal();
    }
    if (refused.ok()) {
      auto t = std::make_unique<LiveTransaction>();
      v1::Transaction& r = t->record;
      t->key = {epoch_, ++next_sequence_};
      r.set_xid(FormatXid({options_.shard, t->key.epoch, t->key.sequence}));
      r.set_request_id(request_id);
      const int64_t now = options_.timeline->Now();
      if (absl::Status s = init(&r, now); !s.ok()) {
        deferred.push_back([done = std::move(done), s, r] { done(s, r); });
      } else {
        if (!request_id.empty()) xid_by_key_[request_id] = r.xid();
        Metrics().begun.With({ProtocolLabel(r.protocol())})->Add();
        LiveTransaction* raw = t.get();
        live_.emplace(raw->key, std::move(t));
        Effects fx;
        fx.persist = true;
        FinishChangeLocked(raw, std::move(fx), absl::OkStatus(),
                           std::move(done), now);
      }
    }
  }
  if (!refused.ok()) return done(refused, v1::Transaction());
  RunAll(&deferred);
}

TransactionTable::KeyState TransactionTable::ReserveKey(
    const std::string& key, v1::Transaction* existing) {
  absl::MutexLock lock(&mu_);
  auto it = xid_by_key_.find(key);
  if (it != xid_by_key_.end()) {
    *existing = FindLocked(it->second)->record;
    return KeyState::kLive;
  }
  if (!reserved_keys_.insert(key).second) return KeyState::kReserved;
  return KeyState::kFree;
}

void TransactionTable::Unreserve(const std::string& key) {
  absl::MutexLock lock(&mu_);
  reserved_keys_.erase(key);
}

bool TransactionTable::Apply(const std::string& xid, const Change& change,
                             Done done) {
  absl::MutexLock lock(&mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr) return false;
  const int64_t now = options_.timeline->Now();
  Effects fx;
  absl::Status s = change(t, now, &fx);
  FinishChangeLocked(t, std::move(fx), std::move(s), std::move(done), now);
  return true;
}

bool TransactionTable::Handle(const std::string& xid, const Event& event) {
  absl::MutexLock lock(&mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr) return false;
  const int64_t now = options_.timeline->Now();
  Effects fx;
  event(DriverLocked(*t), t, now, &fx);
  FinishChangeLocked(t, std::move(fx), absl::OkStatus(), nullptr, now);
  return true;
}

TransactionTable::LiveMap::const_iterator TransactionTable::PageStartLocked(
    const std::string& after) const {
  if (after.empty()) return live_.begin();
  std::optional<RecordKey> key = RecordKeyOf(after);
  return key ? live_.upper_bound(*key) : live_.end();
}

std::string TransactionTable::HandlePage(const std::string& after, size_t limit,
                                         const Event& event) {
  absl::MutexLock lock(&mu_);
  int64_t now = options_.timeline->Now();
  std::string last;
  size_t seen = 0;
  for (auto it = PageStartLocked(after); it != live_.end() && seen < limit;
       ++it, ++seen) {
    LiveTransaction* t = it->second.get();
    last = t->record.xid();
    Effects fx;
    event(DriverLocked(*t), t, now, &fx);
    FinishChangeLocked(t, std::move(fx), absl::OkStatus(), nullptr, now);
  }
  return seen < limit ? "" : last;
}

std::string TransactionTable::ReadPage(
    const std::string& after, size_t limit,
    const std::function<bool(const LiveTransaction&)>& read) const {
  absl::MutexLock lock(&mu_);
  std::string last;
  size_t seen = 0;
  for (auto it = PageStartLocked(after); it != live_.end() && seen < limit;
       ++it, ++seen) {
    if (!read(*it->second)) return last;
    last = it->second->record.xid();
  }
  return seen < limit ? "" : last;
}

absl::Status TransactionTable::ShuttingDown(const std::string& xid) {
  return absl::UnavailableError(fmt::format(
      "the coordinator is shutting down; the decision on {} stands: ask "
      "again",
      xid));
}

bool TransactionTable::AddWaiter(const std::string& xid, int64_t deadline_ms,
                                 Done done) {
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    LiveTransaction* t = FindLocked(xid);
    if (t == nullptr) return false;
    if (stopped_waiting_) {
      deferred.push_back([done = std::move(done), r = t->record] {
        done(ShuttingDown(r.xid()), r);
      });
    } else {
      t->waiters.push_back({.id = next_waiter_id_++,
                            .deadline_ms = deadline_ms,
                            .reply = std::move(done)});
      options_.wakeups->WakeAt(t->key, deadline_ms);
    }
  }
  RunAll(&deferred);
  return true;
}

void TransactionTable::ExpireWaitersLocked(LiveTransaction* t, int64_t now) {
  auto& waiters = t->waiters;
  for (auto it = waiters.begin(); it != waiters.end();) {
    if (it->deadline_ms > now) {
      ++it;
      continue;
    }
    Done reply = std::move(it->reply);
    it = waiters.erase(it);
    AnswerFromRecordLocked(t, absl::OkStatus(), std::move(reply));
  }
}

bool TransactionTable::Remove(
    const std::string& xid,
    const std::function<absl::Status(const v1::Transaction&)>& check,
    v1::Transaction* removed, int64_t* persisted_due, absl::Status* status) {
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    LiveTransaction* t = FindLocked(xid);
    if (t == nullptr) return false;
    *removed = t->record;
    *status = check(t->record);
    if (!status->ok()) return true;
    *persisted_due = t->persisted_due;
    for (LiveTransaction::Waiter& w : t->waiters) {
      deferred.push_back([reply = std::move(w.reply), r = t->record] {
        reply(absl::AbortedError(fmt::format(
                  "transaction {} was forgotten by an operator", r.xid())),
              r);
      });
    }
    ForgetKeyLocked(t->record);
    options_.wakeups->Forget(t->key);
    // Gone from memory before the caller queues the delete, so no later
    // change of it can be written after that and bring the record back.
    const RecordKey key = t->key;
    live_.erase(key);
  }
  RunAll(&deferred);
  return true;
}

void TransactionTable::RunDue(RecordKey record, int64_t now) {
  absl::MutexLock lock(&mu_);
  LiveTransaction* t = FindLocked(record);
  if (t == nullptr) return;
  ExpireWaitersLocked(t, now);
  if (t->resume_pending) return;
  Effects fx;
  DriverLocked(*t)->OnDue(t, now, &fx);
  FinishChangeLocked(t, std::move(fx), absl::OkStatus(), nullptr, now);
  RearmLocked(*t, now);
}

// What is due at or before `now` and was not acted on stays so until a
// change (which asks again); only the future is rearmed.
void TransactionTable::RearmLocked(const LiveTransaction& t, int64_t now) {
  int64_t next = 0;
  auto consider = [&next, now](int64_t when) {
    if (when > now && (next == 0 || when < next)) next = when;
  };
  consider(t.record.next_action_unix_ms());
  for (const LiveTransaction::Waiter& w : t.waiters) consider(w.deadline_ms);
  for (const auto& [branch, d] : t.deliveries) {
    if (d.command_id != 0) consider(d.overdue_ms);
  }
  if (next != 0) options_.wakeups->WakeAt(t.key, next);
}

size_t TransactionTable::LiveCount() const {
  absl::MutexLock lock(&mu_);
  return live_.size();
}

}  // namespace baton
