#ifndef BATON_CLIENT_H_
#define BATON_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/tls.h"
#include "baton/v1/transaction_service.pb.h"

// The caller's side of Baton: begin a global transaction, let services join
// it (see propagation.h), then commit or roll back.
//
//   auto client = baton::TransactionClient::Connect({.coordinator = addr});
//   if (!client.ok()) return client.status();
//   auto txn = (*client)->Begin("transfer", std::chrono::seconds(10));
//   if (!txn.ok()) return txn.status();
//   ... call services with baton::InjectXid(&ctx, (*txn)->xid()) ...
//   absl::Status s = (*txn)->Commit();  // ABORTED: it rolled back instead.
//   // Leaving scope without Commit (or by an exception) rolls back.
namespace baton {

struct ClientOptions {
  // batond's address, HOST:PORT; several nodes' addresses separated by
  // commas are taken as `seeds`.
  std::string coordinator = "127.0.0.1:7420";
  // Or, for many nodes: addresses of some of them (HOST:PORT each, or one
  // DNS name that resolves to them). The client learns every node from the
  // first that answers, sends each call about a transaction to the node
  // owning its shard (following a refusal that names another node), and
  // each new transaction to the node its idempotency key picks among all
  // it knows, so a retried key reaches the same node. Overrides
  // `coordinator` when set. See docs/CLUSTER.md.
  std::vector<std::string> seeds;
  // Deadline of each call to the coordinator.
  std::chrono::milliseconds call_timeout{5000};
  // Attempts per call while the coordinator is UNAVAILABLE (restarting).
  // Every call is safe to retry.
  int max_attempts = 5;
  // Carry calls on one long-lived stream (TransactionService.Pipeline),
  // batched with other threads' calls, instead of one RPC each. Same
  // answers and guarantees at a fraction of the CPU per call on both ends;
  // turn off only for a proxy that cannot hold streams.
  bool pipeline = true;
  TlsOptions tls;
  // Where the coordinator's authorization policy knows callers by token
  // (no client certificate): the token, sent with every call as
  // "authorization: Bearer TOKEN", and only over TLS.
  std::string token;
};

class GlobalTransaction;

// A connection to the coordinator's TransactionService. Thread-safe: share
// one per process.
class TransactionClient {
 public:
  static absl::StatusOr<std::unique_ptr<TransactionClient>> Connect(
      const ClientOptions& options);
  virtual ~TransactionClient() = default;

  // Opens a global transaction. A zero timeout takes the coordinator's
  // default.
  absl::StatusOr<std::unique_ptr<GlobalTransaction>> Begin(
      const std::string& name,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(0),
      v1::Protocol protocol = v1::PROTOCOL_TWO_PHASE);

  // The raw calls. Each returns the coordinator's status code unchanged
  // (NOT_FOUND, FAILED_PRECONDITION, ABORTED, ...).
  virtual absl::StatusOr<v1::BeginResponse> BeginRaw(
      const v1::BeginRequest& request) = 0;
  virtual absl::StatusOr<v1::GlobalStatus> Commit(const std::string& xid,
                                                  bool wait) = 0;
  virtual absl::StatusOr<v1::GlobalStatus> Rollback(const std::string& xid,
                                                    const std::string& reason,
                                                    bool wait) = 0;
  virtual absl::StatusOr<v1::Transaction> GetTransaction(
      const std::string& xid) = 0;
  virtual absl::StatusOr<uint64_t> RegisterBranch(
      const v1::RegisterBranchRequest& request) = 0;
  virtual absl::Status ReportBranch(const std::string& xid, uint64_t branch_id,
                                    v1::PhaseOneOutcome outcome,
                                    const std::string& error) = 0;

  // RegisterBranch and ReportBranch with no thread waiting for the answer:
  // `done` runs exactly once with what the blocking call returns, after the
  // same routing, retries and deadlines, on a gRPC thread or one of this
  // client's own (or, without the pipeline, on the caller's, which then
  // waits as in the blocking call). `done` must not block. Destroying the
  // client ends the calls still in flight with CANCELLED.
  using RegisterDone = std::function<void(absl::StatusOr<uint64_t>)>;
  using ReportDone = std::function<void(absl::Status)>;
  virtual void RegisterBranchAsync(const v1::RegisterBranchRequest& request,
                                   RegisterDone done);
  virtual void ReportBranchAsync(const std::string& xid, uint64_t branch_id,
                                 v1::PhaseOneOutcome outcome,
                                 const std::string& error, ReportDone done);

  // See SubmitSaga in saga.h for the friendly form.
  virtual absl::StatusOr<v1::SubmitSagaResponse> SubmitSagaRaw(
      const v1::SubmitSagaRequest& request) = 0;

  // A fresh random idempotency key for a new transaction. A client of many
  // nodes draws it so that it belongs to a shard that serves, as far as the
  // client knows (topology.proto says which shard a key belongs to).
  virtual std::string NewIdempotencyKey();

 protected:
  // Begin's call: `request` with a fresh key. A client of many nodes draws
  // another key, for another shard, if the first one's node does not
  // answer: nobody saw the first key, so nobody can retry it, and a
  // transaction it may have started has no branch and rolls back alone.
  virtual absl::StatusOr<v1::BeginResponse> BeginFresh(
      v1::BeginRequest request);
};

// One global transaction, owned by the code that began it. Not thread-safe.
// If it is destroyed before Commit or Rollback reached a decision (including
// while an exception unwinds), it rolls back.
class GlobalTransaction {
 public:
  GlobalTransaction(TransactionClient* client, std::string xid);
  ~GlobalTransaction();

  GlobalTransaction(const GlobalTransaction&) = delete;
  GlobalTransaction& operator=(const GlobalTransaction&) = delete;

  const std::string& xid() const { return xid_; }

  // Decides commit. OK once the decision is durable (with wait, once phase
  // two finished or the coordinator's wait ran out). ABORTED if a branch
  // failed or never prepared, so the transaction rolled back instead.
  absl::Status Commit(bool wait = false);

  // Decides rollback.
  absl::Status Rollback(const std::string& reason = "", bool wait = false);

  // The status the last decision reported.
  v1::GlobalStatus status() const { return status_; }

 private:
  TransactionClient* const client_;
  const std::string xid_;
  bool decided_ = false;
  v1::GlobalStatus status_ = v1::GLOBAL_STATUS_BEGUN;
};

}  // namespace baton

#endif  // BATON_CLIENT_H_
