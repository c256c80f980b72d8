// The manager's SubmitSaga: starting a saga, and answering a repeated
// request_id with the saga it started.

#include "coordinator/transaction_manager.h"
#include "fmt/format.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

v1::SubmitSagaResponse ToResponse(const v1::Transaction& r) {
  v1::SubmitSagaResponse response;
  response.set_xid(r.xid());
  response.set_status(r.status());
  response.set_reason(r.reason());
  return response;
}

absl::Status StillLoading(const std::string& xid, const std::string& key) {
  return absl::UnavailableError(fmt::format(
      "saga {} of request_id '{}' is still being loaded after a restart; "
      "retry shortly",
      xid, key));
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
  absl::StatusOr<TransactionTable*> chosen = TableForNew(key);
  if (!chosen.ok()) return answer(chosen.status(), v1::Transaction());
  TransactionTable* table = *chosen;
  if (key.empty()) return StartSaga(table, request, std::move(answer));
  // The key is in memory while its saga lives and in the store after; the
  // store is read without the lock, so the key is reserved meanwhile and no
  // other submit of it can start a saga in between.
  v1::Transaction existing;
  switch (table->ReserveKey(key, &existing)) {
    case TransactionTable::KeyState::kLive:
      return AnswerExistingSaga(existing, request, std::move(answer));
    case TransactionTable::KeyState::kReserved:
      // The reserving submit's read is queued on the same serial reader, so
      // by the time this runs again the key is live or stored.
      store_reads_.Post([this, request, reply] { SubmitSaga(request, reply); });
      return;
    case TransactionTable::KeyState::kFree:
      break;
  }
  store_reads_.Post([this, table, request, answer = std::move(answer)] {
    SubmitSagaStored(table, request, answer);
  });
}

// The rest of SubmitSaga, with the key reserved: whether the key already
// started a saga that finished (or is not in memory yet).
void TransactionManager::SubmitSagaStored(TransactionTable* table,
                                          const v1::SubmitSagaRequest& request,
                                          Done answer) {
  const std::string& key = request.request_id();
  std::string xid;
  v1::Transaction stored;
  absl::Status s = store_->GetMeta(kSagaRequestPrefix + key, &xid);
  if (s.ok()) s = store_->Get(xid, &stored);
  if (absl::IsNotFound(s)) {
    // A Begin may take the key meanwhile: Create answers with it then.
    return StartSaga(table, request, std::move(answer));
  }
  table->Unreserve(key);
  if (!s.ok()) {
    // Not knowing whether the key started a saga, starting one could run
    // its steps twice.
    return AnswerWhenDurable(s, v1::Transaction(), std::move(answer));
  }
  if (IsTerminal(stored.status())) {
    return AnswerExistingSaga(stored, request, std::move(answer));
  }
  // Unfinished on disk and not in this shard: live in its own shard (the
  // shard count changed since it began), or not loaded yet after a restart.
  TransactionTable* owner = TableFor(xid);
  auto as_existing = [this, request, answer](const absl::Status& s,
                                             const v1::Transaction& r) {
    if (!s.ok()) return answer(s, r);
    AnswerExistingSaga(r, request, answer);
  };
  if (owner != nullptr &&
      owner->Apply(
          xid,
          [](LiveTransaction*, int64_t, Effects*) { return absl::OkStatus(); },
          as_existing)) {
    return;
  }
  AnswerWhenDurable(StillLoading(xid, key), v1::Transaction(),
                    std::move(answer));
}

void TransactionManager::AnswerExistingSaga(
    const v1::Transaction& existing, const v1::SubmitSagaRequest& request,
    Done done) {
  AnswerWhenDurable(SagaDriver::SameSaga(existing, request)
                        ? absl::OkStatus()
                        : KeyTaken(request.request_id(), existing),
                    existing, std::move(done));
}

void TransactionManager::StartSaga(TransactionTable* table,
                                   const v1::SubmitSagaRequest& request,
                                   Done done) {
  table->Create(
      request.request_id(), /*reserved=*/!request.request_id().empty(),
      [this, &request](v1::Transaction* r, int64_t now) {
        absl::Status s = NewRecord(r, now, request.name(), v1::PROTOCOL_SAGA,
                                   request.timeout_ms());
        if (s.ok()) s = saga::Start(r, request.definition(), now);
        if (s.ok()) {
          spdlog::debug("xid={} saga '{}' submitted with {} step(s)", r->xid(),
                        r->name(), r->saga().definition().steps_size());
        }
        return s;
      },
      [&request](const v1::Transaction& existing) {
        return SagaDriver::SameSaga(existing, request)
                   ? absl::OkStatus()
                   : KeyTaken(request.request_id(), existing);
      },
      std::move(done));
}

}  // namespace baton
