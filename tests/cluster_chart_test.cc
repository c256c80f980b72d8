// The topology the Helm chart describes, started as local processes: the
// chart is rendered for three replicas with TLS from a Secret
// (tests/helm/chart_args.py), each pod's batond arguments are taken from the
// rendered StatefulSet, every pod's DNS name is mapped to a loopback port,
// the Secret's files to certificates made for the test, and three nodes
// start that way, calling each other over mutual TLS. Then transactions with
// participants spread over all three shards, a node is killed and comes back.
// So the chart's configuration is proven to start a working cluster, not only
// to parse.
#define BOOST_TEST_MODULE cluster_chart
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <map>
#include <string>
#include <vector>

#include "baton/client.h"
#include "baton/participant.h"
#include "baton/v1/topology.grpc.pb.h"
#include "common/child_process.h"
#include "common/tls.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/support/recording_resource.h"
#include "tests/support/test_pki.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

// A free loopback port: bound, read, released for batond to take.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(a);
  BOOST_REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), size) == 0);
  BOOST_REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size) == 0);
  close(fd);
  return ntohs(a.sin_port);
}

std::string ReplaceAll(std::string s, const std::string& from,
                       const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos;
       at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

struct Pod {
  std::string name;
  std::string dns;       // As the chart names it.
  std::string loopback;  // Where it listens here.
  std::vector<std::string> args;
  TlsFiles tls;  // Its Secret's files, made here.
  std::unique_ptr<ChildProcess> process;
};

class ChartCluster {
 public:
  ChartCluster() {
    auto render =
        ChildProcess::Start("chart-args",
                            {"/usr/bin/python3", BATON_CHART_ARGS, BATON_HELM,
                             "3", "--set", "tls.existingSecret=baton-tls"},
                            {}, dir_.path());
    BOOST_REQUIRE_MESSAGE(render->WaitExit(60s) == 0, render->Stderr());
    google::protobuf::ListValue pods;
    BOOST_REQUIRE(
        google::protobuf::util::JsonStringToMessage(render->Stdout(), &pods)
            .ok());
    BOOST_REQUIRE(pods.values_size() == 3);
    for (const auto& value : pods.values()) {
      const auto& fields = value.struct_value().fields();
      Pod pod{.name = fields.at("pod").string_value(),
              .dns = fields.at("address").string_value(),
              .loopback = "127.0.0.1:" + std::to_string(FreePort())};
      for (const auto& arg : fields.at("args").list_value().values()) {
        pod.args.push_back(arg.string_value());
      }
      pod.tls = pki_.Issue(pod.name);
      pods_.push_back(std::move(pod));
    }
    for (Pod& pod : pods_) pod.args = Localized(pod);
    for (size_t i = 0; i < pods_.size(); ++i) Start(i);
  }

  const Pod& pod(size_t i) const { return pods_[i]; }
  // What a client or participant of the cluster presents.
  TlsOptions client_tls() const {
    return {.ca_file = client_.ca,
            .cert_file = client_.cert,
            .key_file = client_.key};
  }
  ChildProcess& process(size_t i) { return *pods_[i].process; }

  void Start(size_t i) {
    std::vector<std::string> argv = {BinPath("batond")};
    argv.insert(argv.end(), pods_[i].args.begin(), pods_[i].args.end());
    pods_[i].process =
        ChildProcess::Start(pods_[i].name, argv, {}, dir_.path());
  }

  // Every node serving and agreeing on the three owners.
  bool AllServing() {
    for (const Pod& p : pods_) {
      auto stub = v1::TopologyService::NewStub(
          grpc::CreateChannel(p.loopback, MakeChannelCredentials(client_)));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 1s);
      v1::Topology t;
      if (!stub->GetTopology(&context, {}, &t).ok()) return false;
      if (t.nodes_size() != 3 || t.shards_size() != 3 ||
          t.cluster_shards() != 3) {
        return false;
      }
      for (int s = 0; s < 3; ++s) {
        if (t.shards(s).node() != static_cast<uint32_t>(s) ||
            t.shards(s).state() != v1::SHARD_STATE_SERVING) {
          return false;
        }
      }
    }
    return true;
  }

  std::string Logs() const {
    std::string out;
    for (const Pod& p : pods_) out += p.process->Stderr();
    return out;
  }

 private:
  // The pod's arguments with every pod's name at its loopback port, its data
  // under this test's dir, and metrics on a free port.
  std::vector<std::string> Localized(const Pod& pod) {
    std::vector<std::string> out;
    for (std::string arg : pod.args) {
      for (const Pod& other : pods_) {
        arg = ReplaceAll(arg, other.dns, other.loopback);
      }
      if (arg.starts_with("--listen=")) arg = "--listen=" + pod.loopback;
      if (arg.starts_with("--data-dir=")) {
        arg = "--data-dir=" + (dir_.path() / pod.name).string();
      }
      if (arg.starts_with("--metrics-listen=")) {
        arg = "--metrics-listen=127.0.0.1:0";
      }
      if (arg.starts_with("--health-listen=")) {
        arg = "--health-listen=127.0.0.1:0";
      }
      arg = ReplaceAll(arg, "/etc/baton/tls/tls.crt", pod.tls.cert);
      arg = ReplaceAll(arg, "/etc/baton/tls/tls.key", pod.tls.key);
      arg = ReplaceAll(arg, "/etc/baton/tls/ca.crt", pod.tls.ca);
      out.push_back(arg);
    }
    out.push_back("--topology-poll-ms=100");
    return out;
  }

  TempDir dir_;
  testing::TestPki pki_{dir_.path()};
  TlsFiles client_ = pki_.Issue("client");
  std::vector<Pod> pods_;
};

