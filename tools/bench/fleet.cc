#include "tools/bench/fleet.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>

#include "baton/v1/admin_service.grpc.pb.h"
#include "baton/v1/topology.grpc.pb.h"
#include "common/port_file.h"
#include "fmt/format.h"
#include "tools/bench/postgres_bank.h"

namespace baton::bench {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void Die(const std::string& why) {
  fmt::print(stderr, "baton-bench: {}\n", why);
  std::exit(1);
}

// Whether the node at `address` lists `shards` shards, all serving.
bool ListsAllServing(const std::string& address, int shards) {
  auto stub = v1::TopologyService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  v1::Topology topology;
  if (!stub->GetTopology(&context, {}, &topology).ok()) return false;
  if (topology.shards_size() != shards) return false;
  for (const v1::TopologyShard& shard : topology.shards()) {
    if (shard.state() != v1::SHARD_STATE_SERVING) return false;
  }
  return true;
}

}  // namespace

Fleet::Fleet(const Flags& flags) : flags_(flags) {
  admin_token_ = fmt::format("bench-{}", getpid());
  std::ofstream(dir_.path() / "admin.token") << admin_token_ << "\n";
}

Fleet::~Fleet() = default;

std::vector<std::string> Fleet::Coordinators() {
  if (!flags_.coordinator.empty()) return {flags_.coordinator};
  std::vector<std::string> nodes;
  for (int id = 0; id < std::max(1, flags_.nodes); ++id) {
    nodes.push_back(StartNode(id, nodes));
  }
  if (flags_.nodes > 0) WaitServing(nodes);
  return nodes;
}

std::string Fleet::StartNode(int id, const std::vector<std::string>& peers) {
  std::string name = flags_.nodes > 0 ? fmt::format("batond-{}", id) : "batond";
  auto port_file = dir_.path() / (name + ".port");
  std::vector<std::string> args = {BinPath("batond"),
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--data-dir",
                                   (dir_.path() / (name + ".data")).string(),
                                   "--port-file",
                                   port_file.string(),
                                   "--log-level",
                                   "warn",
                                   "--finished-retention-s",
                                   std::to_string(flags_.retention_s),
                                   "--admin-token-file",
                                   (dir_.path() / "admin.token").string()};
  if (flags_.nodes > 0) {
    std::string peer_list;
    for (const std::string& peer : peers) {
      peer_list += (peer_list.empty() ? "" : ",") + peer;
    }
    args.insert(args.end(),
                {"--node-id", std::to_string(id), "--cluster-shards",
                 std::to_string(flags_.nodes), "--topology-poll-ms", "200"});
    if (!peer_list.empty()) args.insert(args.end(), {"--peers", peer_list});
  }
  if (flags_.store == "postgres") {
    args.insert(args.end(), {"--store", "postgres", "--postgres",
                             EmptyPostgresDatabase("baton_store")});
  }
  args.insert(args.end(), flags_.batond_args.begin(), flags_.batond_args.end());
  processes_.push_back(ChildProcess::Start(name, args, {}, dir_.path()));
  int port = WaitForPortFile(port_file, 30s);
  if (port == 0) Die(name + " did not start: " + processes_.back()->Stderr());
  return fmt::format("127.0.0.1:{}", port);
}

void Fleet::WaitServing(const std::vector<std::string>& nodes) {
  int shards = static_cast<int>(nodes.size());
  bool agreed = WaitFor(
      [&] {
        for (const std::string& node : nodes) {
          if (!ListsAllServing(node, shards)) return false;
        }
        return true;
      },
      30s);
  if (!agreed) Die("the nodes did not agree on a topology within 30 s");
}

std::string Fleet::AdminToken() const {
  if (flags_.token_file.empty()) return admin_token_;
  std::ifstream in(flags_.token_file);
  std::string token;
  std::getline(in, token);
  return token;
}

