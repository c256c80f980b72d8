#ifndef BATON_TOOLS_BENCH_WORKLOADS_H_
#define BATON_TOOLS_BENCH_WORKLOADS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "baton/v1/types.pb.h"
#include "common/tls.h"
#include "tools/bench/load_driver.h"

namespace baton::bench {

// A participant process the load generator sends work to: the resource it
// serves and, for TCC, the address of its TccTry service (try.proto).
struct ParticipantTarget {
  std::string resource;
  std::string try_address;
};

// Where TransactionService calls go (defined in workloads.cc): one node, or
// many, routed as the SDK routes them.
class Coordinator;

struct CoordinatorOptions {
  // One node's address, or with `routed`, seeds from which the topology is
  // learned.
  std::vector<std::string> nodes;
  // Calls go on one SDK pipeline stream per node (as the SDK sends them),
  // or with false, as one unary RPC each.
  bool pipeline = true;
  // As the SDK over many nodes: each new transaction carries a fresh
  // idempotency key and goes to the node of the key's shard; every later
  // call goes to the owner of its xid's shard.
  bool routed = false;
  TlsFiles tls;  // For every call to the nodes.
};

// Transactions as chains of asynchronous calls on gRPC's callback API, so a
// handful of threads keeps hundreds of transactions in flight. Every
// transaction counts as an error unless it finished committed. The
// operations refer to this object, which must outlive them and every
// operation still running.
class Workloads {
 public:
  explicit Workloads(const CoordinatorOptions& options);
  Workloads(const std::string& coordinator, bool pipeline);
  ~Workloads();

  // For the operations made after it: the branches of TwoPhase, Tcc and
  // PostgresTransfer go all at once, as from a caller that calls its
  // services concurrently, instead of in turn.
  void set_parallel_branches(bool parallel) { parallel_branches_ = parallel; }

  // Begin, then Commit: 2 calls.
  Operation Empty();
  // Begin; per branch RegisterBranch and ReportBranch(PREPARED) on the
  // resources in turn; Commit waiting for phase two: 2 + 2 * branches calls.
  // The attached participants serve phase two.
  Operation TwoPhase(int branches, std::vector<std::string> resources);
  // Begin with `protocol`; per branch a TccTry call to the next target,
  // whose process runs Participant::Try for PROTOCOL_TCC (RegisterBranch,
  // the try behind its barrier, ReportBranch) or Participant::Enlist on its
  // trivial resource; Commit waiting for phase two: 2 + 3 * branches calls.
  Operation InParticipants(v1::Protocol protocol, int branches,
                           const std::vector<ParticipantTarget>& targets);
  // A transfer over PostgreSQL (2pc or tcc --postgres): Begin with
  // `protocol`; per branch, in turn, a TccTry call to the next target,
  // whose process runs Participant::Enlist on its PostgresXaResource (2PC)
  // or Participant::Try behind its PostgresBarrier (TCC), moving money in
  // one account (TransferAccount, TransferDelta); Commit waiting for phase
  // two: 2 + 3 * branches calls.
  Operation PostgresTransfer(v1::Protocol protocol, int branches,
                             const std::vector<ParticipantTarget>& targets);
  // SubmitSaga of `steps` steps on the resources in turn, waiting until the
  // saga finished: 1 call. The steps form a chain (each after the one
  // before), or with `parallel` have no order between them.
  Operation Saga(int steps, const std::vector<std::string>& resources,
                 bool parallel);
  // One unary echo against `address`.
  static Operation Echo(const std::string& address);

  // Routed only: the mean time one routing decision takes on this machine,
  // from a million lookups of xids spread over every shard known; nullopt
  // for one node.
  std::optional<double> RoutingNanosPerCall() const;

 private:
  std::unique_ptr<Coordinator> coordinator_;
  bool parallel_branches_ = false;
};

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_WORKLOADS_H_
