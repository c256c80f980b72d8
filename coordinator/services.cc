#include "coordinator/services.h"

#include <chrono>

#include "common/grpc_status.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/participant_session.h"
#include "coordinator/request_validation.h"

namespace baton {
namespace {

// Validates, then runs `call(request, reply)`; the reply fills the response
// and finishes the RPC, from whichever thread the manager answers on.
template <typename Request, typename Response, typename Call>
grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context,
                                const Request* request, Response* response,
                                Call call) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status s = Validate(*request); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  // "BeginRequest" -> "Begin"; one histogram child per method, found once.
  static metrics::Histogram* const latency = [] {
    std::string method = Request::descriptor()->name();
    method.resize(method.size() - std::string_view("Request").size());
    return Metrics().request_seconds.With({method});
  }();
  auto start = std::chrono::steady_clock::now();
  call(*request, [reactor, response, start](const absl::Status& s,
                                            const auto& value) {
    latency->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, Response>) {
      *response = value;
    } else {
      *response->mutable_transaction() = value;
    }
    reactor->Finish(ToGrpcStatus(s));
  });
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* TransactionServiceImpl::Begin(
    grpc::CallbackServerContext* context, const v1::BeginRequest* request,
    v1::BeginResponse* response) {
  return Serve(context, request, response, [this](auto& r, auto reply) {
    manager_->Begin(r, std::move(reply));
  });
}

grpc::ServerUnaryReactor* TransactionServiceImpl::SubmitSaga(
    grpc::CallbackServerContext* context, const v1::SubmitSagaRequest* request,
    v1::SubmitSagaResponse* response) {
  return Serve(context, request, response, [this](auto& r, auto reply) {
    manager_->SubmitSaga(r, std::move(reply));
  });
}

grpc::ServerUnaryReactor* TransactionServiceImpl::Commit(
    grpc::CallbackServerContext* context, const v1::CommitRequest* request,
    v1::CommitResponse* response) {
  return Serve(context, request, response, [this](auto& r, auto reply) {
    manager_->Commit(r, std::move(reply));
  });
}

grpc::ServerUnaryReactor* TransactionServiceImpl::Rollback(
    grpc::CallbackServerContext* context, const v1::RollbackRequest* request,
    v1::RollbackResponse* response) {
  return Serve(context, request, response, [this](auto& r, auto reply) {
    manager_->Rollback(r, std::move(reply));
  });
}

grpc::ServerUnaryReactor* TransactionServiceImpl::GetTransaction(
    grpc::CallbackServerContext* context,
    const v1::GetTransactionRequest* request,
    v1::GetTransactionResponse* response) {
  return Serve(context, request, response, [this](auto& r, auto reply) {
    manager_->GetTransaction(r.xid(), std::move(reply));
  });
}

grpc::ServerUnaryReactor* TransactionServiceImpl::RegisterBranch(
    grpc::CallbackServerContext* context,
    const v1::RegisterBranchRequest* request,
    v1::RegisterBranchResponse* response) {
  return Serve(context, request, response, [this](auto& r, auto reply) {
    manager_->RegisterBranch(r, std::move(reply));
  });
}

grpc::ServerUnaryReactor* TransactionServiceImpl::ReportBranch(
    grpc::CallbackServerContext* context,
    const v1::ReportBranchRequest* request,
    v1::ReportBranchResponse* response) {
  return Serve(context, request, response, [this](auto& r, auto reply) {
    manager_->ReportBranch(r, std::move(reply));
  });
}

grpc::ServerBidiReactor<v1::ParticipantMessage, v1::CoordinatorMessage>*
ParticipantServiceImpl::Attach(grpc::CallbackServerContext* context) {
  return new ParticipantSession(registry_, manager_, node_id_);
}

}  // namespace baton
