#include "baton/client.h"

#include <atomic>
#include <exception>
#include <map>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "common/grpc_status.h"
#include "common/limits.h"
#include "common/timer_thread.h"
#include "common/wrong_shard.h"
#include "participant_sdk/internal/pipeline_client.h"
#include "participant_sdk/internal/router.h"
#include "participant_sdk/internal/rpc.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

using Stub = v1::TransactionService::Stub;

// Where a call goes: the owner of `xid`'s shard, or, for a new
// transaction, the node its idempotency key picks.
struct Route {
  const std::string& xid;
  const std::string& key;
};

// How many times a call follows a WrongShard to another node before it
// gives the refusal to the caller: a topology that changes under it.
constexpr int kMaxHops = 3;

class GrpcTransactionClient : public TransactionClient {
 public:
  explicit GrpcTransactionClient(const ClientOptions& options)
      : options_(options),
        tls_(internal::ResolveTls(options.tls)),
        router_(internal::SeedList(options.coordinator, options.seeds),
                options.call_timeout, tls_) {}

  ~GrpcTransactionClient() override {
    closing_ = true;
    // Retries waiting here end now with CANCELLED, as do (when the
    // endpoints go) calls still on a stream.
    timer_.Shutdown();
  }

  absl::StatusOr<v1::BeginResponse> BeginRaw(
      const v1::BeginRequest& request) override {
    return BeginWithAttempts(request, options_.max_attempts);
  }

  absl::StatusOr<v1::GlobalStatus> Commit(const std::string& xid,
                                          bool wait) override {
    v1::CommitRequest request;
    request.set_xid(xid);
    request.set_wait(wait);
    v1::CommitResponse response;
    absl::Status s = Call({xid, kNoKey}, request, &response,
                          &v1::PipelineCall::mutable_commit,
                          &v1::PipelineResult::mutable_commit, &Stub::Commit);
    return Finish(s, response.status());
  }

  absl::StatusOr<v1::GlobalStatus> Rollback(const std::string& xid,
                                            const std::string& reason,
                                            bool wait) override {
    v1::RollbackRequest request;
    request.set_xid(xid);
    request.set_reason(reason);
    request.set_wait(wait);
    v1::RollbackResponse response;
    absl::Status s = Call(
        {xid, kNoKey}, request, &response, &v1::PipelineCall::mutable_rollback,
        &v1::PipelineResult::mutable_rollback, &Stub::Rollback);
    return Finish(s, response.status());
  }

  absl::StatusOr<v1::Transaction> GetTransaction(
      const std::string& xid) override {
    v1::GetTransactionRequest request;
    request.set_xid(xid);
    request.set_max_response_bytes(limits::kMaxMessageBytes);
    v1::GetTransactionResponse response;
    absl::Status s = Call({xid, kNoKey}, request, &response,
                          &v1::PipelineCall::mutable_get_transaction,
                          &v1::PipelineResult::mutable_get_transaction,
                          &Stub::GetTransaction);
    return Finish(s, response.transaction());
  }

  absl::StatusOr<uint64_t> RegisterBranch(
      const v1::RegisterBranchRequest& request) override {
    v1::RegisterBranchResponse response;
    absl::Status s = Call({request.xid(), kNoKey}, request, &response,
                          &v1::PipelineCall::mutable_register_branch,
                          &v1::PipelineResult::mutable_register_branch,
                          &Stub::RegisterBranch);
    return Finish(s, response.branch_id());
  }

  absl::Status ReportBranch(const std::string& xid, uint64_t branch_id,
                            v1::PhaseOneOutcome outcome,
                            const std::string& error) override {
    v1::ReportBranchResponse response;
    return Call({xid, kNoKey}, ReportRequest(xid, branch_id, outcome, error),
                &response, &v1::PipelineCall::mutable_report_branch,
                &v1::PipelineResult::mutable_report_branch,
                &Stub::ReportBranch);
  }

  void RegisterBranchAsync(const v1::RegisterBranchRequest& request,
                           RegisterDone done) override {
    if (!options_.pipeline) return done(RegisterBranch(request));
    v1::PipelineCall call;
    *call.mutable_register_branch() = request;
    CallAsync(request.xid(), std::move(call),
              [done = std::move(done)](const absl::Status& s,
                                       v1::PipelineResult* result) {
                if (!s.ok()) return done(s);
                done(result->register_branch().branch_id());
              });
  }

