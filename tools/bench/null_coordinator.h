#ifndef BATON_TOOLS_BENCH_NULL_COORDINATOR_H_
#define BATON_TOOLS_BENCH_NULL_COORDINATOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "baton/v1/transaction_service.grpc.pb.h"

namespace baton::bench {

// A TransactionService that keeps nothing and decides nothing: its Pipeline
// answers every call as if it had succeeded (Begin hands out a new xid,
// Commit and SubmitSaga report COMMITTED, Rollback ROLLED_BACK). Run against
// it, a workload costs only what the transport, the SDK's pipeline client
// and the load generator cost: the latency floor batond is measured against.
//
// With a `sync_file`, every answer first waits for a group-committed append
// to that file and its fdatasync, as batond's answers wait for its store:
// the floor of any coordinator that syncs each call on this disk. The unary
// methods stay unimplemented.
class NullCoordinator final : public v1::TransactionService::CallbackService {
 public:
  // `sync_file` empty: answer at once.
  explicit NullCoordinator(const std::string& sync_file);
  ~NullCoordinator() override;

  grpc::ServerBidiReactor<v1::PipelineRequest, v1::PipelineReply>* Pipeline(
      grpc::CallbackServerContext* context) override;

  class Syncer;

 private:
  std::unique_ptr<Syncer> syncer_;  // Null when answering at once.
};

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_NULL_COORDINATOR_H_
