#ifndef BATON_TESTS_SUPPORT_THREE_NODES_H_
#define BATON_TESTS_SUPPORT_THREE_NODES_H_

// Three batond nodes on 127.0.0.1, each owning one shard and its own data
// dir, started one after another, each told only of those started before
// it; and batonctl run against them.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "baton/v1/topology.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "common/child_process.h"

namespace baton {

using namespace std::chrono_literals;

constexpr char kAdminToken[] = "cluster-admin-token";

struct Node {
  std::unique_ptr<ChildProcess> process;
  std::string address;
  int console_port = 0;  // With ClusterFlags::console.
};

struct ClusterFlags {
  // --cluster-shards; 0 leaves it out.
  uint32_t cluster_shards = 0;
  // BATON_FAILPOINTS of each node, by id.
  std::map<uint32_t, std::string> failpoints;
  // Each node serves its console on a free port.
  bool console = false;
  // More flags for every node (e.g. the PostgreSQL store's).
  std::vector<std::string> extra_args;
};

class ThreeNodes {
 public:
  explicit ThreeNodes(ClusterFlags flags = {}) : flags_(std::move(flags)) {
    std::vector<std::string> earlier;
    for (uint32_t id = 0; id < 3; ++id) {
      std::string peers;
      for (const std::string& a : earlier)
        peers += (peers.empty() ? "" : ",") + a;
      peers_.push_back(peers);
      Start(id, "127.0.0.1:0", flags_.failpoints[id]);
      earlier.push_back(nodes_[id].address);
    }
  }

  // Starts node `id` again on its data dir and port, without failpoints,
  // once its process is gone.
  void Restart(uint32_t id) {
    BOOST_REQUIRE(WaitFor([&] { return process(id).HasExited(); }, 20s));
    Start(id, nodes_[id].address, "");
  }

  const Node& node(uint32_t id) const { return nodes_[id]; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  ChildProcess& process(uint32_t id) { return *nodes_[id].process; }

  v1::Topology Topology(uint32_t id) {
    auto stub = v1::TopologyService::NewStub(grpc::CreateChannel(
        nodes_[id].address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::Topology topology;
    grpc::Status s = stub->GetTopology(&context, {}, &topology);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.error_message());
    return topology;
  }

  // Every node lists all three shards, each owned by its own node, with
  // the given state for shard `watched` and serving for the others.
  bool AllAgree(uint32_t watched = 3,
                v1::ShardState state = v1::SHARD_STATE_SERVING) {
    for (uint32_t id = 0; id < 3; ++id) {
      if (id == watched) continue;
      v1::Topology t = Topology(id);
      if (t.shards_size() != 3 || t.nodes_size() != 3) return false;
      for (int i = 0; i < 3; ++i) {
        const v1::TopologyShard& shard = t.shards(i);
        v1::ShardState want =
            shard.id() == watched ? state : v1::SHARD_STATE_SERVING;
        if (shard.id() != static_cast<uint32_t>(i) ||
            shard.node() != shard.id() || shard.state() != want) {
          return false;
        }
      }
    }
    return true;
  }

  std::string Logs() const {
    std::string out;
    for (const Node& n : nodes_) out += n.process->Stderr();
    return out;
  }

 private:
  void Start(uint32_t id, const std::string& listen,
             const std::string& failpoints) {
    std::string name = "batond-" + std::to_string(id);
    auto port_file = dir_.path() / (name + ".port");
    std::filesystem::remove(port_file);
    const std::string& peers = peers_[id];
    std::vector<std::string> argv = {BinPath("batond"),
                                     "--listen",
                                     listen,
                                     "--node-id",
                                     std::to_string(id),
                                     "--data-dir",
                                     (dir_.path() / name).string(),
                                     "--port-file",
                                     port_file.string(),
                                     "--topology-poll-ms",
                                     "100"};
    if (!peers.empty()) {
      argv.push_back("--peers");
      argv.push_back(peers);
    }
    if (flags_.cluster_shards > 0) {
      argv.push_back("--cluster-shards");
      argv.push_back(std::to_string(flags_.cluster_shards));
    }
    argv.insert(argv.end(), flags_.extra_args.begin(), flags_.extra_args.end());
    auto console_port_file = dir_.path() / (name + ".console-port");
    if (flags_.console) {
      std::filesystem::remove(console_port_file);
      argv.insert(argv.end(),
                  {"--console-listen", "127.0.0.1:0", "--console-port-file",
                   console_port_file.string()});
    }
    std::vector<std::string> env = {std::string("BATON_ADMIN_TOKEN=") +
                                    kAdminToken};
    if (!failpoints.empty()) env.push_back("BATON_FAILPOINTS=" + failpoints);
    Node node;
    node.process = ChildProcess::Start(name, argv, env, dir_.path());
    int port = WaitForPortFile(port_file, 20s);
    BOOST_REQUIRE_MESSAGE(port != 0, node.process->Stderr());
    node.address = "127.0.0.1:" + std::to_string(port);
    if (flags_.console) {
      node.console_port = WaitForPortFile(console_port_file, 20s);
      BOOST_REQUIRE_MESSAGE(node.console_port != 0, node.process->Stderr());
    }
    if (id < nodes_.size()) {
      nodes_[id] = std::move(node);
    } else {
      nodes_.push_back(std::move(node));
    }
  }

  ClusterFlags flags_;
  TempDir dir_;
  std::vector<Node> nodes_;
  std::vector<std::string> peers_;  // --peers of each node, by id.
};

inline std::unique_ptr<v1::TransactionService::Stub> Transactions(
    const std::string& address) {
  return v1::TransactionService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

inline std::string BeginOn(const std::string& address) {
  auto stub = Transactions(address);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::BeginRequest request;
  request.set_name("topology-test");
  v1::BeginResponse response;
  grpc::Status s = stub->Begin(&context, request, &response);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.error_message());
  return response.xid();
}

struct CtlRun {
  int code;
  std::string out, err;
};

inline CtlRun Ctl(ThreeNodes& cluster, uint32_t entry,
                  std::vector<std::string> args) {
  std::vector<std::string> argv = {BinPath("batonctl"), "--coordinator",
                                   cluster.node(entry).address};
  argv.insert(argv.end(), args.begin(), args.end());
  static int runs = 0;
  auto ctl = ChildProcess::Start(
      "batonctl-" + std::to_string(++runs), argv,
      {std::string("BATON_ADMIN_TOKEN=") + kAdminToken}, cluster.dir());
  int code = ctl->WaitExit(30s);
  return {code, ctl->Stdout(), ctl->Stderr()};
}

inline bool ShardIs(ThreeNodes& cluster, uint32_t shard, v1::ShardState state) {
  v1::Topology t = cluster.Topology(0);
  return t.shards_size() == 3 && t.shards(shard).state() == state;
}

}  // namespace baton

#endif  // BATON_TESTS_SUPPORT_THREE_NODES_H_