BOOST_AUTO_TEST_CASE(the_charts_topology_starts_a_working_cluster) {
  ChartCluster cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllServing(); }, 30s),
                        cluster.Logs());
  // Pod N hosts shard N, derived from its name.
  for (size_t i = 0; i < 3; ++i) {
    BOOST_TEST(cluster.pod(i).name == "r-baton-" + std::to_string(i));
  }

  RecordingResource ledger;
  auto participant = Participant::Create({.seeds = {cluster.pod(0).loopback},
                                          .service = "ledger",
                                          .tls = cluster.client_tls()});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("ledger", &ledger).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  auto client = TransactionClient::Connect({.seeds = {cluster.pod(1).loopback},
                                            .max_attempts = 1,
                                            .tls = cluster.client_tls()});
  BOOST_REQUIRE(client.ok());
  auto transfer = [&]() -> std::string {
    auto txn = (*client)->Begin("transfer");
    if (!txn.ok()) return "";
    if (!(*participant)->Enlist((*txn)->xid(), "ledger", "").ok()) return "";
    if (!(*txn)->Commit(/*wait=*/true).ok()) return "";
    return (*txn)->xid();
  };
  // Every transfer commits, and they reach every shard. (Under a loaded
  // machine a node may miss a peer's poll and call it down for a moment;
  // the client then leaves that shard alone for a while, so the count of
  // transfers it takes to reach all three is not fixed.)
  int transfers = 0;
  BOOST_TEST(WaitFor(
      [&] {
        BOOST_REQUIRE(!transfer().empty());
        ++transfers;
        return ledger.committed('0') > 0 && ledger.committed('1') > 0 &&
               ledger.committed('2') > 0;
      },
      30s));
  BOOST_TEST(WaitFor(
      [&] {
        return ledger.committed('0') + ledger.committed('1') +
                   ledger.committed('2') ==
               transfers;
      },
      20s));

  // A pod dies: transfers go on over the other two; it comes back with its
  // volume and takes its share again.
  cluster.process(2).Signal(SIGKILL);
  BOOST_REQUIRE(WaitFor([&] { return cluster.process(2).HasExited(); }, 20s));
  BOOST_REQUIRE(WaitFor([&] { return !transfer().empty(); }, 20s));
  for (int i = 0; i < 10; ++i) {
    std::string xid = transfer();
    BOOST_REQUIRE(!xid.empty());
    BOOST_TEST(xid[0] != '2');
  }
  cluster.Start(2);
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllServing(); }, 30s),
                        cluster.Logs());
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  int before = ledger.committed('2');
  BOOST_TEST(WaitFor(
      [&] {
        std::string xid = transfer();
        return !xid.empty() && ledger.committed('2') > before;
      },
      30s));
}

}  // namespace
}  // namespace baton
