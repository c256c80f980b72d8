#include "coordinator/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/failpoint.h"
#include "common/limits.h"
#include "coordinator/admin_service.h"
#include "coordinator/cluster_view.h"
#include "coordinator/console/console.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/leased_shards.h"
#include "coordinator/metrics_http.h"
#include "coordinator/participant_registry.h"
#include "coordinator/postgres_store.h"
#include "coordinator/recent_rates.h"
#include "coordinator/services.h"
#include "coordinator/store.h"
#include "coordinator/topology_service.h"
#include "fmt/format.h"
#include "protocols/transitions.h"
#include "recovery/timeline_offset.h"
#include "spdlog/spdlog.h"

namespace baton {

namespace {

// Health is SERVING only while both hold: recovery has loaded every
// unfinished transaction, and the store has not failed. Each changes on its
// own thread.
class HealthGate {
 public:
  // `health` must stay valid until Detach.
  void Attach(grpc::HealthCheckServiceInterface* health) {
    absl::MutexLock lock(&mu_);
    services_.push_back(health);
    UpdateLocked();
  }
  // Before the gRPC servers go: the store may still fail while the
  // committer drains.
  void Detach() {
    absl::MutexLock lock(&mu_);
    services_.clear();
  }
  void Loaded() {
    absl::MutexLock lock(&mu_);
    loaded_ = true;
    UpdateLocked();
  }
  void StoreFailed() {
    absl::MutexLock lock(&mu_);
    store_failed_ = true;
    UpdateLocked();
  }
  void StoreRevived() {
    absl::MutexLock lock(&mu_);
    store_failed_ = false;
    UpdateLocked();
  }
  bool serving() const {
    absl::MutexLock lock(&mu_);
    return loaded_ && !store_failed_;
  }

 private:
  void UpdateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto* health : services_) {
      health->SetServingStatus(loaded_ && !store_failed_);
    }
  }

