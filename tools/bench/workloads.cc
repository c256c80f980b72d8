#include "tools/bench/workloads.h"

#include <chrono>
#include <functional>
#include <map>

#include "absl/synchronization/mutex.h"
#include "baton/propagation.h"
#include "baton/saga.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "echo.grpc.pb.h"
#include "fmt/format.h"
#include "participant_sdk/internal/pipeline_client.h"
#include "participant_sdk/internal/router.h"
#include "participant_sdk/internal/rpc.h"
#include "tools/bench/postgres_bank.h"
#include "try.grpc.pb.h"

namespace baton::bench {

using Stub = v1::TransactionService::Stub;

// One node's end of the calls: exactly one of the two is set.
struct Endpoint {
  std::shared_ptr<internal::PipelineClient> pipeline;
  std::shared_ptr<Stub> stub;
};

class Coordinator {
 public:
  explicit Coordinator(const CoordinatorOptions& options) {
    if (options.routed) {
      // Learned once: a refresh blocks on the network, which no callback
      // thread may do, and a benchmark's topology does not change.
      router_ = std::make_unique<internal::Router>(
          options.nodes, std::chrono::seconds(5), options.tls,
          std::chrono::seconds(1), std::chrono::hours(24));
      router_->Refresh(/*force=*/true);
    }
    std::vector<std::string> addresses =
        router_ ? router_->Addresses() : options.nodes;
    for (const std::string& address : addresses) {
      std::shared_ptr<grpc::Channel> channel =
          internal::MakeCoordinatorChannel(address, options.tls);
      Endpoint& e = endpoints_[address];
      if (options.pipeline) {
        e.pipeline = std::make_shared<internal::PipelineClient>(channel);
      } else {
        e.stub = v1::TransactionService::NewStub(channel);
      }
    }
    first_ = &endpoints_.at(addresses.front());
  }

  const Endpoint& ForXid(const std::string& xid) const {
    return router_ ? At(router_->ForXid(xid)) : *first_;
  }

  // Where a new transaction goes; sets its idempotency key when routed.
  const Endpoint& ForNew(std::string* key) const {
    if (!router_) return *first_;
    *key = internal::NewRequestId();
    return At(router_->ForKey(*key));
  }

  internal::Router* router() const { return router_.get(); }

 private:
  const Endpoint& At(const std::string& address) const {
    auto it = endpoints_.find(address);
    return it == endpoints_.end() ? *first_ : it->second;
  }

  std::unique_ptr<internal::Router> router_;
  std::map<std::string, Endpoint> endpoints_;
  const Endpoint* first_ = nullptr;
};

namespace {

using Done = std::function<void(const grpc::Status&)>;
// Does branch `index` of transaction `xid`; calls `next` once.
using BranchStep =
    std::function<void(const std::string& xid, int index, Done next)>;

// Issues one async unary call, carrying `xid` in the metadata if it is not
// empty; `next` gets the status and response.
template <typename Request, typename Response, typename Start>
void Call(Start start, Request request,
          std::function<void(const grpc::Status&, const Response&)> next,
          const std::string& xid = "") {
  struct State {
    grpc::ClientContext context;
    Request request;
    Response response;
  };
  auto state = std::make_shared<State>();
  state->request = std::move(request);
  state->context.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::seconds(30));
  if (!xid.empty()) InjectXid(&state->context, xid);
  start(&state->context, &state->request, &state->response,
        [state, next = std::move(next)](grpc::Status s) {
          next(s, state->response);
        });
}

// Sends one TransactionService call, on the pipeline or as a unary RPC
// (`unary` starts it on the async stub); `next` gets the status and
// response. The member pointers name the call's PipelineCall and
// PipelineResult fields.
template <typename Request, typename Response, typename Unary>
void Send(const Endpoint& coordinator, Request request,
          Request* (v1::PipelineCall::*call_field)(),
          Response* (v1::PipelineResult::*result_field)(), Unary unary,
          std::function<void(const grpc::Status&, const Response&)> next) {
  if (coordinator.pipeline == nullptr) {
    std::shared_ptr<Stub> stub = coordinator.stub;
    return Call<Request, Response>(
        [stub, unary](auto* c, auto* q, auto* r, auto cb) {
          unary(stub->async(), c, q, r, std::move(cb));
        },
        std::move(request), std::move(next));
  }
  v1::PipelineCall call;
  (call.*call_field)()->Swap(&request);
  coordinator.pipeline->Call(
      std::move(call), [next = std::move(next), result_field](
                           const grpc::Status& s, v1::PipelineResult* r) {
        next(s, r == nullptr ? Response() : *(r->*result_field)());
      });
}

// An error unless the call succeeded and the transaction ended committed.
grpc::Status Finished(const grpc::Status& s, v1::GlobalStatus status,
                      const std::string& reason) {
  if (!s.ok() || status == v1::GLOBAL_STATUS_COMMITTED) return s;
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      fmt::format("did not finish committed: {} {}",
                                  v1::GlobalStatus_Name(status), reason));
}

