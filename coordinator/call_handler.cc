#include "coordinator/call_handler.h"

#include <chrono>
#include <string>
#include <string_view>
#include <type_traits>

#include "coordinator/coordinator_metrics.h"
#include "coordinator/message_size.h"
#include "coordinator/request_validation.h"
#include "protocols/instants.h"

namespace baton {
namespace {

// A call answers with its response, or GetTransaction with the record.
template <typename Response>
void FillResponse(Response* response, const Response& value) {
  *response = value;
}
template <typename Response>
void FillResponse(Response* response, const v1::Transaction& value) {
  *response->mutable_transaction() = value;
}

// Validates, then runs `call(request, reply)`; the manager's reply becomes
// the response handed to `finish`, its instants shown on the wall clock.
template <typename Request, typename Response, typename Call>
void Run(TransactionManager* manager, const Request& request,
         FinishCall<Response> finish, Call call) {
  if (absl::Status s = Validate(request); !s.ok()) {
    finish(s, Response());
    return;
  }
  // "BeginRequest" -> "Begin"; one histogram child per method, found once.
  static metrics::Histogram* const latency = [] {
    std::string method = Request::descriptor()->name();
    method.resize(method.size() - std::string_view("Request").size());
    return Metrics().request_seconds.With({method});
  }();
  auto start = std::chrono::steady_clock::now();
  call(request,
       [finish = std::move(finish), start, timeline = manager->timeline()](
           const absl::Status& s, const auto& value) {
         latency->Observe(std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - start)
                              .count());
         Response response;
         if (s.ok()) {
           FillResponse(&response, value);
           instants::Shift(&response, timeline->WallOffsetMs());
         }
         finish(s, std::move(response));
       });
}

}  // namespace

void HandleCall(TransactionManager* manager, const v1::BeginRequest& request,
                FinishCall<v1::BeginResponse> finish) {
  Run(manager, request, std::move(finish),
      [manager](auto& r, auto reply) { manager->Begin(r, std::move(reply)); });
}

void HandleCall(TransactionManager* manager, const v1::CommitRequest& request,
                FinishCall<v1::CommitResponse> finish) {
  Run(manager, request, std::move(finish),
      [manager](auto& r, auto reply) { manager->Commit(r, std::move(reply)); });
}

void HandleCall(TransactionManager* manager, const v1::RollbackRequest& request,
                FinishCall<v1::RollbackResponse> finish) {
  Run(manager, request, std::move(finish), [manager](auto& r, auto reply) {
    manager->Rollback(r, std::move(reply));
  });
}

void HandleCall(TransactionManager* manager,
                const v1::GetTransactionRequest& request,
                FinishCall<v1::GetTransactionResponse> finish) {
  // The response's own tag and length around the record.
  constexpr size_t kWrapperBytes = 16;
  size_t limit = PeerReceiveBytes(request.max_response_bytes());
  size_t fits = limit > kWrapperBytes ? limit - kWrapperBytes : limit;
  FinishCall<v1::GetTransactionResponse> fitted =
      [finish = std::move(finish), fits](const absl::Status& s,
                                         v1::GetTransactionResponse&& r) {
        absl::Status fit =
            s.ok() ? FitTransaction(r.mutable_transaction(), fits) : s;
        finish(fit, std::move(r));
      };
  Run(manager, request, std::move(fitted), [manager](auto& r, auto reply) {
    manager->GetTransaction(r.xid(), std::move(reply));
  });
}

void HandleCall(TransactionManager* manager,
                const v1::RegisterBranchRequest& request,
                FinishCall<v1::RegisterBranchResponse> finish) {
  Run(manager, request, std::move(finish), [manager](auto& r, auto reply) {
    manager->RegisterBranch(r, std::move(reply));
  });
}

void HandleCall(TransactionManager* manager,
                const v1::ReportBranchRequest& request,
                FinishCall<v1::ReportBranchResponse> finish) {
  Run(manager, request, std::move(finish), [manager](auto& r, auto reply) {
    manager->ReportBranch(r, std::move(reply));
  });
}

void HandleCall(TransactionManager* manager,
                const v1::SubmitSagaRequest& request,
                FinishCall<v1::SubmitSagaResponse> finish) {
  Run(manager, request, std::move(finish), [manager](auto& r, auto reply) {
    manager->SubmitSaga(r, std::move(reply));
  });
}

}  // namespace baton
