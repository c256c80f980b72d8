#ifndef BATON_TOOLS_BENCH_WORKLOADS_H_
#define BATON_TOOLS_BENCH_WORKLOADS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "baton/v1/transaction_service.grpc.pb.h"
#include "echo.grpc.pb.h"
#include "tools/bench/load_driver.h"

namespace baton::bench {

// Transactions as chains of asynchronous calls on gRPC's callback API, so a
// handful of threads keeps hundreds of transactions in flight.
class Workloads {
 public:
  explicit Workloads(const std::string& coordinator);

  // Begin, then Commit: 2 RPCs.
  Operation Empty();
  // Begin; per branch RegisterBranch and ReportBranch(PREPARED) on the
  // resources in turn; Commit waiting for phase two: 2 + 2 * branches RPCs.
  // The attached participants serve phase two.
  Operation TwoPhase(int branches, std::vector<std::string> resources);
  // One unary echo against `address`.
  static Operation Echo(const std::string& address);

 private:
  std::shared_ptr<v1::TransactionService::Stub> stub_;
};

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_WORKLOADS_H_