  void ReportBranchAsync(const std::string& xid, uint64_t branch_id,
                         v1::PhaseOneOutcome outcome, const std::string& error,
                         ReportDone done) override {
    if (!options_.pipeline) {
      return done(ReportBranch(xid, branch_id, outcome, error));
    }
    v1::PipelineCall call;
    *call.mutable_report_branch() =
        ReportRequest(xid, branch_id, outcome, error);
    CallAsync(xid, std::move(call),
              [done = std::move(done)](const absl::Status& s,
                                       v1::PipelineResult*) { done(s); });
  }

  absl::StatusOr<v1::SubmitSagaResponse> SubmitSagaRaw(
      const v1::SubmitSagaRequest& request) override {
    v1::SubmitSagaResponse response;
    // A waiting submit may take the whole wait before it answers.
    std::chrono::milliseconds wait(request.wait() ? request.wait_timeout_ms()
                                                  : 0);
    if (request.wait() && wait.count() == 0) wait = std::chrono::seconds(30);
    absl::Status s = Call({kNoXid, request.request_id()}, request, &response,
                          &v1::PipelineCall::mutable_submit_saga,
                          &v1::PipelineResult::mutable_submit_saga,
                          &Stub::SubmitSaga, options_.call_timeout + wait);
    return Finish(s, response);
  }

  std::string NewIdempotencyKey() override {
    std::string key = internal::NewRequestId();
    for (int draw = 1; draw < 16 && !router_.ServingForKey(key); ++draw) {
      key = internal::NewRequestId();
    }
    return key;
  }

 protected:
  // New transactions go to the other nodes at once while one is down.
  absl::StatusOr<v1::BeginResponse> BeginFresh(
      v1::BeginRequest request) override {
    absl::StatusOr<v1::BeginResponse> response;
    for (int node = 1; node <= kMaxHops; ++node) {
      request.set_request_id(NewIdempotencyKey());
      // Over many nodes an unreachable one is not waited for: another
      // takes the new transaction at once, under a fresh key. The last
      // node tried gets every attempt, in case they all are restarting.
      bool elsewhere_next = router_.clustered() && node < kMaxHops;
      response = BeginWithAttempts(request,
                                   elsewhere_next ? 1 : options_.max_attempts);
      std::optional<v1::WrongShard> refusal = WrongShardOf(response.status());
      bool elsewhere = absl::IsUnavailable(response.status()) ||
                       (refusal && refusal->draining());
      if (!elsewhere || !router_.clustered()) break;
    }
    return response;
  }

 private:
  absl::StatusOr<v1::BeginResponse> BeginWithAttempts(
      const v1::BeginRequest& request, int attempts) {
    v1::BeginResponse response;
    absl::Status s = Call({kNoXid, request.request_id()}, request, &response,
                          &v1::PipelineCall::mutable_begin,
                          &v1::PipelineResult::mutable_begin, &Stub::Begin,
                          /*timeout=*/{}, attempts);
    return Finish(s, response);
  }

  // Pipeline or stub, for one node.
  struct Endpoint {
    std::unique_ptr<internal::PipelineClient> pipeline;
    std::unique_ptr<Stub> stub;
  };

  Endpoint* EndpointFor(const std::string& address) {
    absl::MutexLock lock(&endpoints_mu_);
    std::unique_ptr<Endpoint>& e = endpoints_[address];
    if (e == nullptr) {
      e = std::make_unique<Endpoint>();
      std::shared_ptr<grpc::Channel> channel =
          internal::MakeCoordinatorChannel(address, tls_, options_.token);
      if (options_.pipeline) {
        e->pipeline = std::make_unique<internal::PipelineClient>(channel);
      } else {
        e->stub = v1::TransactionService::NewStub(channel);
      }
    }
    return e.get();
  }

