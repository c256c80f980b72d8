#include "tools/bench/participant_process.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <memory>
#include <optional>

#include "baton/leveldb_barrier.h"
#include "baton/participant.h"
#include "baton/postgres_barrier.h"
#include "baton/postgres_xa_resource.h"
#include "baton/propagation.h"
#include "baton/saga.h"
#include "baton/tcc.h"
#include "common/grpc_status.h"
#include "common/port_file.h"
#include "common/signals.h"
#include "spdlog/spdlog.h"
#include "tools/bench/postgres_bank.h"
#include "try.grpc.pb.h"

namespace baton::bench {
namespace {

// More tries than baton-bench keeps in flight against one participant.
constexpr int kMaxTriesInFlight = 1024;

using namespace std::chrono_literals;

// Phase two that always succeeds at once.
class TrivialXa : public XaResource {
 public:
  absl::Status Prepare(const BranchContext&) override {
    return absl::OkStatus();
  }
  PhaseTwoResult Commit(const BranchContext&) override {
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Rollback(const BranchContext&) override {
    return PhaseTwoResult::Done();
  }
};

class TrivialTcc : public TccResource {
 public:
  explicit TrivialTcc(bool local) : local_(local) {}
  absl::Status Try(const TccContext&, LocalTransaction&) override {
    return absl::OkStatus();
  }
  bool TryIsLocal() const override { return local_; }
  PhaseTwoResult Confirm(const TccContext&, LocalTransaction&) override {
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Cancel(const TccContext&, LocalTransaction&) override {
    return PhaseTwoResult::Done();
  }

 private:
  const bool local_;
};

class TrivialSaga : public SagaResource {
 public:
  explicit TrivialSaga(bool local) : local_(local) {}
  PhaseTwoResult Act(const SagaStepContext&, LocalTransaction&) override {
    return PhaseTwoResult::Done();
  }
  bool ActIsLocal() const override { return local_; }
  PhaseTwoResult Compensate(const SagaStepContext&,
                            LocalTransaction&) override {
    return PhaseTwoResult::Done();
  }

 private:
  const bool local_;
};

// Runs each hook at once and remembers nothing, so the figures show the
// coordinator's cost and not a participant's disk (the 2PC workload's
// trivial XaResource writes nothing either). Safe only because the hooks do
// nothing: a repeated or late phase is as harmless as the first.
class PassThroughBarrier : public BarrierStore {
 public:
  absl::StatusOr<BarrierResult> Run(const BarrierCall& call,
                                    const BarrierHook& hook) override {
    LocalTransaction local;
    TryState state = call.phase == TccPhase::kCancel ? TryState::kCompleted
                                                     : TryState::kNone;
    if (absl::Status s = hook(local, state); !s.ok()) return s;
    return BarrierResult::kRan;
  }
  std::vector<std::pair<std::string, uint64_t>> Unresolved() override {
    return {};
  }
  absl::StatusOr<size_t> PurgeResolvedBefore(int64_t) override { return 0; }
};

// What a phase-one call runs: Participant::Try, or with `enlist`
// Participant::Enlist, for the caller's xid, as a service's handler does
// (see samples/order/stock_service.cc).
struct PhaseOneCall {
  Participant* participant;
  bool enlist;

  absl::StatusOr<uint64_t> Run(const std::string& xid,
                               const TryRequest& request) const {
    if (enlist) {
      return participant->Enlist(xid, request.resource(),
                                 request.application_data());
    }
    return participant->Try(xid, request.resource(),
                            TransferAction(request.application_data()));
  }

  void RunAsync(const std::string& xid, const TryRequest& request,
                Participant::PhaseOneDone done) const {
    if (enlist) {
      return participant->EnlistAsync(
          xid, request.resource(), request.application_data(), std::move(done));
    }
    participant->TryAsync(xid, request.resource(),
                          TransferAction(request.application_data()),
                          std::move(done));
  }
};

grpc::Status Answer(const absl::StatusOr<uint64_t>& branch, TryReply* reply) {
  if (!branch.ok()) return ToGrpcStatus(branch.status());
  reply->set_branch_id(*branch);
  return grpc::Status::OK;
}

const grpc::Status kNoXid(grpc::StatusCode::INVALID_ARGUMENT, "no xid");

// On gRPC's callback API with the SDK's asynchronous phase one: no thread
// waits while the coordinator answers.
class TryService final : public TccTry::CallbackService {
 public:
  explicit TryService(PhaseOneCall call) : call_(call) {}

  grpc::ServerUnaryReactor* Try(grpc::CallbackServerContext* context,
                                const TryRequest* request,
                                TryReply* reply) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::optional<std::string> xid = ExtractXid(*context);
    if (!xid) {
      reactor->Finish(kNoXid);
      return reactor;
    }
    call_.RunAsync(*xid, *request,
                   [reactor, reply](absl::StatusOr<uint64_t> branch) {
                     reactor->Finish(Answer(branch, reply));
                   });
    return reactor;
  }

 private:
  const PhaseOneCall call_;
};

// On gRPC's synchronous server with the SDK's blocking phase one, each call
// holding a thread throughout (baton-bench --blocking).
class BlockingTryService final : public TccTry::Service {
 public:
  explicit BlockingTryService(PhaseOneCall call) : call_(call) {}

