#ifndef BATON_COORDINATOR_SERVICES_H_
#define BATON_COORDINATOR_SERVICES_H_

#include "baton/v1/participant_service.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "coordinator/authz.h"
#include "coordinator/participant_registry.h"
#include "coordinator/stream_limits.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// The TransactionService and ParticipantService methods on gRPC's raw
// callback API (see wire.h: batond parses requests itself, so bytes that do
// not parse get INVALID_ARGUMENT): parse, validate, hand to the manager,
// finish the call from the manager's reply. No thread blocks per call.
using RawTransactionService =
    v1::TransactionService::WithRawCallbackMethod_Begin<
        v1::TransactionService::WithRawCallbackMethod_Commit<
            v1::TransactionService::WithRawCallbackMethod_Rollback<
                v1::TransactionService::WithRawCallbackMethod_GetTransaction<
                    v1::TransactionService::
                        WithRawCallbackMethod_RegisterBranch<
                            v1::TransactionService::
                                WithRawCallbackMethod_ReportBranch<
                                    v1::TransactionService::
                                        WithRawCallbackMethod_SubmitSaga<
                                            v1::TransactionService::
                                                WithRawCallbackMethod_Pipeline<
                                                    v1::TransactionService::
                                                        Service>>>>>>>>;

class TransactionServiceImpl final : public RawTransactionService {
 public:
  // With a `policy` that limits callers, each call (or Pipeline call) is
  // let through only if it grants the caller the method. `policy` (null:
  // none) must outlive this service.
  // Pipeline streams beyond limits.max_pipeline_streams are refused.
  TransactionServiceImpl(TransactionManager* manager, const AuthzPolicy* policy,
                         const StreamLimits& limits)
      : manager_(manager),
        policy_(policy),
        pipelines_("Pipeline", "--max-pipeline-streams",
                   limits.max_pipeline_streams) {}

  using Bytes = grpc::ByteBuffer;
  grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* context,
                                  const Bytes* request,
                                  Bytes* response) override;
  grpc::ServerUnaryReactor* SubmitSaga(grpc::CallbackServerContext* context,
                                       const Bytes* request,
                                       Bytes* response) override;
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const Bytes* request,
                                   Bytes* response) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* context,
                                     const Bytes* request,
                                     Bytes* response) override;
  grpc::ServerUnaryReactor* GetTransaction(grpc::CallbackServerContext* context,
                                           const Bytes* request,
                                           Bytes* response) override;
  grpc::ServerUnaryReactor* RegisterBranch(grpc::CallbackServerContext* context,
                                           const Bytes* request,
                                           Bytes* response) override;
  grpc::ServerUnaryReactor* ReportBranch(grpc::CallbackServerContext* context,
                                         const Bytes* request,
                                         Bytes* response) override;
  grpc::ServerBidiReactor<Bytes, Bytes>* Pipeline(
      grpc::CallbackServerContext* context) override;

 private:
  TransactionManager* const manager_;
  const AuthzPolicy* const policy_;
  StreamGate pipelines_;
};

class ParticipantServiceImpl final
    : public v1::ParticipantService::WithRawCallbackMethod_Attach<
          v1::ParticipantService::Service> {
 public:
  // `policy` (null: none) must outlive this service. Sessions keep to
  // `limits`; Attach streams beyond limits.max_attach_streams are refused.
  ParticipantServiceImpl(ParticipantRegistry* registry,
                         TransactionManager* manager, uint32_t node_id,
                         const AuthzPolicy* policy, const StreamLimits& limits)
      : registry_(registry),
        manager_(manager),
        node_id_(node_id),
        policy_(policy),
        limits_(limits),
        attaches_("Attach", "--max-attach-streams", limits.max_attach_streams) {
  }

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Attach(
      grpc::CallbackServerContext* context) override;

 private:
  ParticipantRegistry* const registry_;
  TransactionManager* const manager_;
  const uint32_t node_id_;
  const AuthzPolicy* const policy_;
  const StreamLimits limits_;
  StreamGate attaches_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_SERVICES_H_