  // One call with retries, on the pipeline or as a unary RPC, at the node
  // `route` picks; a refusal naming another node sends it there. The member
  // pointers name the call's field in PipelineCall and PipelineResult and
  // its unary method.
  template <typename Request, typename Response>
  absl::Status Call(const Route& route, const Request& request,
                    Response* response,
                    Request* (v1::PipelineCall::*call_field)(),
                    Response* (v1::PipelineResult::*result_field)(),
                    grpc::Status (Stub::*unary)(grpc::ClientContext*,
                                                const Request&, Response*),
                    std::chrono::milliseconds timeout = {}, int attempts = 0) {
    if (timeout.count() == 0) timeout = options_.call_timeout;
    if (attempts == 0) attempts = options_.max_attempts;
    // After a refusal: the owner it named, even if the map still says
    // otherwise (the refusing node may know a node the map does not).
    std::string named;
    for (int hop = 1;; ++hop) {
      std::string address = !named.empty()      ? named
                            : route.xid.empty() ? router_.ForKey(route.key)
                                                : router_.ForXid(route.xid);
      Endpoint* endpoint = EndpointFor(address);
      absl::Status s = FromRichGrpcStatus(internal::CallWithRetry(
          timeout, attempts, [&](grpc::ClientContext* context) {
            if (endpoint->pipeline == nullptr) {
              return (endpoint->stub.get()->*unary)(context, request, response);
            }
            v1::PipelineCall call;
            *(call.*call_field)() = request;
            v1::PipelineResult result;
            // On the monotonic clock: a step of the wall clock while the
            // answer is awaited neither cuts the wait short nor stretches
            // it.
            grpc::Status status = endpoint->pipeline->CallAndWait(
                std::move(call), std::chrono::steady_clock::now() + timeout,
                &result);
            if (status.ok()) response->Swap((result.*result_field)());
            return status;
          }));
      std::optional<v1::WrongShard> refusal = WrongShardOf(s);
      if (refusal && refusal->draining()) {
        router_.Learn(*refusal);
        return s;
      }
      if (refusal && hop < kMaxHops) {
        router_.Learn(*refusal);
        named = refusal->owner_address();
        continue;
      }
      if (absl::IsUnavailable(s)) router_.Unreachable(address);
      return s;
    }
  }

  static v1::ReportBranchRequest ReportRequest(const std::string& xid,
                                               uint64_t branch_id,
                                               v1::PhaseOneOutcome outcome,
                                               const std::string& error) {
    v1::ReportBranchRequest request;
    request.set_xid(xid);
    request.set_branch_id(branch_id);
    request.set_outcome(outcome);
    request.set_error(error);
    return request;
  }

  // Called once with the call's status and, when OK, its result; must not
  // block.
  using AsyncDone =
      std::function<void(const absl::Status&, v1::PipelineResult*)>;

  // A call about `xid` on the pipeline that no thread waits for, with what
  // Call does between attempts: retries of UNAVAILABLE after a backoff (on
  // timer_), and hops to the owner a refusal names.
  struct AsyncCall {
    std::string xid;
    v1::PipelineCall call;
    AsyncDone done;
    std::string named;  // After a refusal: the owner it named.
    int hop = 1;
    int attempt = 0;  // At this hop.
    std::chrono::milliseconds backoff = internal::kFirstRetryBackoff;
  };

  void CallAsync(std::string xid, v1::PipelineCall call, AsyncDone done) {
    auto state = std::make_shared<AsyncCall>();
    state->xid = std::move(xid);
    state->call = std::move(call);
    state->done = std::move(done);
    Attempt(std::move(state));
  }

  void Attempt(std::shared_ptr<AsyncCall> state) {
    if (closing_) {
      return state->done(absl::CancelledError("the client was destroyed"),
                         nullptr);
    }
    std::string address =
        state->named.empty() ? router_.ForXid(state->xid) : state->named;
    internal::PipelineClient* pipeline = EndpointFor(address)->pipeline.get();
    ++state->attempt;
    // The answer and the deadline race; the first ends the attempt.
    auto ended = std::make_shared<std::atomic<bool>>(false);
    TimerThread::Handle deadline = timer_.Schedule(
        TimerThread::Clock::now() + options_.call_timeout,
        [this, state, ended, address] {
          if (ended->exchange(true)) return;
          grpc::Status expired(
              closing_ ? grpc::StatusCode::CANCELLED
                       : grpc::StatusCode::DEADLINE_EXCEEDED,
              "the coordinator did not answer before the deadline");
          Attempted(state, address, expired, nullptr);
        });
    pipeline->Call(state->call,
                   [this, state, ended, deadline, address](
                       const grpc::Status& s, v1::PipelineResult* result) {
                     if (ended->exchange(true)) return;
                     timer_.Cancel(deadline);
                     Attempted(state, address, s, result);
                   });
  }