void Commit(const Coordinator& coordinator, const std::string& xid, Done done) {
  v1::CommitRequest request;
  request.set_xid(xid);
  request.set_wait(true);
  Send<v1::CommitRequest, v1::CommitResponse>(
      coordinator.ForXid(xid), std::move(request),
      &v1::PipelineCall::mutable_commit, &v1::PipelineResult::mutable_commit,
      [](auto* async, auto... args) { async->Commit(args...); },
      [done](const grpc::Status& s, const v1::CommitResponse& r) {
        done(Finished(s, r.status(), ""));
      });
}

void Begin(const Coordinator& coordinator, v1::Protocol protocol,
           std::function<void(const std::string& xid)> next, Done fail) {
  v1::BeginRequest request;
  request.set_name("bench");
  request.set_protocol(protocol);
  const Endpoint& endpoint = coordinator.ForNew(request.mutable_request_id());
  Send<v1::BeginRequest, v1::BeginResponse>(
      endpoint, std::move(request), &v1::PipelineCall::mutable_begin,
      &v1::PipelineResult::mutable_begin,
      [](auto* async, auto... args) { async->Begin(args...); },
      [next, fail](const grpc::Status& s, const v1::BeginResponse& r) {
        if (!s.ok()) return fail(s);
        next(r.xid());
      });
}

// Runs one transaction's branch steps in turn, or with `parallel` all at
// once, then commits; the first failure ends it instead.
struct BranchChain : std::enable_shared_from_this<BranchChain> {
  const Coordinator* coordinator;
  std::shared_ptr<const BranchStep> step;
  int branches;
  bool parallel;
  std::string xid;
  Done done;
  absl::Mutex mu;
  int unfinished ABSL_GUARDED_BY(mu) = 0;
  grpc::Status failure ABSL_GUARDED_BY(mu);

  void Start() {
    if (!parallel) return Branch(0);
    {
      absl::MutexLock lock(&mu);
      unfinished = branches;
    }
    auto self = shared_from_this();
    for (int index = 0; index < branches; ++index) {
      (*step)(xid, index, [self](const grpc::Status& s) { self->Joined(s); });
    }
  }

 private:
  void Branch(int index) {
    if (index == branches) return Commit(*coordinator, xid, done);
    auto self = shared_from_this();
    (*step)(xid, index, [self, index](const grpc::Status& s) {
      if (!s.ok()) return self->done(s);
      self->Branch(index + 1);
    });
  }

  void Joined(const grpc::Status& s) {
    grpc::Status outcome;
    {
      absl::MutexLock lock(&mu);
      if (!s.ok() && failure.ok()) failure = s;
      if (--unfinished > 0) return;
      outcome = failure;
    }
    if (!outcome.ok()) return done(outcome);
    Commit(*coordinator, xid, done);
  }
};

