#ifndef BATON_COORDINATOR_ADMIN_SERVICE_H_
#define BATON_COORDINATOR_ADMIN_SERVICE_H_

#include <functional>
#include <string>

#include "baton/v1/admin_service.grpc.pb.h"
#include "common/serial_executor.h"
#include "coordinator/authz.h"
#include "coordinator/group_commit.h"
#include "coordinator/participant_registry.h"
#include "coordinator/recent_rates.h"
#include "coordinator/store.h"
#include "coordinator/transaction_manager.h"
#include "coordinator/wire.h"

namespace baton {

using RawAdminService = v1::AdminService::WithRawCallbackMethod_GetStats<
    v1::AdminService::WithRawCallbackMethod_ListTransactions<
        v1::AdminService::WithRawCallbackMethod_ListParticipants<
            v1::AdminService::WithRawCallbackMethod_ForceCommit<
                v1::AdminService::WithRawCallbackMethod_ForceRollback<
                    v1::AdminService::WithRawCallbackMethod_Retry<
                        v1::AdminService::WithRawCallbackMethod_Pause<
                            v1::AdminService::WithRawCallbackMethod_Resume<
                                v1::AdminService::WithRawCallbackMethod_Forget<
                                    v1::AdminService::
                                        WithRawCallbackMethod_DrainShard<
                                            v1::AdminService::Service>>>>>>>>>>;

// Serves AdminService on gRPC's raw callback API (see wire.h). Every call
// must carry "authorization: Bearer <admin_token>" or come with a client
// certificate the policy names an admin; with neither an empty token turns
// the admin API off and every call is PERMISSION_DENIED. Replies fit 4 MiB
// (gRPC's default receive limit): pages end early and a record travels
// without its application data if need be. Once the store has failed, the
// transactions held in memory may be ahead of the disk, so listing them is
// refused with the store's error; GetStats still answers and says why.
class AdminServiceImpl final : public RawAdminService {
 public:
  // An admin call needs `admin_token`, or a client certificate naming one
  // of `policy`'s admin identities (`policy` may be null). GetStats reads
  // its recent seconds from `rates`.
  AdminServiceImpl(std::string admin_token, const AuthzPolicy* policy,
                   TransactionStore* store, GroupCommitter* committer,
                   TransactionManager* manager, ParticipantRegistry* registry,
                   const RecentRates* rates)
      : admin_token_(std::move(admin_token)),
        policy_(policy),
        store_(store),
        committer_(committer),
        manager_(manager),
        registry_(registry),
        rates_(rates) {}

  using Bytes = grpc::ByteBuffer;
  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* GetStats(Context* context, const Bytes* request,
                                     Bytes* response) override;
  grpc::ServerUnaryReactor* ListTransactions(Context* context,
                                             const Bytes* request,
                                             Bytes* response) override;
  grpc::ServerUnaryReactor* ListParticipants(Context* context,
                                             const Bytes* request,
                                             Bytes* response) override;
  grpc::ServerUnaryReactor* ForceCommit(Context* context, const Bytes* request,
                                        Bytes* response) override;
  grpc::ServerUnaryReactor* ForceRollback(Context* context,
                                          const Bytes* request,
                                          Bytes* response) override;
  grpc::ServerUnaryReactor* Retry(Context* context, const Bytes* request,
                                  Bytes* response) override;
  grpc::ServerUnaryReactor* Pause(Context* context, const Bytes* request,
                                  Bytes* response) override;
  grpc::ServerUnaryReactor* Resume(Context* context, const Bytes* request,
                                   Bytes* response) override;
  grpc::ServerUnaryReactor* Forget(Context* context, const Bytes* request,
                                   Bytes* response) override;
  grpc::ServerUnaryReactor* DrainShard(Context* context, const Bytes* request,
                                       Bytes* response) override;

 private:
  // What an operator call does once authorized and validated.
  using OperatorCall = std::function<void(
      const v1::OperatorRequest&, const operator_actions::Request&,
      TransactionManager::Reply<v1::Transaction>)>;

  // Authorizes, then answers with what `fill` puts in the response.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Read(
      Context* context, const Bytes* request, Bytes* response,
      std::function<grpc::Status(const Request&, Response*)> fill);
  grpc::ServerUnaryReactor* Operate(Context* context, const Bytes* request,
                                    Bytes* response, bool needs_reason,
                                    OperatorCall call);
  grpc::ServerUnaryReactor* RunAction(
      Context* context, const Bytes* request, Bytes* response,
      TransactionManager::OperatorAction action);
  grpc::Status Authorize(const Context& context) const;
  void List(const Context& context, const v1::ListTransactionsRequest& request,
            const wire::Finish<v1::ListTransactionsResponse>& finish);
  grpc::Status FillStats(const v1::GetStatsRequest& request,
                         v1::GetStatsResponse* response);
  grpc::Status FillList(const v1::ListTransactionsRequest& request,
                        v1::ListTransactionsResponse* response);
  grpc::Status FillParticipants(v1::ListParticipantsResponse* response);

 public:
  // Returns once every read queued so far has answered.
  void Drain() { reads_.Drain(); }

 private:
  const std::string admin_token_;
  const AuthzPolicy* const policy_;
  TransactionStore* const store_;
  GroupCommitter* const committer_;
  TransactionManager* const manager_;
  ParticipantRegistry* const registry_;
  const RecentRates* const rates_;
  // Reads and scans run here, off gRPC's threads, one at a time: a long
  // listing waits behind another rather than taking a second core. Last,
  // so it stops first.
  SerialExecutor reads_{"baton-admin"};
};

}  // namespace baton

#endif  // BATON_COORDINATOR_ADMIN_SERVICE_H_
