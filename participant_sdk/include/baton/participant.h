#ifndef BATON_PARTICIPANT_H_
#define BATON_PARTICIPANT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/tls.h"

// The participant's side of Baton: a service registers resources, joins
// global transactions as branches, and serves the coordinator's phase-two
// commands on SDK-owned threads.
//
//   class Accounts : public baton::XaResource {
//     absl::Status Prepare(const baton::BranchContext& b) override;  // hold
//     baton::PhaseTwoResult Commit(const baton::BranchContext& b) override;
//     baton::PhaseTwoResult Rollback(const baton::BranchContext& b) override;
//   };
//
//   Accounts accounts;
//   auto participant = baton::Participant::Create(
//       {.coordinator = addr, .service = "bank"});
//   (*participant)->AddXaResource("bank-a", &accounts);
//   (*participant)->Start();
//   ...
//   // In a request handler that carries an xid (see propagation.h):
//   absl::StatusOr<uint64_t> branch =
//       (*participant)->Enlist(xid, "bank-a", encoded_request);
namespace baton {

// What a handler is told about the branch it acts on.
struct BranchContext {
  std::string xid;
  uint64_t branch_id = 0;
  std::string resource;
  // The bytes given to Enlist, handed back unchanged in phase two.
  std::string application_data;
  // Delivery attempt of this phase-two command, from 1 (0 in Prepare).
  uint32_t attempt = 0;
};

// A phase-two handler's answer.
struct PhaseTwoResult {
  enum class Outcome { kDone, kRetry, kFailed };

  // Applied now, or already applied earlier (handlers must be idempotent:
  // the coordinator may resend a command).
  static PhaseTwoResult Done() { return {Outcome::kDone, ""}; }
  // Not applied; the coordinator retries with backoff.
  static PhaseTwoResult Retry(std::string why) {
    return {Outcome::kRetry, std::move(why)};
  }
  // Will never apply: the transaction needs an operator.
  static PhaseTwoResult Failed(std::string why) {
    return {Outcome::kFailed, std::move(why)};
  }

  Outcome outcome;
  std::string message;
};

// A resource with two-phase semantics. Handlers run on SDK threads, possibly
// concurrently for different branches; commands for one branch never run
// concurrently with each other.
// A branch a resource holds prepared without knowing its outcome.
struct InDoubtBranch {
  std::string xid;
  uint64_t branch_id = 0;
};

class XaResource {
 public:
  virtual ~XaResource() = default;
  // Does the branch's work and holds it durably, so that Commit cannot fail
  // for business reasons. A non-OK status reports the branch failed, which
  // rolls the global transaction back.
  virtual absl::Status Prepare(const BranchContext& branch) = 0;
  // Makes the prepared work permanent. Idempotent.
  virtual PhaseTwoResult Commit(const BranchContext& branch) = 0;
  // Undoes whatever Prepare held, if anything: it may be called for a branch
  // that never prepared, or whose Prepare is still running. Idempotent.
  virtual PhaseTwoResult Rollback(const BranchContext& branch) = 0;
  // Lists the branches this resource holds prepared, for example after a
  // crash. Called at every attach and, for resources added with
  // AddXaResource, every ParticipantOptions::recovery_interval while
  // attached; the coordinator answers each with Commit
  // or Rollback (rollback if it has no record: presumed abort). Listing a
  // branch that is mid-flight is harmless. The default lists none.
  virtual std::vector<InDoubtBranch> Recover() { return {}; }
};

struct ParticipantOptions {
  // batond's address, HOST:PORT; several nodes' addresses separated by
  // commas are taken as `seeds`.
  std::string coordinator = "127.0.0.1:7420";
  // Or, for many nodes: some nodes' addresses (see ClientOptions::seeds).
  // The participant keeps one stream to every node the topology names,
  // opening and closing streams as nodes come and go (it looks every
  // topology_refresh), and reports each branch in doubt to the node owning
  // its transaction's shard. Overrides `coordinator` when set.
  std::vector<std::string> seeds;
  std::chrono::milliseconds topology_refresh{2000};
  // The service's name, for operators.
  std::string service;
  // Unique per process; empty picks "<service>-<pid>-<random>".
  std::string instance_id;
  // Threads that run phase-two handlers. Handlers wait on disks and
  // databases, and a group-committing barrier (LevelDbBarrier) shares one
  // sync among the handlers waiting at once, so this also bounds its groups:
  // with 4, tcc --leveldb-barrier in baton-bench ran at 0.86 of its rate
  // with 16 (docs/PERFORMANCE.md).
  int worker_threads = 16;
  // Reconnect backoff after the coordinator stream breaks.
  std::chrono::milliseconds reconnect_initial{100};
  std::chrono::milliseconds reconnect_max{2000};
  // Deadline of each unary call to the coordinator.
  std::chrono::milliseconds call_timeout{5000};
  // TCC barrier records of resolved branches are kept this long, then
  // purged (checked every barrier_purge_interval).
  std::chrono::milliseconds barrier_retention{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds barrier_purge_interval{std::chrono::minutes(10)};
  // XA resources are asked for their prepared branches (Recover) at every
  // attach and again this often while attached, so a branch that one could
  // not list at attach (its database was down) is still resolved. Zero: at
  // attach only.
  std::chrono::milliseconds recovery_interval{std::chrono::minutes(1)};
  // For the streams and calls to every node.
  TlsOptions tls;
  // Where the coordinator has an authorization policy and no client
  // certificate says who this is: the token its policy knows by digest
  // (AuthzPolicy's token_sha256), sent on every stream and call, and only
  // over TLS.
  std::string token;
};

class SagaResource;
class TccResource;
class BarrierStore;
using ActionValues = std::map<std::string, std::string>;

// One process's attachment to the coordinator (to each of its nodes).
// Thread-safe after Start.
class Participant {
 public:
  static absl::StatusOr<std::unique_ptr<Participant>> Create(
      const ParticipantOptions& options);
  virtual ~Participant() = default;

