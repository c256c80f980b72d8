#ifndef BATON_COORDINATOR_SERVER_H_
#define BATON_COORDINATOR_SERVER_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/listeners.h"
#include "coordinator/stream_limits.h"
#include "coordinator/transaction_manager.h"
#include "recovery/recovery_loop.h"

namespace baton {

struct ServerOptions {
  // The PostgreSQL store with a cluster shard count: leased shards.
  bool leased() const {
    return store_backend == StoreBackend::kPostgres && cluster_shards > 0;
  }

  std::string listen_address = "127.0.0.1:7420";
  // Files of this node: the LevelDB store (unless store_backend is
  // postgres), the generated admin token.
  std::string data_dir = "./data";
  enum class StoreBackend { kLevelDb, kPostgres };
  StoreBackend store_backend = StoreBackend::kLevelDb;
  // kPostgres: the libpq connection string of the store's database.
  std::string postgres_conninfo;
  // Required on admin calls; empty turns the admin API off.
  std::string admin_token;
  // If set, AdminService is served only here, not on listen_address, so a
  // firewall or network policy can keep it from participants and callers.
  std::string admin_listen_address;
  // If set, Prometheus metrics are served over HTTP here at /metrics.
  std::string metrics_listen_address;
  // If set, the operators' console (coordinator/console/console.h), over
  // HTTPS with the same TLS files as the rest.
  std::string console_listen_address;
  // If the console's address is taken: serve it on a free port instead of
  // failing (for the default address, which no operator chose).
  bool console_any_port_if_taken = false;
  // If set, the gRPC health service alone, always plaintext, for probes
  // that cannot present a client certificate.
  std::string health_listen_address;
  ListenerSecurity security;
  // An authorization policy file (AuthzPolicy); empty: none, every
  // participant may serve every resource.
  std::string authz_policy_file;
  // Other nodes of the cluster ("host:port" each); empty for a node that
  // stands alone until another names it.
  std::vector<std::string> peers;
  // Where other nodes, clients and participants reach this one; empty: the
  // host of listen_address (this host's name if that is a wildcard) and the
  // bound port.
  std::string advertise_address;
  int64_t topology_poll_ms = 1000;
  // The cluster's shard count (ClusterOptions::cluster_shards); 0: unknown.
  // With the PostgreSQL store it turns on leased shards: any node may serve
  // any of them while it holds its lease (docs/CLUSTER.md), and
  // manager.node_id names this node only.
  uint32_t cluster_shards = 0;
  // A shard lease's length, in the leased mode.
  int64_t lease_ms = 5000;
  StreamLimits streams;
  ManagerOptions manager;
  RecoveryOptions recovery;
};

// A running coordinator: store, group committer, transaction manager,
// participant registry, recovery loop and the gRPC server, wired together.
// Health reports NOT_SERVING until every unfinished transaction is resumed.
class Server {
 public:
  // Opens the store, resumes unfinished transactions and starts serving.
  static absl::Status Start(const ServerOptions& options,
                            std::unique_ptr<Server>* server);
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The ports actually bound (useful with port 0); 0 for one not served.
  int port() const { return port_; }
  int admin_port() const { return admin_port_; }
  int health_port() const { return health_port_; }
  int metrics_port() const;
  int console_port() const;

  // Blocks until Shutdown() is called from another thread.
  void Wait();
  // Stops accepting calls and cancels those still open.
  void Shutdown();

 private:
  Server() = default;
  struct Parts;

  // Once the gRPC servers run: the console calls them in-process.
  absl::Status StartConsole(const ServerOptions& options);

  std::unique_ptr<Parts> parts_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<grpc::CallbackGenericService> health_only_;
  std::unique_ptr<grpc::Server> health_server_;
  int port_ = 0;
  int admin_port_ = 0;
  int health_port_ = 0;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_SERVER_H_