  mutable absl::Mutex mu_;
  std::vector<grpc::HealthCheckServiceInterface*> services_
      ABSL_GUARDED_BY(mu_);
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  bool store_failed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

// Declared in dependency order: destroyed in reverse.
struct Server::Parts {
  HealthGate health;
  std::unique_ptr<AuthzPolicy> policy;
  std::unique_ptr<ShardFences> fences;  // Leased shards only.
  std::unique_ptr<TransactionStore> store;
  std::unique_ptr<GroupCommitter> committer;
  std::unique_ptr<Timeline> timeline;
  std::unique_ptr<ParticipantRegistry> registry;
  std::unique_ptr<RecoveryLoop> recovery;
  std::unique_ptr<ClusterView> cluster;
  std::unique_ptr<TransactionManager> manager;
  std::unique_ptr<LeaseKeeper> leases;  // Leased shards only.
  std::unique_ptr<RecentRates> rates;
  std::unique_ptr<TransactionServiceImpl> transaction_service;
  std::unique_ptr<ParticipantServiceImpl> participant_service;
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<TopologyServiceImpl> topology_service;
  std::unique_ptr<HttpServer> metrics_http;
  std::unique_ptr<Console> console;
};

namespace {

// The counters plus gauges read from live state at scrape time.
std::string RenderMetrics(const TransactionManager& manager,
                          const ParticipantRegistry& registry) {
  std::string out = Metrics().Render();
  TransactionManager::Summary summary = manager.Summarize();
  Timeline* timeline = manager.timeline();
  std::vector<std::pair<metrics::LabelValues, double>> unfinished,
      needs_attention, backlog;
  for (const auto& [id, shard] : summary.shards) {
    std::string label = std::to_string(id);
    double stuck = 0;
    for (const auto& [key, count] : shard.counts) {
      unfinished.push_back({{label, std::string(GlobalStatusName(key.first)),
                             ProtocolLabel(key.second)},
                            static_cast<double>(count)});
      if (NeedsAttention(key.first)) stuck += count;
    }
    needs_attention.push_back({{label}, stuck});
    backlog.push_back({{label}, static_cast<double>(shard.retry_backlog)});
  }
  metrics::RenderGauge(&out, "baton_transactions_unfinished",
                       "Unfinished global transactions, by shard and status.",
                       {"shard", "status", "protocol"}, unfinished);
  metrics::RenderGauge(&out, "baton_transactions_needs_attention",
                       "Transactions stuck until an operator acts, by shard.",
                       {"shard"}, needs_attention);
  double oldest_age =
      summary.oldest_xid.empty()
          ? 0
          : (timeline->Now() - summary.oldest_begun_unix_ms) / 1000.0;
  metrics::RenderGauge(&out, "baton_oldest_unfinished_age_seconds",
                       "Age of the oldest unfinished transaction (0: none).",
                       {}, {{{}, oldest_age}});
  metrics::RenderSampled(
      &out, "baton_wall_clock_steps_total",
      "Steps of the host's clock seen since start; no deadline moved with "
      "them.",
      "counter", {}, {{{}, static_cast<double>(timeline->steps())}});
  metrics::RenderGauge(&out, "baton_wall_clock_offset_seconds",
                       "How far the wall clock stepped away from the time "
                       "deadlines are measured on, in all.",
                       {}, {{{}, timeline->WallOffsetMs() / 1000.0}});
  metrics::RenderGauge(&out, "baton_retry_backlog",
                       "Owed phase-two commands waiting for a retry or a "
                       "participant, by shard.",
                       {"shard"}, backlog);
  std::vector<std::pair<metrics::LabelValues, double>> owed, serving;
  for (const auto& [resource, count] : summary.backlog_by_resource) {
    owed.push_back({{resource}, static_cast<double>(count)});
  }
  metrics::RenderGauge(&out, "baton_owed_commands",
                       "Owed commands (phase two, saga actions and "
                       "compensations) waiting for a retry or a participant, "
                       "by the resource they are for.",
                       {"resource"}, owed);
  std::vector<AttachedParticipant> attached = registry.List();
  std::map<std::string, double> streams_by_resource;
  for (const AttachedParticipant& p : attached) {
    for (const std::string& resource : p.hello.resources()) {
      ++streams_by_resource[resource];
    }
  }
  for (const auto& [resource, count] : streams_by_resource) {
    serving.push_back({{resource}, count});
  }
  metrics::RenderGauge(&out, "baton_participants_attached",
                       "Participant streams attached.", {},
                       {{{}, static_cast<double>(attached.size())}});
  metrics::RenderGauge(&out, "baton_resource_participants",
                       "Attached participant streams serving each resource.",
                       {"resource"}, serving);
  return out;
}

// Hosts shards node_id.. of the manager's options; says it is serving once
// the health gate does.
std::unique_ptr<ClusterView> MakeClusterView(
    const ServerOptions& options, const HealthGate* health,
    const std::unique_ptr<TransactionManager>* manager) {
  ClusterOptions cluster{
      .node_id = options.manager.node_id,
      .peers = options.peers,
      .cluster_shards = options.cluster_shards,
      .poll_interval_ms = options.topology_poll_ms,
      .credentials = MakeChannelCredentials(PeerTlsFiles(options.security))};
  for (uint32_t i = 0; i < options.manager.shards && !options.leased(); ++i) {
    cluster.shards.push_back(options.manager.node_id + i);
  }
  return std::make_unique<ClusterView>(
      std::move(cluster), [health, manager, leased = options.leased()] {
        SelfReport report;
        report.health = health->serving() ? v1::NODE_HEALTH_SERVING
                                          : v1::NODE_HEALTH_NOT_SERVING;
        if (leased) report.serving.emplace();
        if (*manager) {
          report.unfinished = (*manager)->LiveByShard();
          report.draining = (*manager)->DrainingShards();
          if (leased) report.serving = (*manager)->ServingShards();
        }
        return report;
      });
}

// "host:port" others dial: the listen host unless it is a wildcard, which
// no one can dial, then this host's name.
std::string AdvertisedAddress(const ServerOptions& options, int port) {
  if (!options.advertise_address.empty()) return options.advertise_address;
  std::string host =
      options.listen_address.substr(0, options.listen_address.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    char name[256] = {};
    host = gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  return fmt::format("{}:{}", host, port);
}

// The record keeps its status; the move is counted and logged.
void ReportIllegalMove(std::string_view xid, std::string_view refused) {
  Metrics().illegal_status_moves.With({})->Add();
  spdlog::error(
      "xid={} a status move Baton should never make was refused "
      "(please report this): {}",
      xid, refused);
}

}  // namespace

absl::Status Server::Start(const ServerOptions& options,
                           std::unique_ptr<Server>* out) {
  // The parts belong to the server from the start, so a start that fails
  // half way is torn down like a running server: gRPC first, while every
  // object it may still call into is alive.
  SetIllegalMoveObserver(&ReportIllegalMove);
  if (absl::Status s = CheckListeners(
          options.security,
          {{"--listen", options.listen_address},
           {"--admin-listen", options.admin_listen_address},
           {"--metrics-listen", options.metrics_listen_address},
           {"--console-listen", options.console_listen_address}});
      !s.ok()) {
    return s;
  }
  std::unique_ptr<Server> server(new Server);
  server->parts_ = std::make_unique<Parts>();
  Parts* parts = server->parts_.get();
  if (!options.authz_policy_file.empty()) {
    auto policy = AuthzPolicy::Load(options.authz_policy_file);
    if (!policy.ok()) return policy.status();
    parts->policy = std::move(*policy);
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(fmt::format(
        "cannot create data dir {}: {}", options.data_dir, ec.message()));
  }
  if (options.leased()) parts->fences = std::make_unique<ShardFences>();
  absl::Status s =
      options.store_backend == ServerOptions::StoreBackend::kPostgres
          ? OpenPostgresStore(options.postgres_conninfo, &parts->store,
                              parts->fences.get())
          : OpenLevelDbStore(options.data_dir, &parts->store);
  if (!s.ok()) return s;
  parts->committer = std::make_unique<GroupCommitter>(
      parts->store.get(), [health = &parts->health,
                           leased = options.leased()](const absl::Status& s) {
        if (leased) {
          spdlog::critical(
              "the store failed; batond lets every shard go, acknowledges "
              "nothing and reports NOT_SERVING until the database takes "
              "writes again: {}",
              s.ToString());
        } else {
          spdlog::critical(
              "the store failed; batond acknowledges nothing more and "
              "reports NOT_SERVING until it is restarted with the cause "
              "fixed: {}",
              s.ToString());
        }
        health->StoreFailed();
      });
  absl::StatusOr<int64_t> offset = LoadTimelineOffset(parts->store.get());
  if (!offset.ok()) return offset.status();
  parts->timeline = std::make_unique<Timeline>(SystemClock(), *offset);
  parts->registry =
      std::make_unique<ParticipantRegistry>(parts->timeline.get());
  parts->cluster = MakeClusterView(options, &parts->health, &parts->manager);
  ManagerOptions manager_options = options.manager;
  manager_options.timeline = parts->timeline.get();
  manager_options.directory = parts->cluster.get();
  if (options.leased()) {
    manager_options.leased_shards = true;
    manager_options.node_id = 0;
    manager_options.shards = options.cluster_shards;
  }
  parts->recovery = std::make_unique<RecoveryLoop>(
      options.recovery, parts->store.get(), parts->committer.get(),
      parts->registry.get());
  parts->manager = std::make_unique<TransactionManager>(
      manager_options, parts->committer.get(), parts->store.get(),
      parts->registry.get(), parts->recovery->hooks());
  if (s = parts->manager->Init(); !s.ok()) return s;
  parts->recovery->Attach(parts->manager.get());
  parts->transaction_service = std::make_unique<TransactionServiceImpl>(
      parts->manager.get(), parts->policy.get(), options.streams);
  parts->participant_service = std::make_unique<ParticipantServiceImpl>(
      parts->registry.get(), parts->manager.get(), options.manager.node_id,
      parts->policy.get(), options.streams);

  parts->rates = std::make_unique<RecentRates>([] {
    CoordinatorMetrics& m = Metrics();
    return RecentRates::Totals{m.begun.Sum(), m.finished.Sum(1, "committed"),
                               m.finished.Sum(1, "rolled_back")};
  });
  parts->rates->Start(SystemClock());
  parts->admin_service = std::make_unique<AdminServiceImpl>(
      options.admin_token, parts->policy.get(), parts->store.get(),
      parts->committer.get(), parts->manager.get(), parts->registry.get(),
      parts->rates.get());
  parts->topology_service =
      std::make_unique<TopologyServiceImpl>(parts->cluster.get());

  grpc::EnableDefaultHealthCheckService(true);
  std::shared_ptr<grpc::ServerCredentials> credentials =
      MakeServerCredentials(options.security.tls);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(limits::kMaxMessageBytes);
  builder.SetMaxSendMessageSize(limits::kMaxMessageBytes);
  builder.RegisterService(parts->transaction_service.get());
  builder.RegisterService(parts->participant_service.get());
  builder.RegisterService(parts->topology_service.get());
  if (options.admin_listen_address.empty()) {
    builder.RegisterService(parts->admin_service.get());
  }
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        fmt::format("cannot listen on {}", options.listen_address));
  }
  // gRPC's health service starts out SERVING: say otherwise at once.
  parts->health.Attach(server->grpc_server_->GetHealthCheckService());
  parts->cluster->SetSelfAddress(AdvertisedAddress(options, server->port_));
  parts->cluster->Start();
  if (!options.admin_listen_address.empty()) {
    grpc::ServerBuilder admin;
    admin.AddListeningPort(options.admin_listen_address, credentials,
                           &server->admin_port_);
    admin.RegisterService(parts->admin_service.get());
    server->admin_server_ = admin.BuildAndStart();
    if (server->admin_server_ == nullptr || server->admin_port_ == 0) {
      return absl::UnavailableError(fmt::format(
          "cannot listen for admin calls on {}", options.admin_listen_address));
    }
    parts->health.Attach(server->admin_server_->GetHealthCheckService());
  }
  if (!options.health_listen_address.empty()) {
    grpc::ServerBuilder health;
    health.AddListeningPort(options.health_listen_address,
                            grpc::InsecureServerCredentials(),
                            &server->health_port_);
    // gRPC builds no server without a service of its own beside health:
    // one that answers every other method UNIMPLEMENTED.
    server->health_only_ = std::make_unique<grpc::CallbackGenericService>();
    health.RegisterCallbackGenericService(server->health_only_.get());
    server->health_server_ = health.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(fmt::format("cannot serve health on {}",
                                                options.health_listen_address));
    }
    parts->health.Attach(server->health_server_->GetHealthCheckService());
  }
  if (!options.metrics_listen_address.empty()) {
    auto http = StartMetricsHttp(
        options.metrics_listen_address, options.security.tls,
        [manager = parts->manager.get(), registry = parts->registry.get()] {
          return RenderMetrics(*manager, *registry);
        });
    if (!http.ok()) return http.status();
    parts->metrics_http = std::move(*http);
  }
  if (!options.console_listen_address.empty()) {
    if (s = server->StartConsole(options); !s.ok()) return s;
  }
  failpoint::Hit("before_resume_unfinished").IgnoreError();
  if (options.leased()) {
    absl::StatusOr<std::unique_ptr<LeaseKeeper>> keeper = StartLeaseKeeper(
        {.conninfo = options.postgres_conninfo,
         .node = fmt::format("node-{}", options.manager.node_id),
         .address = AdvertisedAddress(options, server->port_),
         .shards = options.cluster_shards,
         .lease_ms = options.lease_ms,
         .fences = parts->fences.get(),
         .manager = parts->manager.get(),
         .recovery = parts->recovery.get(),
         .committer = parts->committer.get(),
         .cluster = parts->cluster.get(),
         .store = parts->store.get(),
         .revived = [health = &parts->health] { health->StoreRevived(); }});
    if (!keeper.ok()) return keeper.status();
    parts->leases = std::move(*keeper);
  } else if (s = parts->recovery->ResumeUnfinished(); !s.ok()) {
    return s;
  }
  parts->recovery->Start();
  parts->health.Loaded();
  spdlog::info("batond serving on port {} with data in {}", server->port_,
               options.data_dir);
  *out = std::move(server);
  return absl::OkStatus();
}

