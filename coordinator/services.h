#ifndef BATON_COORDINATOR_SERVICES_H_
#define BATON_COORDINATOR_SERVICES_H_

#include "baton/v1/participant_service.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "coordinator/participant_registry.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// gRPC callback-API glue: validate, hand to the manager, finish the call from
// the manager's reply. No thread blocks per call.
class TransactionServiceImpl final
    : public v1::TransactionService::CallbackService {
 public:
  explicit TransactionServiceImpl(TransactionManager* manager)
      : manager_(manager) {}

  grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* context,
                                  const v1::BeginRequest* request,
                                  v1::BeginResponse* response) override;
  grpc::ServerUnaryReactor* SubmitSaga(
      grpc::CallbackServerContext* context,
      const v1::SubmitSagaRequest* request,
      v1::SubmitSagaResponse* response) override;
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const v1::CommitRequest* request,
                                   v1::CommitResponse* response) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* context,
                                     const v1::RollbackRequest* request,
                                     v1::RollbackResponse* response) override;
  grpc::ServerUnaryReactor* GetTransaction(
      grpc::CallbackServerContext* context,
      const v1::GetTransactionRequest* request,
      v1::GetTransactionResponse* response) override;
  grpc::ServerUnaryReactor* RegisterBranch(
      grpc::CallbackServerContext* context,
      const v1::RegisterBranchRequest* request,
      v1::RegisterBranchResponse* response) override;
  grpc::ServerUnaryReactor* ReportBranch(
      grpc::CallbackServerContext* context,
      const v1::ReportBranchRequest* request,
      v1::ReportBranchResponse* response) override;
  grpc::ServerBidiReactor<v1::PipelineRequest, v1::PipelineReply>* Pipeline(
      grpc::CallbackServerContext* context) override;

 private:
  TransactionManager* const manager_;
};

class ParticipantServiceImpl final
    : public v1::ParticipantService::CallbackService {
 public:
  ParticipantServiceImpl(ParticipantRegistry* registry,
                         TransactionManager* manager, uint32_t node_id)
      : registry_(registry), manager_(manager), node_id_(node_id) {}

  grpc::ServerBidiReactor<v1::ParticipantMessage, v1::CoordinatorMessage>*
  Attach(grpc::CallbackServerContext* context) override;

 private:
  ParticipantRegistry* const registry_;
  TransactionManager* const manager_;
  const uint32_t node_id_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_SERVICES_H_
