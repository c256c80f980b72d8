// Three batond nodes on 127.0.0.1, each owning one shard and its own data
// dir, started one after another, each told only of those started before
// it: every node learns every other, serves the same map of shards to
// owners, refuses a call about another node's transaction with a
// WrongShard naming the owner (on a unary call, as rich error details, and
// on the pipeline), and marks a killed node's shard down.
#define BOOST_TEST_MODULE cluster_topology
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "baton/client.h"
#include "baton/participant.h"
#include "baton/v1/topology.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "common/child_process.h"
#include "common/grpc_status.h"
#include "common/stable_hash.h"
#include "common/wrong_shard.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

struct Node {
  std::unique_ptr<ChildProcess> process;
  std::string address;
};

struct ClusterFlags {
  // --cluster-shards; 0 leaves it out.
  uint32_t cluster_shards = 0;
  // BATON_FAILPOINTS of each node, by id.
  std::map<uint32_t, std::string> failpoints;
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
    std::vector<std::string> env;
    if (!failpoints.empty()) env.push_back("BATON_FAILPOINTS=" + failpoints);
    Node node;
    node.process = ChildProcess::Start(name, argv, env, dir_.path());
    int port = WaitForPortFile(port_file, 20s);
    BOOST_REQUIRE_MESSAGE(port != 0, node.process->Stderr());
    node.address = "127.0.0.1:" + std::to_string(port);
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

std::unique_ptr<v1::TransactionService::Stub> Transactions(
    const std::string& address) {
  return v1::TransactionService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

std::string BeginOn(const std::string& address) {
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

BOOST_AUTO_TEST_CASE(every_node_learns_every_other_and_agrees_on_owners) {
  ThreeNodes cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  v1::Topology t = cluster.Topology(0);
  for (const v1::TopologyNode& n : t.nodes()) {
    BOOST_TEST(n.address() == cluster.node(n.id()).address);
    BOOST_TEST(n.health() == v1::NODE_HEALTH_SERVING);
  }
  // batonctl shows the same map, from any node.
  auto ctl = ChildProcess::Start("batonctl-topology",
                                 {BinPath("batonctl"), "--coordinator",
                                  cluster.node(1).address, "topology"},
                                 {}, cluster.dir());
  BOOST_REQUIRE(ctl->WaitExit(20s) == 0);
  std::string shown = ctl->Stdout();
  for (uint32_t id = 0; id < 3; ++id) {
    BOOST_TEST(shown.find(cluster.node(id).address) != std::string::npos);
  }
  BOOST_TEST(shown.find("as node 1 sees it") != std::string::npos);
  // A transaction begun on node 2 counts as unfinished on its shard.
  BeginOn(cluster.node(2).address);
  BOOST_TEST(WaitFor(
      [&] {
        v1::Topology seen = cluster.Topology(1);
        return seen.shards_size() == 3 && seen.shards(2).unfinished() == 1;
      },
      20s));
}

BOOST_AUTO_TEST_CASE(a_call_about_another_shard_names_its_owner) {
  ThreeNodes cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  std::string xid = BeginOn(cluster.node(2).address);
  BOOST_REQUIRE(xid.starts_with("2-"));

  auto stub = Transactions(cluster.node(0).address);
  grpc::ClientContext context;
  v1::CommitRequest commit;
  commit.set_xid(xid);
  v1::CommitResponse ignored;
  grpc::Status s = stub->Commit(&context, commit, &ignored);
  BOOST_TEST(static_cast<int>(s.error_code()) ==
             static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  BOOST_TEST(s.error_message().find(cluster.node(2).address) !=
             std::string::npos);
  std::optional<v1::WrongShard> refusal = WrongShardOf(FromRichGrpcStatus(s));
  BOOST_REQUIRE(refusal.has_value());
  BOOST_TEST(refusal->shard() == 2u);
  BOOST_TEST(refusal->owner_node() == 2u);
  BOOST_TEST(refusal->owner_address() == cluster.node(2).address);

  // The same on the pipeline, as the call's result.
  grpc::ClientContext stream_context;
  auto stream = stub->Pipeline(&stream_context);
  v1::PipelineRequest request;
  v1::PipelineCall* call = request.add_calls();
  call->set_call_id(7);
  *call->mutable_commit() = commit;
  BOOST_REQUIRE(stream->Write(request));
  v1::PipelineReply reply;
  BOOST_REQUIRE(stream->Read(&reply));
  BOOST_REQUIRE(reply.results_size() == 1);
  BOOST_TEST(reply.results(0).code() ==
             static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  BOOST_TEST(reply.results(0).wrong_shard().owner_address() ==
             cluster.node(2).address);
  stream->WritesDone();
  stream->Finish().ok();

  // The refusal changed nothing: the owner still has it open.
  auto owner = Transactions(cluster.node(2).address);
  grpc::ClientContext get_context;
  v1::GetTransactionRequest get;
  get.set_xid(xid);
  v1::GetTransactionResponse got;
  BOOST_REQUIRE(owner->GetTransaction(&get_context, get, &got).ok());
  BOOST_TEST(got.transaction().status() == v1::GLOBAL_STATUS_BEGUN);
}

BOOST_AUTO_TEST_CASE(a_killed_node_shows_unreachable_and_its_shard_down) {
  ThreeNodes cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  cluster.process(1).Signal(SIGKILL);
  BOOST_TEST_MESSAGE("node 1 killed");
  BOOST_TEST(
      WaitFor([&] { return cluster.AllAgree(1, v1::SHARD_STATE_DOWN); }, 20s));
  v1::Topology t = cluster.Topology(0);
  for (const v1::TopologyNode& n : t.nodes()) {
    if (n.id() == 1) BOOST_TEST(n.health() == v1::NODE_HEALTH_UNREACHABLE);
  }
}

BOOST_AUTO_TEST_CASE(the_sdk_spreads_begins_and_sends_each_call_to_the_owner) {
  ThreeNodes cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  // One seed is enough: the client learns the other two from it.
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(0).address}, .max_attempts = 1});
  BOOST_REQUIRE(client.ok());
  std::set<char> shards;
  for (int i = 0; i < 30; ++i) {
    auto txn = (*client)->Begin("spread");
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    shards.insert((*txn)->xid()[0]);
    // Commit and GetTransaction reach the owner, not the seed.
    BOOST_REQUIRE_MESSAGE((*txn)->Commit().ok(), (*txn)->xid());
    auto record = (*client)->GetTransaction((*txn)->xid());
    BOOST_REQUIRE(record.ok());
    BOOST_TEST(record->status() == v1::GLOBAL_STATUS_COMMITTED);
  }
  BOOST_TEST(shards == (std::set<char>{'0', '1', '2'}));

  // With node 2 gone, Begins go to the other two at once: the first call
  // that finds it gone makes the client look again, and from then on every
  // Begin succeeds.
  cluster.process(2).Signal(SIGKILL);
  BOOST_REQUIRE(
      WaitFor([&] { return cluster.AllAgree(2, v1::SHARD_STATE_DOWN); }, 20s));
  BOOST_REQUIRE(
      WaitFor([&] { return (*client)->Begin("finds it gone").ok(); }, 20s));
  for (int i = 0; i < 20; ++i) {
    auto txn = (*client)->Begin("after the kill");
    BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status().ToString());
    BOOST_TEST((*txn)->xid()[0] != '2');
    BOOST_TEST((*txn)->Commit().ok());
  }
}

// The key's shard is node 1's; node 1 dies right after the Begin is durable
// (its second group commit, after the epoch's), before it answers. No retry
// starts a second transaction: the other nodes refuse the key, naming node
// 1, and once node 1 is back the retry gets the transaction the first call
// started.
BOOST_AUTO_TEST_CASE(a_retried_key_never_starts_a_second_transaction) {
  std::string key = "order-0";
  for (int i = 1; KeyShard(key, {0, 1, 2}) != 1; ++i) {
    key = "order-" + std::to_string(i);
  }
  ThreeNodes cluster({.cluster_shards = 3,
                      .failpoints = {{1, "group_commit_after_sync=2:crash"}}});
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(0).address, cluster.node(2).address},
       .max_attempts = 1});
  BOOST_REQUIRE(client.ok());
  v1::BeginRequest begin;
  begin.set_name("keyed");
  begin.set_request_id(key);
  BOOST_TEST(!(*client)->BeginRaw(begin).ok());
  BOOST_REQUIRE(WaitFor([&] { return cluster.process(1).HasExited(); }, 20s));
  BOOST_TEST_MESSAGE("node 1 died before answering");

  for (uint32_t other : {0u, 2u}) {
    auto stub = Transactions(cluster.node(other).address);
    grpc::ClientContext context;
    v1::BeginResponse ignored;
    grpc::Status s = stub->Begin(&context, begin, &ignored);
    BOOST_TEST(static_cast<int>(s.error_code()) ==
               static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
    BOOST_TEST(s.error_message().find(key) != std::string::npos);
    std::optional<v1::WrongShard> refusal = WrongShardOf(FromRichGrpcStatus(s));
    BOOST_REQUIRE(refusal.has_value());
    BOOST_TEST(refusal->shard() == 1u);
    BOOST_TEST(refusal->owner_address() == cluster.node(1).address);
  }

  cluster.Restart(1);
  BOOST_REQUIRE(WaitFor(
      [&] {
        v1::Topology t = cluster.Topology(0);
        return t.shards_size() == 3 &&
               t.shards(1).state() == v1::SHARD_STATE_SERVING;
      },
      20s));
  absl::StatusOr<v1::BeginResponse> retried;
  BOOST_REQUIRE(WaitFor(
      [&] { return (retried = (*client)->BeginRaw(begin)).ok(); }, 20s));
  // The transaction the first call started, which the restart rolled back
  // (it was open when its coordinator died); a second one would be open.
  BOOST_TEST(retried->xid().starts_with("1-"));
  auto record = (*client)->GetTransaction(retried->xid());
  BOOST_REQUIRE(record.ok());
  BOOST_TEST(record->status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(record->name() == "keyed");
  absl::StatusOr<v1::BeginResponse> again = (*client)->BeginRaw(begin);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->xid() == retried->xid());
  v1::Topology t;
  BOOST_REQUIRE(WaitFor(
      [&] { return (t = cluster.Topology(1)).shards_size() == 3; }, 20s));
  for (const v1::TopologyShard& shard : t.shards()) {
    BOOST_TEST(shard.unfinished() == 0u);
  }
}