// Begin with `protocol`, `step` for each branch (in turn, or with
// `parallel` at once), Commit.
Operation BranchesThenCommit(const Coordinator& coordinator,
                             v1::Protocol protocol, int branches, bool parallel,
                             BranchStep step) {
  auto shared_step = std::make_shared<const BranchStep>(std::move(step));
  // Callbacks hold the Coordinator by pointer: the last reference to its
  // PipelineClient must not drop on one of the client's own threads.
  const Coordinator* c = &coordinator;
  return [c, protocol, branches, parallel, shared_step](Done done) {
    Begin(
        *c, protocol,
        [=](const std::string& xid) {
          if (branches == 0) return Commit(*c, xid, done);
          auto chain = std::make_shared<BranchChain>();
          chain->coordinator = c;
          chain->step = shared_step;
          chain->branches = branches;
          chain->parallel = parallel;
          chain->xid = xid;
          chain->done = done;
          chain->Start();
        },
        done);
  };
}

void ReportPrepared(const Coordinator& coordinator, const std::string& xid,
                    uint64_t branch_id, Done next) {
  v1::ReportBranchRequest request;
  request.set_xid(xid);
  request.set_branch_id(branch_id);
  request.set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
  Send<v1::ReportBranchRequest, v1::ReportBranchResponse>(
      coordinator.ForXid(xid), std::move(request),
      &v1::PipelineCall::mutable_report_branch,
      &v1::PipelineResult::mutable_report_branch,
      [](auto* async, auto... args) { async->ReportBranch(args...); },
      [next](const grpc::Status& s, const v1::ReportBranchResponse&) {
        next(s);
      });
}

// Phase one of an XA branch as a participant does it: RegisterBranch, then
// ReportBranch(PREPARED).
void Prepare(const Coordinator& coordinator, const std::string& xid,
             const std::string& resource, Done next) {
  v1::RegisterBranchRequest request;
  request.set_xid(xid);
  request.set_resource(resource);
  request.set_type(v1::BRANCH_TYPE_XA);
  request.set_application_data("bench");
  Send<v1::RegisterBranchRequest, v1::RegisterBranchResponse>(
      coordinator.ForXid(xid), std::move(request),
      &v1::PipelineCall::mutable_register_branch,
      &v1::PipelineResult::mutable_register_branch,
      [](auto* async, auto... args) { async->RegisterBranch(args...); },
      [c = &coordinator, xid, next](const grpc::Status& s,
                                    const v1::RegisterBranchResponse& r) {
        if (!s.ok()) return next(s);
        ReportPrepared(*c, xid, r.branch_id(), next);
      });
}

// Asks a participant process to run its try (or its Enlist, with
// `application_data`) for `xid`.
void TryOn(const std::shared_ptr<TccTry::Stub>& stub,
           const std::string& resource, const std::string& xid, Done next,
           std::string application_data = "") {
  TryRequest request;
  request.set_resource(resource);
  request.set_application_data(std::move(application_data));
  Call<TryRequest, TryReply>(
      [stub](auto* c, auto* q, auto* r, auto cb) {
        stub->async()->Try(c, q, r, std::move(cb));
      },
      request, [next](const grpc::Status& s, const TryReply&) { next(s); },
      xid);
}

// Each target's resource, with a stub for its process's TccTry service.
std::vector<std::pair<std::string, std::shared_ptr<TccTry::Stub>>> TryStubs(
    const std::vector<ParticipantTarget>& targets) {
  std::vector<std::pair<std::string, std::shared_ptr<TccTry::Stub>>> tries;
  for (const ParticipantTarget& target : targets) {
    tries.emplace_back(
        target.resource,
        TccTry::NewStub(grpc::CreateChannel(
            target.try_address, grpc::InsecureChannelCredentials())));
  }
  return tries;
}

}  // namespace

Workloads::Workloads(const CoordinatorOptions& options)
    : coordinator_(std::make_unique<Coordinator>(options)) {}

Workloads::Workloads(const std::string& coordinator, bool pipeline)
    : Workloads(
          CoordinatorOptions{.nodes = {coordinator}, .pipeline = pipeline}) {}

Workloads::~Workloads() = default;

