#include "tests/support/bank_cluster.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "bank.grpc.pb.h"
#include "baton/v1/topology.grpc.pb.h"
#include "health.grpc.pb.h"

namespace baton::testing {

BankCluster::BankCluster() = default;

BankCluster::~BankCluster() {
  // Participants first, so none of them logs a lost coordinator.
  banks_.clear();
  nodes_.clear();
}

void BankCluster::SetCoordinatorNodes(int nodes) {
  nodes_.resize(std::max(1, nodes));
}

std::filesystem::path BankCluster::PortFile(int node) const {
  return dir() / (node == 0 ? std::string("batond.port")
                            : "batond-" + std::to_string(node) + ".port");
}

// The cluster's flags for `node`: its shard, and every other node whose
// port is known (a first start knows only the nodes before it; the rest
// make themselves known by calling).
std::vector<std::string> BankCluster::NodeFlags(int node) const {
  if (nodes_.size() == 1) return {};
  std::string peers;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (static_cast<int>(i) == node || nodes_[i].port == 0) continue;
    peers += (peers.empty() ? "" : ",") + NodeAddress(static_cast<int>(i));
  }
  std::vector<std::string> flags = {
      "--node-id",
      std::to_string(node),
      "--cluster-shards",
      std::to_string(cluster_shards_ > 0 ? cluster_shards_ : nodes_.size()),
      "--topology-poll-ms",
      "100"};
  if (!peers.empty()) flags.insert(flags.end(), {"--peers", peers});
  return flags;
}

void BankCluster::LaunchCoordinator(const std::vector<std::string>& env,
                                    const std::vector<std::string>& flags) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& node = nodes_[i];
    // One node always starts again: the caller saw the last one go.
    node.launched = nodes_.size() == 1 || node.process == nullptr ||
                    node.process->HasExited();
    if (!node.launched) continue;
    std::filesystem::remove(PortFile(i));
    std::string data =
        i == 0 ? "coordinator" : "coordinator-" + std::to_string(i);
    std::vector<std::string> argv = coordinator_launcher_;
    std::vector<std::string> batond = {BinPath("batond"),
                                       "--listen",
                                       "127.0.0.1:" + std::to_string(node.port),
                                       "--data-dir",
                                       (dir() / data).string(),
                                       "--port-file",
                                       PortFile(i).string(),
                                       "--retry-initial-ms",
                                       "50",
                                       "--retry-max-ms",
                                       "500"};
    argv.insert(argv.end(), batond.begin(), batond.end());
    std::vector<std::string> cluster = NodeFlags(i);
    argv.insert(argv.end(), cluster.begin(), cluster.end());
    argv.insert(argv.end(), coordinator_flags_.begin(),
                coordinator_flags_.end());
    argv.insert(argv.end(), flags.begin(), flags.end());
    node.process = ChildProcess::Start(
        "batond-" + std::to_string(++coordinator_starts_), argv, env, dir());
    // A first start of a cluster waits for each node's port: the next one
    // is told of it.
    if (nodes_.size() > 1 && node.port == 0) {
      node.port = WaitForPortFile(PortFile(i), 20s);
    }
  }
}

void BankCluster::StartCoordinator(const std::vector<std::string>& env,
                                   const std::vector<std::string>& flags) {
  bool first = nodes_[0].port == 0;
  LaunchCoordinator(env, flags);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& node = nodes_[i];
    if (!node.launched) continue;
    node.port = WaitForPortFile(PortFile(i), 20s);
    if (node.port == 0) {
      throw std::runtime_error("batond did not start:\n" +
                               node.process->Stderr());
    }
  }
  if (first && nodes_.size() > 1 &&
      !WaitFor([&] { return NodesAgree(); }, 20s)) {
    throw std::runtime_error("the nodes did not agree on a topology:\n" +
                             Logs());
  }
  if (!client_) {
    auto client = TransactionClient::Connect(
        {.coordinator = CoordinatorAddress(), .max_attempts = 20});
    client_ = std::move(*client);
  }
}

bool BankCluster::NodesAgree() {
  for (int i = 0; i < coordinator_nodes(); ++i) {
    auto stub = v1::TopologyService::NewStub(grpc::CreateChannel(
        NodeAddress(i), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 1s);
    v1::Topology topology;
    if (!stub->GetTopology(&context, {}, &topology).ok() ||
        topology.shards_size() != cluster_shards()) {
      return false;
    }
    for (const v1::TopologyShard& shard : topology.shards()) {
      if (shard.state() != v1::SHARD_STATE_SERVING) return false;
    }
  }
  return true;
}

std::string BankCluster::NodeAddress(int node) const {
  return "127.0.0.1:" + std::to_string(nodes_[node].port);
}

std::string BankCluster::CoordinatorAddress() const {
  std::string all;
  for (int i = 0; i < coordinator_nodes(); ++i) {
    all += (i == 0 ? "" : ",") + NodeAddress(i);
  }
  return all;
}

bool BankCluster::WaitForHealth(bool serving,
                                std::chrono::milliseconds timeout) {
  // Reconnect fast: batond may not listen yet on the first attempts.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> nodes;
  for (int i = 0; i < coordinator_nodes(); ++i) {
    nodes.push_back(grpc::health::v1::Health::NewStub(grpc::CreateCustomChannel(
        NodeAddress(i), grpc::InsecureChannelCredentials(), args)));
  }
  auto want = serving ? grpc::health::v1::HealthCheckResponse::SERVING
                      : grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  return WaitFor(
      [&] {
        for (auto& health : nodes) {
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + 500ms);
          context.set_wait_for_ready(
              true);  // Not failed fast while connecting.
          grpc::health::v1::HealthCheckRequest request;
          grpc::health::v1::HealthCheckResponse response;
          if (!health->Check(&context, request, &response).ok() ||
              response.status() != want) {
            return false;
          }
        }
        return true;
      },
      timeout);
}

