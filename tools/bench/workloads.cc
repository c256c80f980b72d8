#include "tools/bench/workloads.h"

#include <functional>

#include "common/limits.h"

namespace baton::bench {
namespace {

using Done = std::function<void(const grpc::Status&)>;
using Stub = v1::TransactionService::Stub;

// Issues one async unary call; `next` gets the status and response.
template <typename Request, typename Response, typename Start>
void Call(Start start, Request request,
          std::function<void(const grpc::Status&, const Response&)> next) {
  struct State {
    grpc::ClientContext context;
    Request request;
    Response response;
  };
  auto state = std::make_shared<State>();
  state->request = std::move(request);
  state->context.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::seconds(30));
  start(&state->context, &state->request, &state->response,
        [state, next = std::move(next)](grpc::Status s) {
          next(s, state->response);
        });
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
        if (s.ok() && r.status() != v1::GLOBAL_STATUS_COMMITTED) {
          return done(grpc::Status(
              grpc::StatusCode::INTERNAL,
              "commit did not finish: " + v1::GlobalStatus_Name(r.status())));
        }
        done(s);
      });
}

void Begin(const std::shared_ptr<Stub>& stub,
           std::function<void(const std::string& xid)> next, Done fail) {
  v1::BeginRequest request;
  request.set_name("bench");
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

// Registers and prepares branch `index`, then the rest, then commits.
struct TwoPhaseChain : std::enable_shared_from_this<TwoPhaseChain> {
  std::shared_ptr<Stub> stub;
  std::vector<std::string> resources;
  int branches;
  std::string xid;
  Done done;

  void Branch(int index) {
    if (index == branches) return Commit(stub, xid, done);
    v1::RegisterBranchRequest request;
    request.set_xid(xid);
    request.set_resource(resources[index % resources.size()]);
    request.set_type(v1::BRANCH_TYPE_XA);
    request.set_application_data("bench");
    auto self = shared_from_this();
    Call<v1::RegisterBranchRequest, v1::RegisterBranchResponse>(
        [this](auto* c, auto* q, auto* r, auto cb) {
          stub->async()->RegisterBranch(c, q, r, std::move(cb));
        },
        request,
        [self, index](const grpc::Status& s,
                      const v1::RegisterBranchResponse& r) {
          if (!s.ok()) return self->done(s);
          self->Report(index, r.branch_id());
        });
  }

  void Report(int index, uint64_t branch_id) {
    v1::ReportBranchRequest request;
    request.set_xid(xid);
    request.set_branch_id(branch_id);
    request.set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
    auto self = shared_from_this();
    Call<v1::ReportBranchRequest, v1::ReportBranchResponse>(
        [this](auto* c, auto* q, auto* r, auto cb) {
          stub->async()->ReportBranch(c, q, r, std::move(cb));
        },
        request,
        [self, index](const grpc::Status& s, const v1::ReportBranchResponse&) {
          if (!s.ok()) return self->done(s);
          self->Branch(index + 1);
        });
  }
};

}  // namespace

Workloads::Workloads(const std::string& coordinator) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(limits::kMaxMessageBytes);
  stub_ = v1::TransactionService::NewStub(grpc::CreateCustomChannel(
      coordinator, grpc::InsecureChannelCredentials(), args));
}

Operation Workloads::Empty() {
  auto stub = stub_;
  return [stub](Done done) {
    Begin(
        stub, [stub, done](const std::string& xid) { Commit(stub, xid, done); },
        done);
  };
}

Operation Workloads::TwoPhase(int branches,
                              std::vector<std::string> resources) {
  auto stub = stub_;
  return [stub, branches, resources](Done done) {
    Begin(
        stub,
        [=](const std::string& xid) {
          auto chain = std::make_shared<TwoPhaseChain>();
          chain->stub = stub;
          chain->resources = resources;
          chain->branches = branches;
          chain->xid = xid;
          chain->done = done;
          chain->Branch(0);
        },
        done);
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