std::optional<double> Workloads::RoutingNanosPerCall() const {
  internal::Router* router = coordinator_->router();
  if (router == nullptr) return std::nullopt;
  std::vector<std::string> xids;
  for (size_t shard = 0;
       shard < std::max<size_t>(1, router->Addresses().size()); ++shard) {
    for (int i = 0; i < 64; ++i)
      xids.push_back(fmt::format("{}-1-{}", shard, i));
  }
  constexpr int kLookups = 1'000'000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kLookups; ++i) {
    coordinator_->ForXid(xids[i % xids.size()]);
  }
  std::chrono::duration<double, std::nano> took =
      std::chrono::steady_clock::now() - start;
  return took.count() / kLookups;
}

Operation Workloads::Empty() {
  return BranchesThenCommit(*coordinator_, v1::PROTOCOL_TWO_PHASE, 0, false,
                            nullptr);
}

Operation Workloads::TwoPhase(int branches,
                              std::vector<std::string> resources) {
  return BranchesThenCommit(
      *coordinator_, v1::PROTOCOL_TWO_PHASE, branches, parallel_branches_,
      [c = coordinator_.get(), resources](const std::string& xid, int index,
                                          Done next) {
        Prepare(*c, xid, resources[index % resources.size()], next);
      });
}

Operation Workloads::InParticipants(
    v1::Protocol protocol, int branches,
    const std::vector<ParticipantTarget>& targets) {
  std::vector<std::pair<std::string, std::shared_ptr<TccTry::Stub>>> tries =
      TryStubs(targets);
  return BranchesThenCommit(
      *coordinator_, protocol, branches, parallel_branches_,
      [tries](const std::string& xid, int index, Done next) {
        const auto& [resource, stub] = tries[index % tries.size()];
        TryOn(stub, resource, xid, next, "bench");
      });
}

Operation Workloads::PostgresTransfer(
    v1::Protocol protocol, int branches,
    const std::vector<ParticipantTarget>& targets) {
  std::vector<std::pair<std::string, std::shared_ptr<TccTry::Stub>>> tries =
      TryStubs(targets);
  return BranchesThenCommit(
      *coordinator_, protocol, branches, parallel_branches_,
      [tries, branches](const std::string& xid, int index, Done next) {
        const auto& [resource, stub] = tries[index % tries.size()];
        TryOn(stub, resource, xid, next,
              TransferData(TransferAccount(xid, index),
                           TransferDelta(index, branches)));
      });
}

Operation Workloads::Saga(int steps, const std::vector<std::string>& resources,
                          bool parallel) {
  SagaBuilder saga("bench");
  for (int i = 0; i < steps; ++i) {
    const std::string& resource = resources[i % resources.size()];
    SagaBuilder::StepRef step =
        saga.Step(fmt::format("step-{}", i), {resource, ""}, {resource, ""});
    if (!parallel && i > 0) step.After({fmt::format("step-{}", i - 1)});
  }
  auto request = std::make_shared<v1::SubmitSagaRequest>();
  request->set_name(saga.name());
  *request->mutable_definition() = saga.definition();
  request->set_wait(true);
  return [c = coordinator_.get(), request](Done done) {
    v1::SubmitSagaRequest submit = *request;
    const Endpoint& endpoint = c->ForNew(submit.mutable_request_id());
    Send<v1::SubmitSagaRequest, v1::SubmitSagaResponse>(
        endpoint, std::move(submit), &v1::PipelineCall::mutable_submit_saga,
        &v1::PipelineResult::mutable_submit_saga,
        [](auto* async, auto... args) { async->SubmitSaga(args...); },
        [done](const grpc::Status& s, const v1::SubmitSagaResponse& r) {
          done(Finished(s, r.status(), r.reason()));
        });
  };
}

Operation Workloads::Echo(const std::string& address) {
  std::shared_ptr<bench::Echo::Stub> stub = bench::Echo::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  return [stub](Done done) {
    EchoMessage request;
    request.set_payload("ping");
    Call<EchoMessage, EchoMessage>(
        [stub](auto* c, auto* q, auto* r, auto cb) {
          stub->async()->Echo(c, q, r, std::move(cb));
        },
        request,
        [done](const grpc::Status& s, const EchoMessage&) { done(s); });
  };
}

}  // namespace baton::bench