void BankCluster::StartService(const std::string& name,
                               const std::string& binary,
                               const std::vector<std::string>& args,
                               const std::vector<std::string>& env) {
  Bank& service = banks_[name];
  auto port_file = dir() / (name + ".port");
  std::filesystem::remove(port_file);
  std::vector<std::string> argv = {BinPath(binary),
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(service.port),
                                   "--coordinator",
                                   CoordinatorAddress(),
                                   "--data-dir",
                                   (dir() / name).string(),
                                   "--port-file",
                                   port_file.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  service.process = ChildProcess::Start(
      name + "-" + std::to_string(++service.starts), argv, env, dir());
  service.port = WaitForPortFile(port_file, 20s);
  if (service.port == 0) {
    throw std::runtime_error(name + " did not start:\n" +
                             service.process->Stderr());
  }
}

void BankCluster::StartBank(const std::string& resource,
                            const std::vector<std::string>& seed,
                            const std::vector<std::string>& env) {
  std::vector<std::string> args = {"--resource", resource};
  for (const std::string& s : seed) {
    args.push_back("--seed");
    args.push_back(s);
  }
  StartService(resource, "bank_service", args, env);
}

BankCluster::TransferResult BankCluster::Transfer(
    const std::string& from_resource, const std::string& from_account,
    const std::string& to_resource, const std::string& to_account,
    int64_t amount, const std::vector<std::string>& extra_flags) {
  auto endpoint = [this](const std::string& resource, const std::string& acct) {
    return "127.0.0.1:" + std::to_string(banks_.at(resource).port) + "/" + acct;
  };
  std::vector<std::string> argv = {BinPath("bank_client"),
                                   "--coordinator",
                                   CoordinatorAddress(),
                                   "transfer",
                                   "--from",
                                   endpoint(from_resource, from_account),
                                   "--to",
                                   endpoint(to_resource, to_account),
                                   "--amount",
                                   std::to_string(amount)};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  auto process = ChildProcess::Start("transfer-" + std::to_string(++transfers_),
                                     argv, {}, dir());
  TransferResult result;
  result.exit_code = process->WaitExit(60s);
  result.output = process->Stdout();
  std::istringstream words(result.output);
  words >> result.outcome >> result.xid;
  return result;
}

absl::StatusOr<BankCluster::Balance> BankCluster::GetBalance(
    const std::string& resource, const std::string& account) {
  auto stub = samples::bank::Bank::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(banks_.at(resource).port),
      grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  samples::bank::BalanceRequest request;
  request.set_account(account);
  samples::bank::BalanceReply reply;
  grpc::Status s = stub->Balance(&context, request, &reply);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return Balance{reply.balance(), reply.held(), reply.open_holds()};
}

bool BankCluster::WaitForSettled(const std::string& resource,
                                 const std::string& account, int64_t balance,
                                 std::chrono::milliseconds timeout) {
  return WaitFor(
      [&] {
        absl::StatusOr<Balance> b = GetBalance(resource, account);
        return b.ok() && b->balance == balance && b->held == 0 &&
               b->open_holds == 0;
      },
      timeout);
}

absl::StatusOr<v1::Transaction> BankCluster::GetTransaction(
    const std::string& xid) {
  return client_->GetTransaction(xid);
}

bool BankCluster::WaitForStatus(const std::string& xid, v1::GlobalStatus status,
                                std::chrono::milliseconds timeout) {
  return WaitFor(
      [&] {
        absl::StatusOr<v1::Transaction> txn = GetTransaction(xid);
        return txn.ok() && txn->status() == status;
      },
      timeout);
}

std::string BankCluster::Logs() const {
  std::string logs;
  for (const auto& entry : std::filesystem::directory_iterator(dir())) {
    if (entry.path().extension() == ".err" ||
        entry.path().extension() == ".out") {
      std::ifstream in(entry.path());
      std::stringstream ss;
      ss << in.rdbuf();
      logs += "==== " + entry.path().filename().string() + "\n" + ss.str();
    }
  }
  return logs;
}

std::unique_ptr<TransactionClient> OneShotClient(const BankCluster& cluster) {
  return std::move(*TransactionClient::Connect(
      {.coordinator = cluster.CoordinatorAddress(), .max_attempts = 1}));
}

absl::StatusOr<PreparedBranch> BeginWithPreparedBranch(
    TransactionClient* client, const std::string& resource,
    const std::string& data) {
  v1::BeginRequest begin;
  begin.set_name("test");
  auto begun = client->BeginRaw(begin);
  if (!begun.ok()) return begun.status();
  v1::RegisterBranchRequest reg;
  reg.set_xid(begun->xid());
  reg.set_resource(resource);
  reg.set_application_data(data);
  auto branch = client->RegisterBranch(reg);
  if (!branch.ok()) return branch.status();
  absl::Status s = client->ReportBranch(begun->xid(), *branch,
                                        v1::PHASE_ONE_OUTCOME_PREPARED, "");
  if (!s.ok()) return s;
  return PreparedBranch{begun->xid(), *branch};
}

}  // namespace baton::testing
