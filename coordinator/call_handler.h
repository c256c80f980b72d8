#ifndef BATON_COORDINATOR_CALL_HANDLER_H_
#define BATON_COORDINATOR_CALL_HANDLER_H_

#include <functional>

#include "absl/status/status.h"
#include "baton/v1/transaction_service.pb.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// One TransactionService call, the same whether it came as a unary RPC or
// inside a Pipeline stream: validates the request, hands it to the manager,
// records the method's latency, and calls `finish` exactly once with the
// status and (when OK) the response, from whichever thread the manager
// answers on. `request` need only live until HandleCall returns.
template <typename Response>
using FinishCall = std::function<void(const absl::Status&, Response&&)>;

void HandleCall(TransactionManager* manager, const v1::BeginRequest& request,
                FinishCall<v1::BeginResponse> finish);
void HandleCall(TransactionManager* manager, const v1::CommitRequest& request,
                FinishCall<v1::CommitResponse> finish);
void HandleCall(TransactionManager* manager, const v1::RollbackRequest& request,
                FinishCall<v1::RollbackResponse> finish);
void HandleCall(TransactionManager* manager,
                const v1::GetTransactionRequest& request,
                FinishCall<v1::GetTransactionResponse> finish);
void HandleCall(TransactionManager* manager,
                const v1::RegisterBranchRequest& request,
                FinishCall<v1::RegisterBranchResponse> finish);
void HandleCall(TransactionManager* manager,
                const v1::ReportBranchRequest& request,
                FinishCall<v1::ReportBranchResponse> finish);
void HandleCall(TransactionManager* manager,
                const v1::SubmitSagaRequest& request,
                FinishCall<v1::SubmitSagaResponse> finish);

}  // namespace baton

#endif  // BATON_COORDINATOR_CALL_HANDLER_H_
