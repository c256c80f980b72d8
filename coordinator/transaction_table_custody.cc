#include "absl/strings/escaping.h"
#include "coordinator/transaction_table.h"
#include "coordinator/xid.h"
#include "fmt/format.h"
#include "protocols/transitions.h"

// How a table takes up its shard's unfinished records (at a start, or when
// this node takes the shard over) and how it lets them go (a shutdown, or
// the shard moving away). The rest of TransactionTable is in
// transaction_table.cc.

namespace baton {

absl::Status TransactionTable::Adopt(v1::Transaction record) {
  std::optional<RecordKey> key = RecordKeyOf(record.xid());
  if (!key.has_value()) {
    return absl::DataLossError(
        fmt::format("unfinished record {} has no valid xid",
                    absl::CHexEscape(record.xid())));
  }
  absl::MutexLock lock(&mu_);
  if (live_.contains(*key)) {
    return absl::DataLossError(fmt::format(
        "transaction {} was loaded twice from the store", record.xid()));
  }
  auto t = std::make_unique<LiveTransaction>();
  t->persisted_due = record.next_action_unix_ms();
  t->record = std::move(record);
  t->resume_pending = true;
  t->decision_durable = t->record.status() != v1::GLOBAL_STATUS_BEGUN;
  t->definition_stored = true;
  const std::string xid = t->record.xid();
  t->key = *key;
  if (!t->record.request_id().empty()) {
    xid_by_key_.try_emplace(t->record.request_id(), xid);
  }
  LiveTransaction* raw = t.get();
  live_.emplace(raw->key, std::move(t));
  Effects fx;
  ProtocolDriver* driver = DriverLocked(*raw);
  driver->Adopt(raw, options_.timeline->Now(), &fx);
  raw->record.set_next_action_unix_ms(driver->NextActionTime(raw->record));
  // Decided here, not when resumed, so no caller can commit it meanwhile.
  if (fx.writes()) PersistLocked(raw, nullptr);
  return absl::OkStatus();
}

void TransactionTable::Resume(const std::string& xid) {
  absl::MutexLock lock(&mu_);
  LiveTransaction* t = FindLocked(xid);
  if (t == nullptr || !t->resume_pending) return;
  t->resume_pending = false;
  options_.log_summary->Log(spdlog::level::info, "resuming",
                            fmt::format("xid={} resuming {}", xid,
                                        GlobalStatusName(t->record.status())));
  int64_t now = options_.timeline->Now();
  Effects fx;
  DriverLocked(*t)->Resume(t, now, &fx);
  FinishChangeLocked(t, std::move(fx), absl::OkStatus(), nullptr, now);
  // Even if already due: it is visited at the next run.
  if (t->record.next_action_unix_ms() > 0) {
    options_.wakeups->WakeAt(t->key, t->record.next_action_unix_ms());
  }
}

void TransactionTable::StopWaiting() {
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    stopped_waiting_ = true;
    for (auto& [key, t] : live_) {
      for (LiveTransaction::Waiter& w : t->waiters) {
        deferred.push_back([reply = std::move(w.reply), r = t->record] {
          reply(ShuttingDown(r.xid()), r);
        });
      }
      t->waiters.clear();
    }
  }
  RunAll(&deferred);
}

void TransactionTable::Drop() {
  Deferred deferred;
  {
    absl::MutexLock lock(&mu_);
    set_serving(false);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    for (auto& [key, t] : live_) {
      for (LiveTransaction::Waiter& w : t->waiters) {
        deferred.push_back([reply = std::move(w.reply), r = t->record] {
          reply(Moved(r.xid()), r);
        });
      }
      options_.wakeups->Forget(key);
    }
    live_.clear();
    xid_by_key_.clear();
    reserved_keys_.clear();
    unclaimed_.clear();
    unclaimed_order_.clear();
  }
  RunAll(&deferred);
}

void TransactionTable::ServeAgainUnlessDropped(uint64_t generation) {
  absl::MutexLock lock(&mu_);
  if (generation_.load(std::memory_order_acquire) == generation) {
    set_serving(true);
  }
}

void TransactionTable::Serve(uint64_t epoch) {
  {
    absl::MutexLock lock(&mu_);
    epoch_ = epoch;
    next_sequence_ = 0;
  }
  set_serving(true);
}

}  // namespace baton
