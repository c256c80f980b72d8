#ifndef BATON_COORDINATOR_ADMIN_SERVICE_H_
#define BATON_COORDINATOR_ADMIN_SERVICE_H_

#include "baton/v1/admin_service.grpc.pb.h"
#include "coordinator/store.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// Serves AdminService on the callback API.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(TransactionStore* store, TransactionManager* manager)
      : store_(store), manager_(manager) {}

  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* context,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) override;

 private:
  TransactionStore* const store_;
  TransactionManager* const manager_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_ADMIN_SERVICE_H_
