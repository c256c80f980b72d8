// The manager's operator actions: force, retry, pause, resume and forget.

#include "coordinator/coordinator_metrics.h"
#include "coordinator/transaction_manager.h"
#include "fmt/format.h"
#include "protocols/transitions.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

constexpr char kForgottenPrefix[] = "forgotten/";

}  // namespace

void TransactionManager::Operate(const std::string& xid, OperatorAction action,
                                 const operator_actions::Request& request,
                                 Reply<v1::Transaction> reply) {
  auto audited = std::make_shared<bool>(false);
  TransactionTable::Change change =
      [action, request, audited](LiveTransaction* t, int64_t now, Effects* fx) {
        v1::Transaction* r = &t->record;
        int audits = r->audit_size();
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
        fx->persist = *audited = r->audit_size() != audits;
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
  Mutate(xid, std::move(change), std::move(done));
}

// Sends every owed command now, backoff or not.
void TransactionManager::Kick(const std::string& xid) {
  TransactionTable* table = TableFor(xid);
  if (table == nullptr) return;
  table->Handle(xid, [](ProtocolDriver* driver, LiveTransaction* t, int64_t now,
                        Effects* fx) { driver->Kick(t, now, fx); });
}

void TransactionManager::Forget(const std::string& xid,
                                const operator_actions::Request& request,
                                Reply<v1::Transaction> reply) {
  TransactionTable* table = TableFor(xid);
  if (table == nullptr) {
    if (std::optional<absl::Status> refused = Elsewhere(xid)) {
      return reply(*refused, v1::Transaction());
    }
  }
  v1::Transaction tombstone;
  int64_t due = -1;
  absl::Status s;
  if (table == nullptr ||
      !table->Remove(xid, &operator_actions::CheckForgettable, &tombstone, &due,
                     &s)) {
    store_reads_.Post([this, xid, request, reply = std::move(reply)] {
      ForgetStored(xid, request, reply);
    });
    return;
  }
  if (!s.ok())
    return AnswerWhenDurable(std::move(s), tombstone, std::move(reply));
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
  if (std::string key = DriverFor(tombstone)->DurableKey(tombstone);
      !key.empty()) {
    batch.DeleteMeta(key);
  }
  committer_->Submit(
      std::move(batch),
      [tombstone = std::move(tombstone), reply = std::move(reply)](
          const absl::Status& s) { reply(s, tombstone); });
}

}  // namespace baton
