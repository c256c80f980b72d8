// Every TransactionService and AdminService request: the syntax checks of
// request_validation.h on the parsed message, then the fuzzed bytes as sent
// by any client to a real coordinator. Either may refuse; neither may crash,
// and the coordinator keeps serving.
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>

#include "baton/v1/admin_service.pb.h"
#include "baton/v1/topology.pb.h"
#include "baton/v1/transaction_service.pb.h"
#include "coordinator/request_validation.h"
#include "fuzz/fuzz_server.h"

namespace {

using baton::fuzz::FuzzServer;

// Parses `body` as T and, if it parses, runs its validator.
template <typename T>
void ValidateAs(std::string_view body) {
  T request;
  if (request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    (void)baton::Validate(request);
  }
}

template <typename T>
void ParseOnly(std::string_view body) {
  T request;
  (void)request.ParseFromArray(body.data(), static_cast<int>(body.size()));
}

struct Method {
  const char* name;
  std::function<void(std::string_view)> validate;
};

const Method kMethods[] = {
    {"/baton.v1.TransactionService/Begin", ValidateAs<baton::v1::BeginRequest>},
    {"/baton.v1.TransactionService/Commit",
     ValidateAs<baton::v1::CommitRequest>},
    {"/baton.v1.TransactionService/Rollback",
     ValidateAs<baton::v1::RollbackRequest>},
    {"/baton.v1.TransactionService/GetTransaction",
     ValidateAs<baton::v1::GetTransactionRequest>},
    {"/baton.v1.TransactionService/RegisterBranch",
     ValidateAs<baton::v1::RegisterBranchRequest>},
    {"/baton.v1.TransactionService/ReportBranch",
     ValidateAs<baton::v1::ReportBranchRequest>},
    {"/baton.v1.TransactionService/SubmitSaga",
     ValidateAs<baton::v1::SubmitSagaRequest>},
    {"/baton.v1.AdminService/GetStats", ParseOnly<baton::v1::GetStatsRequest>},
    {"/baton.v1.AdminService/ListTransactions",
     ParseOnly<baton::v1::ListTransactionsRequest>},
    {"/baton.v1.AdminService/ListParticipants",
     ParseOnly<baton::v1::ListParticipantsRequest>},
    {"/baton.v1.AdminService/ForceCommit",
     ParseOnly<baton::v1::OperatorRequest>},
    {"/baton.v1.AdminService/ForceRollback",
     ParseOnly<baton::v1::OperatorRequest>},
    {"/baton.v1.AdminService/Retry", ParseOnly<baton::v1::OperatorRequest>},
    {"/baton.v1.AdminService/Pause", ParseOnly<baton::v1::OperatorRequest>},
    {"/baton.v1.AdminService/Resume", ParseOnly<baton::v1::OperatorRequest>},
    {"/baton.v1.AdminService/Forget", ParseOnly<baton::v1::OperatorRequest>},
    {"/baton.v1.AdminService/DrainShard",
     ParseOnly<baton::v1::DrainShardRequest>},
    {"/baton.v1.TopologyService/GetTopology",
     ParseOnly<baton::v1::GetTopologyRequest>},
};
constexpr size_t kMethodCount = sizeof(kMethods) / sizeof(kMethods[0]);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Method& method = kMethods[data[0] % kMethodCount];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  method.validate(body);
  FuzzServer& server = FuzzServer::Get();
  server.Call(method.name, body);
  static int inputs = 0;
  if (++inputs % 256 == 0) server.CheckHealthy();
  return 0;
}