Server::~Server() {
  Shutdown();
  // Stop what calls into the rest before the rest goes: gRPC's handlers and
  // reactors, then the recovery thread, then the committer's callbacks
  // (which call into the manager, and may be queued still).
  if (parts_) parts_->health.Detach();
  // The console calls the servers below in-process.
  if (parts_) parts_->console.reset();
  health_server_.reset();
  admin_server_.reset();
  grpc_server_.reset();
  if (!parts_) return;
  parts_->metrics_http.reset();
  // Its hooks call the manager, the recovery loop and the committer.
  if (parts_->leases) parts_->leases->Stop();
  // Its poller asks the manager and the health gate for this node's part.
  if (parts_->cluster) parts_->cluster->Stop();
  if (parts_->recovery) parts_->recovery->Stop();
  if (parts_->committer) parts_->committer->Stop();
}

void Server::Wait() {
  if (grpc_server_) grpc_server_->Wait();
}

absl::Status Server::StartConsole(const ServerOptions& options) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(limits::kMaxMessageBytes);
  grpc::Server* admin =
      admin_server_ != nullptr ? admin_server_.get() : grpc_server_.get();
  Console::Backend backend{
      .admin = admin->InProcessChannel(arguments),
      .transactions = grpc_server_->InProcessChannel(arguments),
      .self_address = AdvertisedAddress(options, port_),
      .topology =
          [cluster = parts_->cluster.get()] {
            return cluster->Describe(/*self_only=*/false, nullptr);
          },
      .peer_credentials =
          MakeChannelCredentials(PeerTlsFiles(options.security)),
      .admin_token = options.admin_token,
      .clock = SystemClock(),
      .log = parts_->manager->log_summary()};
  Console::Options console{.listen = options.console_listen_address,
                           .tls = options.security.tls};
  absl::StatusOr<std::unique_ptr<Console>> started =
      Console::Start(console, backend);
  if (absl::IsUnavailable(started.status()) &&
      options.console_any_port_if_taken) {
    console.listen = console.listen.substr(0, console.listen.rfind(':')) + ":0";
    spdlog::warn("{}; the console takes a free port instead",
                 std::string(started.status().message()));
    started = Console::Start(console, std::move(backend));
  }
  if (!started.ok()) return started.status();
  parts_->console = std::move(*started);
  return absl::OkStatus();
}

int Server::console_port() const {
  return parts_ && parts_->console ? parts_->console->port() : 0;
}

int Server::metrics_port() const {
  return parts_ && parts_->metrics_http ? parts_->metrics_http->port() : 0;
}

void Server::Shutdown() {
  if (parts_ && parts_->manager) parts_->manager->StopWaiting();
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(1);
  if (health_server_) health_server_->Shutdown(deadline);
  if (admin_server_) admin_server_->Shutdown(deadline);
  if (grpc_server_) grpc_server_->Shutdown(deadline);
  // Calls gRPC gave up on may still be answered from these; they must be
  // answered before the servers go.
  if (parts_ && parts_->admin_service) parts_->admin_service->Drain();
  if (parts_ && parts_->manager) parts_->manager->DrainStoreReads();
}

}  // namespace baton