std::vector<ParticipantTarget> Fleet::Participants(
    const std::string& coordinator, const std::string& protocol, int n) {
  std::vector<ParticipantTarget> targets;
  for (int i = 0; i < n; ++i) {
    std::string resource = fmt::format("bench-{}", i);
    auto ready = dir_.path() / (resource + ".ready");
    std::vector<std::string> argv = {
        BinPath("baton-bench"), "participant", "--coordinator", coordinator,
        "--resource",           resource,      "--protocol",    protocol,
        "--ready-file",         ready.string()};
    if (flags_.nodes > 0) argv.push_back("--routed");
    if (flags_.leveldb_barrier) {
      argv.push_back("--barrier-dir");
      argv.push_back((dir_.path() / (resource + ".barrier")).string());
    }
    if (flags_.mark_started) argv.push_back("--mark-started");
    if (flags_.enlist) argv.push_back("--enlist");
    if (flags_.blocking) argv.push_back("--blocking");
    if (flags_.postgres) {
      argv.push_back("--postgres");
      argv.push_back(PostgresDatabase(fmt::format("bank_{}", i)));
    }
    std::vector<std::string> env;
    for (auto [name, value] : {std::pair{"BATON_TLS_CA", flags_.tls.ca},
                               {"BATON_TLS_CERT", flags_.tls.cert},
                               {"BATON_TLS_KEY", flags_.tls.key}}) {
      if (!value.empty()) env.push_back(std::string(name) + "=" + value);
    }
    processes_.push_back(ChildProcess::Start(resource, argv, env, dir_.path()));
    int port = WaitForPortFile(ready, 30s);
    if (port == 0) {
      Die(resource + " did not attach: " + processes_.back()->Stderr());
    }
    bool tries = protocol == "tcc" || flags_.postgres || flags_.enlist;
    targets.push_back(
        {resource, tries ? fmt::format("127.0.0.1:{}", port) : std::string()});
  }
  return targets;
}

std::string Fleet::EmptyPostgresDatabase(const std::string& database) {
  try {
    if (postgres_ == nullptr) {
      // Every participant's pool full, the floor's connections, the store's,
      // and a few for the bench's own queries.
      postgres_ =
          std::make_unique<testing::PgCluster>(testing::PgCluster::Options{
              .max_prepared_transactions = 1024,
              .max_connections =
                  flags_.participants * int{kParticipantPostgresConnections} +
                  flags_.concurrency + 32});
    }
    if (postgres_databases_.insert(database).second) {
      postgres_->CreateDatabase(database);
    }
  } catch (const std::exception& e) {
    Die(std::string("cannot start PostgreSQL: ") + e.what());
  }
  return postgres_->ConnInfo(database);
}

std::string Fleet::PostgresDatabase(const std::string& database) {
  const bool made = postgres_databases_.contains(database);
  std::string conninfo = EmptyPostgresDatabase(database);
  if (made) return conninfo;
  if (absl::Status s = CreateAccounts(conninfo); !s.ok()) {
    Die("cannot create the accounts: " + s.ToString());
  }
  return conninfo;
}

std::string Fleet::EchoServer(bool synced) {
  std::string name = synced ? "synced-echo" : "echo";
  auto port_file = dir_.path() / (name + ".port");
  std::vector<std::string> argv = {BinPath("baton-bench"), "echo-server",
                                   "--port-file", port_file.string()};
  if (synced) {
    argv.push_back("--sync-file");
    argv.push_back((dir_.path() / "null-coordinator.log").string());
  }
  processes_.push_back(ChildProcess::Start(name, argv, {}, dir_.path()));
  int port = WaitForPortFile(port_file, 30s);
  if (port == 0) Die("echo server did not start");
  return fmt::format("127.0.0.1:{}", port);
}

std::optional<NodeCounters> Fleet::Counters(
    const std::vector<std::string>& nodes) const {
  NodeCounters sum;
  for (const std::string& node : nodes) {
    auto admin = v1::AdminService::NewStub(
        grpc::CreateChannel(node, MakeChannelCredentials(flags_.tls)));
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + AdminToken());
    context.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::GetStatsResponse stats;
    if (!admin->GetStats(&context, {}, &stats).ok()) return std::nullopt;
    sum.store_syncs += stats.store_syncs();
    sum.cpu_seconds += stats.cpu_seconds();
    sum.resident_bytes += stats.resident_bytes();
  }
  return sum;
}

}  // namespace baton::bench