  // Serves `name` with `resource`, which must outlive this object. Only
  // before Start. INVALID_ARGUMENT for an empty or duplicate name.
  virtual absl::Status AddXaResource(const std::string& name,
                                     XaResource* resource) = 0;

  // Serves `name` with TCC hooks guarded by `barrier` (see tcc.h). Both must
  // outlive this object. Only before Start.
  virtual absl::Status AddTccResource(const std::string& name,
                                      TccResource* resource,
                                      BarrierStore* barrier) = 0;

  // Serves `name`'s saga steps with `resource` guarded by `barrier` (see
  // saga.h). Both must outlive this object. Only before Start.
  virtual absl::Status AddSagaResource(const std::string& name,
                                       SagaResource* resource,
                                       BarrierStore* barrier) = 0;

  // Attaches in the background and keeps reattaching with backoff whenever
  // the stream breaks. FAILED_PRECONDITION if no resource was added.
  virtual absl::Status Start() = 0;

  // True once attached to every node known, false if `timeout` passed
  // first.
  virtual bool WaitAttached(std::chrono::milliseconds timeout) = 0;

  // Phase one of a branch of `xid` on `resource`: registers the branch, runs
  // the resource's Prepare, and reports the outcome. Returns the branch id
  // if prepared; Prepare's error (after reporting the branch failed), or the
  // coordinator's error if it refused the branch.
  virtual absl::StatusOr<uint64_t> Enlist(
      const std::string& xid, const std::string& resource,
      const std::string& application_data) = 0;

  // The TCC counterpart of Enlist, for a transaction begun with
  // PROTOCOL_TCC: registers a TCC branch carrying `action`, runs the
  // resource's Try behind the barrier, and reports the outcome.
  virtual absl::StatusOr<uint64_t> Try(const std::string& xid,
                                       const std::string& resource,
                                       const ActionValues& action) = 0;

  // Called exactly once with what Enlist or Try would have returned, on one
  // of the participant's threads (a gRPC thread, or a worker). Must not
  // block: finish the caller's call from it (a reactor's Finish).
  using PhaseOneDone = std::function<void(absl::StatusOr<uint64_t>)>;

  // Enlist and Try for a service on an asynchronous server (gRPC's callback
  // API): the handler returns at once, and no thread waits while the
  // coordinator answers. Prepare, or the try behind its barrier, runs on a
  // worker thread (worker_threads) and may block. Same outcomes, retries
  // and deadlines as the blocking calls. Destroying the participant waits
  // for the ones still running.
  virtual void EnlistAsync(const std::string& xid, const std::string& resource,
                           const std::string& application_data,
                           PhaseOneDone done) = 0;
  virtual void TryAsync(const std::string& xid, const std::string& resource,
                        const ActionValues& action, PhaseOneDone done) = 0;

  virtual const std::string& instance_id() const = 0;
};

}  // namespace baton

#endif  // BATON_PARTICIPANT_H_
