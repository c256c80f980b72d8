#ifndef BATON_TOOLS_BENCH_WORKLOADS_H_
#define BATON_TOOLS_BENCH_WORKLOADS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "baton/v1/transaction_service.grpc.pb.h"
#include "echo.grpc.pb.h"
#include "participant_sdk/internal/pipeline_client.h"
#include "tools/bench/load_driver.h"

namespace baton::bench {

// A participant process the load generator sends work to: the resource it
// serves and, for TCC, the address of its TccTry service (try.proto).
struct ParticipantTarget {
  std::string resource;
  std::string try_address;
};

// Transactions as chains of asynchronous calls on gRPC's callback API, so a
// handful of threads keeps hundreds of transactions in flight. Every
// transaction counts as an error unless it finished committed. The
// operations refer to this object, which must outlive them and every
// operation still running.
class Workloads {
 public:
  // Calls to batond go on one SDK pipeline stream (as the SDK sends them),
  // or with `pipeline` false, as one unary RPC each.
  Workloads(const std::string& coordinator, bool pipeline);

  // Where TransactionService calls go: exactly one of the two is set.
  struct Coordinator {
    std::shared_ptr<internal::PipelineClient> pipeline;
    std::shared_ptr<v1::TransactionService::Stub> stub;
  };

  // Begin, then Commit: 2 calls.
  Operation Empty();
  // Begin; per branch RegisterBranch and ReportBranch(PREPARED) on the
  // resources in turn; Commit waiting for phase two: 2 + 2 * branches calls.
  // The attached participants serve phase two.
  Operation TwoPhase(int branches, std::vector<std::string> resources);
  // Begin(PROTOCOL_TCC); per branch, in turn, a TccTry call to the next
  // target, whose process runs Participant::Try (RegisterBranch, the try
  // behind its barrier, ReportBranch); Commit waiting for the confirms:
  // 2 + 3 * branches calls.
  Operation Tcc(int branches, const std::vector<ParticipantTarget>& targets);
  // SubmitSaga of `steps` steps on the resources in turn, waiting until the
  // saga finished: 1 call. The steps form a chain (each after the one
  // before), or with `parallel` have no order between them.
  Operation Saga(int steps, const std::vector<std::string>& resources,
                 bool parallel);
  // One unary echo against `address`.
  static Operation Echo(const std::string& address);

 private:
  Coordinator coordinator_;
};

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_WORKLOADS_H_