// Counts the commits it is told of, by shard.
class CountingResource : public XaResource {
 public:
  absl::Status Prepare(const BranchContext&) override {
    return absl::OkStatus();
  }
  PhaseTwoResult Commit(const BranchContext& branch) override {
    absl::MutexLock lock(&mu_);
    committed_[branch.xid[0]]++;
    return PhaseTwoResult::Done();
  }
  PhaseTwoResult Rollback(const BranchContext&) override {
    return PhaseTwoResult::Done();
  }
  std::map<char, int> committed() {
    absl::MutexLock lock(&mu_);
    return committed_;
  }

 private:
  absl::Mutex mu_;
  std::map<char, int> committed_ ABSL_GUARDED_BY(mu_);
};

// One seed, and the participant attaches to all three nodes, so each
// node's phase two reaches it; a node that dies and comes back is attached
// again.
BOOST_AUTO_TEST_CASE(a_participant_attaches_to_every_node_and_follows) {
  ThreeNodes cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  CountingResource resource;
  auto participant = Participant::Create({.seeds = {cluster.node(1).address},
                                          .topology_refresh = 200ms,
                                          .service = "counting"});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource("counted", &resource).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  auto client = TransactionClient::Connect(
      {.seeds = {cluster.node(0).address}, .max_attempts = 1});
  BOOST_REQUIRE(client.ok());
  auto commit_one = [&] {
    auto txn = (*client)->Begin("counted");
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE((*participant)->Enlist((*txn)->xid(), "counted", "").ok());
    BOOST_REQUIRE((*txn)->Commit().ok());
    return (*txn)->xid();
  };
  for (int i = 0; i < 30; ++i) commit_one();
  BOOST_TEST(WaitFor(
      [&] {
        std::map<char, int> c = resource.committed();
        return c.size() == 3 && c['0'] + c['1'] + c['2'] == 30;
      },
      20s));

  cluster.process(2).Signal(SIGKILL);
  cluster.Restart(2);
  BOOST_REQUIRE(WaitFor([&] { return cluster.AllAgree(); }, 20s));
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  int before = resource.committed()['2'];
  for (int i = 0; i < 30 && resource.committed()['2'] == before; ++i) {
    commit_one();
  }
  BOOST_TEST(WaitFor([&] { return resource.committed()['2'] > before; }, 20s));
}

}  // namespace
}  // namespace baton
