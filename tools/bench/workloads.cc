#include "tools/bench/workloads.h"

#include <functional>

#include "baton/propagation.h"
#include "baton/saga.h"
#include "common/limits.h"
#include "fmt/format.h"
#include "try.grpc.pb.h"

namespace baton::bench {
namespace {

using Done = std::function<void(const grpc::Status&)>;
using Stub = v1::TransactionService::Stub;
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

// An error unless the call succeeded and the transaction ended committed.
grpc::Status Finished(const grpc::Status& s, v1::GlobalStatus status,
                      const std::string& reason) {
  if (!s.ok() || status == v1::GLOBAL_STATUS_COMMITTED) return s;
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      fmt::format("did not finish committed: {} {}",
                                  v1::GlobalStatus_Name(status), reason));
}

void Commit(const std::shared_ptr<Stub>& stub, const std::string& xid,
            Done done) {
  v1::CommitRequest request;
  request.set_xid(xid);
  request.set_wait(true);
  Call<v1::CommitRequest, v1::CommitResponse>(
      [stub](auto* c, auto* q, auto* r, auto cb) {
        stub->async()->Commit(c, q, r, std::move(cb));
      },
      request,
      [done](const grpc::Status& s, const v1::CommitResponse& r) {
        done(Finished(s, r.status(), ""));
      });
}

void Begin(const std::shared_ptr<Stub>& stub, v1::Protocol protocol,
           std::function<void(const std::string& xid)> next, Done fail) {
  v1::BeginRequest request;
  request.set_name("bench");
  request.set_protocol(protocol);
  Call<v1::BeginRequest, v1::BeginResponse>(
      [stub](auto* c, auto* q, auto* r, auto cb) {
        stub->async()->Begin(c, q, r, std::move(cb));
      },
      request,
      [next, fail](const grpc::Status& s, const v1::BeginResponse& r) {
        if (!s.ok()) return fail(s);
        next(r.xid());
      });
}

// Runs one transaction's branch steps in turn, then commits.
struct BranchChain : std::enable_shared_from_this<BranchChain> {
  std::shared_ptr<Stub> stub;
  std::shared_ptr<const BranchStep> step;
  int branches;
  std::string xid;
  Done done;

  void Branch(int index) {
    if (index == branches) return Commit(stub, xid, done);
    auto self = shared_from_this();
    (*step)(xid, index, [self, index](const grpc::Status& s) {
      if (!s.ok()) return self->done(s);
      self->Branch(index + 1);
    });
  }
};

// Begin with `protocol`, `step` for each branch, Commit.
Operation BranchesThenCommit(std::shared_ptr<Stub> stub, v1::Protocol protocol,
                             int branches, BranchStep step) {
  auto shared_step = std::make_shared<const BranchStep>(std::move(step));
  return [stub, protocol, branches, shared_step](Done done) {
    Begin(
        stub, protocol,
        [=](const std::string& xid) {
          if (branches == 0) return Commit(stub, xid, done);
          auto chain = std::make_shared<BranchChain>();
          chain->stub = stub;
          chain->step = shared_step;
          chain->branches = branches;
          chain->xid = xid;
          chain->done = done;
          chain->Branch(0);
        },
        done);
  };
}

void ReportPrepared(const std::shared_ptr<Stub>& stub, const std::string& xid,
                    uint64_t branch_id, Done next) {
  v1::ReportBranchRequest request;
  request.set_xid(xid);
  request.set_branch_id(branch_id);
  request.set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
  Call<v1::ReportBranchRequest, v1::ReportBranchResponse>(
      [stub](auto* c, auto* q, auto* r, auto cb) {
        stub->async()->ReportBranch(c, q, r, std::move(cb));
      },
      request,
      [next](const grpc::Status& s, const v1::ReportBranchResponse&) {
        next(s);
      });
}

// Phase one of an XA branch as a participant does it: RegisterBranch, then
// ReportBranch(PREPARED).
void Prepare(const std::shared_ptr<Stub>& stub, const std::string& xid,
             const std::string& resource, Done next) {
  v1::RegisterBranchRequest request;
  request.set_xid(xid);
  request.set_resource(resource);
  request.set_type(v1::BRANCH_TYPE_XA);
  request.set_application_data("bench");
  Call<v1::RegisterBranchRequest, v1::RegisterBranchResponse>(
      [stub](auto* c, auto* q, auto* r, auto cb) {
        stub->async()->RegisterBranch(c, q, r, std::move(cb));
      },
      request,
      [stub, xid, next](const grpc::Status& s,
                        const v1::RegisterBranchResponse& r) {
        if (!s.ok()) return next(s);
        ReportPrepared(stub, xid, r.branch_id(), next);
      });
}

// Asks a participant process to run its try for `xid`.
void TryOn(const std::shared_ptr<TccTry::Stub>& stub,
           const std::string& resource, const std::string& xid, Done next) {
  TryRequest request;
  request.set_resource(resource);
  Call<TryRequest, TryReply>(
      [stub](auto* c, auto* q, auto* r, auto cb) {
        stub->async()->Try(c, q, r, std::move(cb));
      },
      request, [next](const grpc::Status& s, const TryReply&) { next(s); },
      xid);
}

}  // namespace

Workloads::Workloads(const std::string& coordinator) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(limits::kMaxMessageBytes);
  stub_ = v1::TransactionService::NewStub(grpc::CreateCustomChannel(
      coordinator, grpc::InsecureChannelCredentials(), args));
}

Operation Workloads::Empty() {
  return BranchesThenCommit(stub_, v1::PROTOCOL_TWO_PHASE, 0, nullptr);
}

Operation Workloads::TwoPhase(int branches,
                              std::vector<std::string> resources) {
  auto stub = stub_;
  return BranchesThenCommit(
      stub, v1::PROTOCOL_TWO_PHASE, branches,
      [stub, resources](const std::string& xid, int index, Done next) {
        Prepare(stub, xid, resources[index % resources.size()], next);
      });
}

Operation Workloads::Tcc(int branches,
                         const std::vector<ParticipantTarget>& targets) {
  std::vector<std::pair<std::string, std::shared_ptr<TccTry::Stub>>> tries;
  for (const ParticipantTarget& target : targets) {
    tries.emplace_back(
        target.resource,
        TccTry::NewStub(grpc::CreateChannel(
            target.try_address, grpc::InsecureChannelCredentials())));
  }
  return BranchesThenCommit(
      stub_, v1::PROTOCOL_TCC, branches,
      [tries](const std::string& xid, int index, Done next) {
        const auto& [resource, stub] = tries[index % tries.size()];
        TryOn(stub, resource, xid, next);
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
  auto stub = stub_;
  return [stub, request](Done done) {
    Call<v1::SubmitSagaRequest, v1::SubmitSagaResponse>(
        [stub](auto* c, auto* q, auto* r, auto cb) {
          stub->async()->SubmitSaga(c, q, r, std::move(cb));
        },
        *request,
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
