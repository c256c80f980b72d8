// Three nodes (tests/support/three_nodes.h): every node learns every other
// and serves the same map of shards to owners, refuses a call about another
// node's transaction with a WrongShard naming the owner (on a unary call, as
// rich error details, and on the pipeline), and marks a killed node's shard
// down; the SDK routes by shard, keeps idempotency keys across nodes through
// a kill, and attaches participants to every node.
#define BOOST_TEST_MODULE cluster_topology
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "baton/client.h"
#include "baton/participant.h"
#include "baton/v1/topology.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "common/child_process.h"
#include "common/grpc_status.h"
#include "common/stable_hash.h"
#include "common/wrong_shard.h"
#include "tests/support/recording_resource.h"
#include "tests/support/three_nodes.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

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
// One seed, and the participant attaches to all three nodes, so each
// node's phase two reaches it; a node that dies and comes back is attached
// again.
BOOST_AUTO_TEST_CASE(a_participant_attaches_to_every_node_and_follows) {
  ThreeNodes cluster;
  BOOST_REQUIRE_MESSAGE(WaitFor([&] { return cluster.AllAgree(); }, 20s),
                        cluster.Logs());
  RecordingResource resource;
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