  grpc::Status Try(grpc::ServerContext* context, const TryRequest* request,
                   TryReply* reply) override {
    std::optional<std::string> xid = ExtractXid(*context);
    if (!xid) return kNoXid;
    return Answer(call_.Run(*xid, *request), reply);
  }

 private:
  const PhaseOneCall call_;
};

// The barrier the flags ask for; `db` keeps the LevelDB open.
std::unique_ptr<BarrierStore> MakeBarrier(const ParticipantFlags& flags,
                                          std::unique_ptr<leveldb::DB>* db) {
  if (!flags.postgres.empty() && flags.protocol == "tcc") {
    absl::StatusOr<std::unique_ptr<PostgresBarrier>> barrier =
        PostgresBarrier::Open(PostgresBarrierOptions{
            .conninfo = flags.postgres,
            .max_idle_connections = kParticipantPostgresConnections,
            .max_connections = kParticipantPostgresConnections});
    if (!barrier.ok()) {
      spdlog::critical("cannot open the PostgreSQL barrier: {}",
                       barrier.status().ToString());
      return nullptr;
    }
    return std::move(*barrier);
  }
  if (flags.barrier_dir.empty()) {
    return std::make_unique<PassThroughBarrier>();
  }
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, flags.barrier_dir, &raw);
  if (!s.ok()) {
    spdlog::critical("cannot open the barrier's LevelDB: {}", s.ToString());
    return nullptr;
  }
  db->reset(raw);
  return std::make_unique<LevelDbBarrier>(raw);
}

struct Handlers {
  explicit Handlers(bool local)
      : tcc(local), postgres_tcc(MakeTransferTcc(local)), saga(local) {}
  TrivialXa xa;
  std::unique_ptr<PostgresXaResource> postgres;
  TrivialTcc tcc;
  std::unique_ptr<TccResource> postgres_tcc;
  TrivialSaga saga;
};

absl::Status AddResource(const ParticipantFlags& flags, Handlers* handlers,
                         BarrierStore* barrier, Participant* participant) {
  if (flags.protocol == "tcc") {
    TccResource* tcc =
        flags.postgres.empty() ? &handlers->tcc : handlers->postgres_tcc.get();
    return participant->AddTccResource(flags.resource, tcc, barrier);
  }
  if (flags.protocol == "saga") {
    return participant->AddSagaResource(flags.resource, &handlers->saga,
                                        barrier);
  }
  if (!flags.postgres.empty()) {
    absl::StatusOr<std::unique_ptr<PostgresXaResource>> resource =
        PostgresXaResource::Open(
            {.conninfo = flags.postgres,
             .resource = flags.resource,
             .max_idle_connections = kParticipantPostgresConnections,
             .max_connections = kParticipantPostgresConnections},
            TransferWork());
    if (!resource.ok()) return resource.status();
    handlers->postgres = std::move(*resource);
    return participant->AddXaResource(flags.resource, handlers->postgres.get());
  }
  return participant->AddXaResource(flags.resource, &handlers->xa);
}

// For TCC, and XA with phase one here: serves TccTry on an ephemeral port;
// returns the port, 0 if none.
int StartTryServer(PhaseOneCall call, bool blocking,
                   std::unique_ptr<grpc::Service>* service,
                   std::unique_ptr<grpc::Server>* server) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  if (blocking) {
    *service = std::make_unique<BlockingTryService>(call);
    // gRPC's sync server ends idle threads beyond MAX_POLLERS and makes new
    // ones under load: at 64 tries in flight that churn cost a fifth of the
    // rate (docs/PERFORMANCE.md), so idle threads stay.
    builder.SetSyncServerOption(
        grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxTriesInFlight);
  } else {
    *service = std::make_unique<TryService>(call);
  }
  builder.RegisterService(service->get());
  *server = builder.BuildAndStart();
  return *server ? port : 0;
}

}  // namespace

int ServeParticipant(const ParticipantFlags& flags) {
  Handlers handlers(!flags.mark_started);
  std::unique_ptr<leveldb::DB> db;
  std::unique_ptr<BarrierStore> barrier = MakeBarrier(flags, &db);
  if (!barrier) return 1;
  ParticipantOptions options{.coordinator = flags.coordinator,
                             .service = "bench"};
  if (flags.routed) options.seeds = {flags.coordinator};
  auto participant = Participant::Create(options);
  if (!participant.ok()) return 1;
  if (absl::Status s =
          AddResource(flags, &handlers, barrier.get(), participant->get());
      !s.ok()) {
    spdlog::critical("cannot serve {}: {}", flags.resource, s.ToString());
    return 1;
  }
  (*participant)->Start().IgnoreError();
  if (!(*participant)->WaitAttached(30s)) return 1;
  int ready = 1;
  std::unique_ptr<grpc::Service> service;
  std::unique_ptr<grpc::Server> server;
  if (flags.protocol == "tcc" || !flags.postgres.empty() || flags.enlist) {
    ready = StartTryServer(
        {.participant = participant->get(), .enlist = flags.protocol != "tcc"},
        flags.blocking, &service, &server);
    if (ready == 0) return 1;
  }
  WritePortFile(flags.ready_file, ready);
  WaitForStopSignal();
  _exit(0);
}

}  // namespace baton::bench
