#include "coordinator/services.h"

#include "common/grpc_status.h"
#include "coordinator/call_handler.h"
#include "coordinator/participant_session.h"
#include "coordinator/pipeline_session.h"
#include "coordinator/wire.h"

namespace baton {
namespace {

// Finishes the RPC from the handler's answer, on whichever thread it comes;
// a caller the policy does not let make the call is refused before its
// request is even parsed.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* Serve(TransactionManager* manager,
                                const AuthzPolicy* policy,
                                grpc::CallbackServerContext* context,
                                const grpc::ByteBuffer* request,
                                grpc::ByteBuffer* response) {
  if (policy != nullptr && policy->limits_callers()) {
    std::string_view method = MethodOf(Request::default_instance());
    absl::Status allowed = policy->MayCall(PeerOf(*context), method);
    if (!allowed.ok()) {
      CountRefusal(method, "method_not_granted", allowed.ToString(),
                   manager->log_summary());
      grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
      reactor->Finish(ToGrpcStatus(allowed));
      return reactor;
    }
  }
  return wire::ServeUnary<Request, Response>(
      context, request, response,
      [manager](const Request& r, wire::Finish<Response> finish) {
        HandleCall(manager, r,
                   [finish = std::move(finish)](const absl::Status& s,
                                                Response&& value) {
                     finish(ToRichGrpcStatus(s), value);
                   });
      });
}

}  // namespace

grpc::ServerUnaryReactor* TransactionServiceImpl::Begin(
    grpc::CallbackServerContext* context, const Bytes* request,
    Bytes* response) {
  return Serve<v1::BeginRequest, v1::BeginResponse>(manager_, policy_, context,
                                                    request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::SubmitSaga(
    grpc::CallbackServerContext* context, const Bytes* request,
    Bytes* response) {
  return Serve<v1::SubmitSagaRequest, v1::SubmitSagaResponse>(
      manager_, policy_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::Commit(
    grpc::CallbackServerContext* context, const Bytes* request,
    Bytes* response) {
  return Serve<v1::CommitRequest, v1::CommitResponse>(
      manager_, policy_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::Rollback(
    grpc::CallbackServerContext* context, const Bytes* request,
    Bytes* response) {
  return Serve<v1::RollbackRequest, v1::RollbackResponse>(
      manager_, policy_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::GetTransaction(
    grpc::CallbackServerContext* context, const Bytes* request,
    Bytes* response) {
  return Serve<v1::GetTransactionRequest, v1::GetTransactionResponse>(
      manager_, policy_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::RegisterBranch(
    grpc::CallbackServerContext* context, const Bytes* request,
    Bytes* response) {
  return Serve<v1::RegisterBranchRequest, v1::RegisterBranchResponse>(
      manager_, policy_, context, request, response);
}

grpc::ServerUnaryReactor* TransactionServiceImpl::ReportBranch(
    grpc::CallbackServerContext* context, const Bytes* request,
    Bytes* response) {
  return Serve<v1::ReportBranchRequest, v1::ReportBranchResponse>(
      manager_, policy_, context, request, response);
}

namespace {

// Takes a place at `gate` into `slot`; if it is full, counts the refusal
// and returns the stream that tells the peer so.
RefusedStream* EnterOrRefuse(StreamGate* gate, TransactionManager* manager,
                             StreamGate::Slot* slot) {
  grpc::Status refusal;
  *slot = gate->Enter(&refusal);
  if (*slot) return nullptr;
  CountRefusal(gate->kind(), "too_many_streams", refusal.error_message(),
               manager->log_summary());
  return new RefusedStream(refusal);
}

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
TransactionServiceImpl::Pipeline(grpc::CallbackServerContext* context) {
  StreamGate::Slot slot;
  if (auto* refused = EnterOrRefuse(&pipelines_, manager_, &slot)) {
    return refused;
  }
  bool limited = policy_ != nullptr && policy_->limits_callers();
  return new PipelineSession(manager_, limited ? policy_ : nullptr,
                             limited ? PeerOf(*context) : Peer{},
                             std::move(slot));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
ParticipantServiceImpl::Attach(grpc::CallbackServerContext* context) {
  StreamGate::Slot slot;
  if (auto* refused = EnterOrRefuse(&attaches_, manager_, &slot)) {
    return refused;
  }
  return new ParticipantSession(context, registry_, manager_, node_id_, policy_,
                                PeerOf(*context), limits_, std::move(slot));
}

}  // namespace baton
