#include "coordinator/services.h"

#include "common/grpc_status.h"
#include "coordinator/call_handler.h"
#include "coordinator/participant_session.h"
#include "coordinator/pipeline_session.h"

namespace baton {
namespace {

// Finishes the RPC from the handler's answer, on whichever thread it comes.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* Serve(TransactionManager* manager,
                                grpc::CallbackServerContext* context,
                                const Request* request, Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  HandleCall(manager, *request,
             [reactor, response](const absl::Status& s, Response&& value) {
               *response = std::move(value);
               reactor->Finish(ToGrpcStatus(s));
             });
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* TransactionServiceImpl::Begin(
    grpc::CallbackServerContext* context, const v1::BeginRequest* request,
    v1::BeginResponse* response) {
  return Serve(manager_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::SubmitSaga(
    grpc::CallbackServerContext* context, const v1::SubmitSagaRequest* request,
    v1::SubmitSagaResponse* response) {
  return Serve(manager_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::Commit(
    grpc::CallbackServerContext* context, const v1::CommitRequest* request,
    v1::CommitResponse* response) {
  return Serve(manager_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::Rollback(
    grpc::CallbackServerContext* context, const v1::RollbackRequest* request,
    v1::RollbackResponse* response) {
  return Serve(manager_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::GetTransaction(
    grpc::CallbackServerContext* context,
    const v1::GetTransactionRequest* request,
    v1::GetTransactionResponse* response) {
  return Serve(manager_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::RegisterBranch(
    grpc::CallbackServerContext* context,
    const v1::RegisterBranchRequest* request,
    v1::RegisterBranchResponse* response) {
  return Serve(manager_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::ReportBranch(
    grpc::CallbackServerContext* context,
    const v1::ReportBranchRequest* request,
    v1::ReportBranchResponse* response) {
  return Serve(manager_, context, request, response);
}

grpc::ServerBidiReactor<v1::PipelineRequest, v1::PipelineReply>*
TransactionServiceImpl::Pipeline(grpc::CallbackServerContext* context) {
  return new PipelineSession(manager_);
}

grpc::ServerBidiReactor<v1::ParticipantMessage, v1::CoordinatorMessage>*
ParticipantServiceImpl::Attach(grpc::CallbackServerContext* context) {
  return new ParticipantSession(registry_, manager_, node_id_);
}

}  // namespace baton