  void Attempted(std::shared_ptr<AsyncCall> state, const std::string& address,
                 const grpc::Status& s, v1::PipelineResult* result) {
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE &&
        state->attempt < options_.max_attempts) {
      std::chrono::milliseconds backoff = state->backoff;
      state->backoff = internal::NextRetryBackoff(backoff);
      timer_.Schedule(TimerThread::Clock::now() + backoff,
                      [this, state] { Attempt(state); });
      return;
    }
    absl::Status status = FromRichGrpcStatus(s);
    std::optional<v1::WrongShard> refusal = WrongShardOf(status);
    if (refusal && !refusal->draining() && state->hop < kMaxHops) {
      router_.Learn(*refusal);
      state->named = refusal->owner_address();
      ++state->hop;
      state->attempt = 0;
      state->backoff = internal::kFirstRetryBackoff;
      return Attempt(std::move(state));
    }
    if (refusal) router_.Learn(*refusal);
    if (absl::IsUnavailable(status)) router_.Unreachable(address);
    state->done(status, status.ok() ? result : nullptr);
  }

  template <typename T>
  static absl::StatusOr<T> Finish(const absl::Status& s, const T& value) {
    if (!s.ok()) return s;
    return value;
  }

  static inline const std::string kNoXid, kNoKey;

  const ClientOptions options_;
  const TlsFiles tls_;
  internal::Router router_;
  std::atomic<bool> closing_{false};
  // Before endpoints_: calls that end while the endpoints go still find it.
  TimerThread timer_{"baton-deadlines"};
  absl::Mutex endpoints_mu_;
  std::map<std::string, std::unique_ptr<Endpoint>> endpoints_
      ABSL_GUARDED_BY(endpoints_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<TransactionClient>> TransactionClient::Connect(
    const ClientOptions& options) {
  if (options.coordinator.empty() && options.seeds.empty()) {
    return absl::InvalidArgumentError(
        "ClientOptions.coordinator and ClientOptions.seeds are both empty");
  }
  return std::unique_ptr<TransactionClient>(
      std::make_unique<GrpcTransactionClient>(options));
}

absl::StatusOr<std::unique_ptr<GlobalTransaction>> TransactionClient::Begin(
    const std::string& name, std::chrono::milliseconds timeout,
    v1::Protocol protocol) {
  v1::BeginRequest request;
  request.set_name(name);
  request.set_protocol(protocol);
  request.set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  absl::StatusOr<v1::BeginResponse> response = BeginFresh(request);
  if (!response.ok()) return response.status();
  return std::make_unique<GlobalTransaction>(this, response->xid());
}

void TransactionClient::RegisterBranchAsync(
    const v1::RegisterBranchRequest& request, RegisterDone done) {
  done(RegisterBranch(request));
}

void TransactionClient::ReportBranchAsync(const std::string& xid,
                                          uint64_t branch_id,
                                          v1::PhaseOneOutcome outcome,
                                          const std::string& error,
                                          ReportDone done) {
  done(ReportBranch(xid, branch_id, outcome, error));
}

std::string TransactionClient::NewIdempotencyKey() {
  return internal::NewRequestId();
}

absl::StatusOr<v1::BeginResponse> TransactionClient::BeginFresh(
    v1::BeginRequest request) {
  request.set_request_id(NewIdempotencyKey());
  return BeginRaw(request);
}

GlobalTransaction::GlobalTransaction(TransactionClient* client, std::string xid)
    : client_(client), xid_(std::move(xid)) {}

GlobalTransaction::~GlobalTransaction() {
  if (decided_) return;
  std::string reason = std::uncaught_exceptions() > 0
                           ? "an exception escaped the transaction's scope"
                           : "the transaction went out of scope uncommitted";
  absl::StatusOr<v1::GlobalStatus> s = client_->Rollback(xid_, reason, false);
  if (!s.ok()) {
    spdlog::warn("xid={} rollback on scope exit failed: {}", xid_,
                 s.status().ToString());
  }
}

absl::Status GlobalTransaction::Commit(bool wait) {
  absl::StatusOr<v1::GlobalStatus> s = client_->Commit(xid_, wait);
  if (s.ok()) {
    decided_ = true;
    status_ = *s;
    return absl::OkStatus();
  }
  // ABORTED and FAILED_PRECONDITION mean a decision exists (rollback).
  if (absl::IsAborted(s.status()) || absl::IsFailedPrecondition(s.status())) {
    decided_ = true;
    status_ = v1::GLOBAL_STATUS_ROLLING_BACK;
  }
  return s.status();
}

absl::Status GlobalTransaction::Rollback(const std::string& reason, bool wait) {
  absl::StatusOr<v1::GlobalStatus> s = client_->Rollback(xid_, reason, wait);
  if (s.ok() || absl::IsFailedPrecondition(s.status())) decided_ = true;
  if (s.ok()) status_ = *s;
  return s.status();
}

}  // namespace baton
