#ifndef BATON_COORDINATOR_ADMIN_SERVICE_H_
#define BATON_COORDINATOR_ADMIN_SERVICE_H_

#include <functional>
#include <string>

#include "baton/v1/admin_service.grpc.pb.h"
#include "coordinator/group_commit.h"
#include "coordinator/participant_registry.h"
#include "coordinator/store.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// Serves AdminService on the callback API. Every call must carry
// "authorization: Bearer <admin_token>"; with an empty token the admin API is
// off and every call is PERMISSION_DENIED. Once the store has failed, the
// transactions held in memory may be ahead of the disk, so listing them is
// refused with the store's error; GetStats still answers and says why.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(std::string admin_token, TransactionStore* store,
                   const GroupCommitter* committer, TransactionManager* manager,
                   ParticipantRegistry* registry)
      : admin_token_(std::move(admin_token)),
        store_(store),
        committer_(committer),
        manager_(manager),
        registry_(registry) {}

  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;
  grpc::ServerUnaryReactor* ListTransactions(
      grpc::CallbackServerContext* context,
      const v1::ListTransactionsRequest* request,
      v1::ListTransactionsResponse* response) override;
  grpc::ServerUnaryReactor* ListParticipants(
      grpc::CallbackServerContext* context,
      const v1::ListParticipantsRequest* request,
      v1::ListParticipantsResponse* response) override;
  grpc::ServerUnaryReactor* ForceCommit(
      grpc::CallbackServerContext* context, const v1::OperatorRequest* request,
      v1::OperatorResponse* response) override;
  grpc::ServerUnaryReactor* ForceRollback(
      grpc::CallbackServerContext* context, const v1::OperatorRequest* request,
      v1::OperatorResponse* response) override;
  grpc::ServerUnaryReactor* Retry(grpc::CallbackServerContext* context,
                                  const v1::OperatorRequest* request,
                                  v1::OperatorResponse* response) override;
  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* context,
                                  const v1::OperatorRequest* request,
                                  v1::OperatorResponse* response) override;
  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* context,
                                   const v1::OperatorRequest* request,
                                   v1::OperatorResponse* response) override;
  grpc::ServerUnaryReactor* Forget(grpc::CallbackServerContext* context,
                                   const v1::OperatorRequest* request,
                                   v1::OperatorResponse* response) override;

 private:
  // What an operator call does once authorized and validated.
  using OperatorCall =
      std::function<void(const operator_actions::Request&,
                         TransactionManager::Reply<v1::Transaction>)>;

  grpc::ServerUnaryReactor* Operate(grpc::CallbackServerContext* context,
                                    const v1::OperatorRequest& request,
                                    v1::OperatorResponse* response,
                                    bool needs_reason, OperatorCall call);
  grpc::ServerUnaryReactor* RunAction(
      grpc::CallbackServerContext* context, const v1::OperatorRequest& request,
      v1::OperatorResponse* response,
      TransactionManager::OperatorAction action);
  grpc::Status Authorize(const grpc::CallbackServerContext& context) const;
  grpc::Status FillStats(v1::GetStatsResponse* response);
  grpc::Status FillList(const v1::ListTransactionsRequest& request,
                        v1::ListTransactionsResponse* response);
  grpc::Status FillParticipants(v1::ListParticipantsResponse* response);

  const std::string admin_token_;
  TransactionStore* const store_;
  const GroupCommitter* const committer_;
  TransactionManager* const manager_;
  ParticipantRegistry* const registry_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_ADMIN_SERVICE_H_
