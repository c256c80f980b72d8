#include "coordinator/cluster_view.h"

#include <boost/test/unit_test.hpp>
#include <set>

#include "common/child_process.h"
#include "common/stable_hash.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

// Node 0 hosting shard 0, serving, with 4 unfinished.
ClusterView NodeZero(ClusterOptions options = {}) {
  options.node_id = 0;
  options.shards = {0};
  return ClusterView(options, [] {
    return SelfReport{.health = v1::NODE_HEALTH_SERVING,
                      .unfinished = {{0, 4}}};
  });
}

// What node `id` at `address` says of itself when it calls.
v1::Topology PeerPart(uint32_t id, const std::string& address,
                      v1::NodeHealth health = v1::NODE_HEALTH_SERVING) {
  v1::Topology part;
  part.set_answered_by(id);
  v1::TopologyNode* node = part.add_nodes();
  node->set_id(id);
  node->set_address(address);
  node->set_health(health);
  v1::TopologyShard* shard = part.add_shards();
  shard->set_id(id);
  shard->set_node(id);
  shard->set_state(health == v1::NODE_HEALTH_SERVING ? v1::SHARD_STATE_SERVING
                                                     : v1::SHARD_STATE_DOWN);
  return part;
}

BOOST_AUTO_TEST_SUITE(cluster_view)

BOOST_AUTO_TEST_CASE(a_node_alone_refuses_nothing_and_describes_itself) {
  ClusterView view = NodeZero();
  view.SetSelfAddress("10.0.0.1:7420");
  BOOST_TEST(!view.Elsewhere(3).has_value());
  v1::Topology t = view.Describe(false, nullptr);
  BOOST_REQUIRE(t.nodes_size() == 1);
  BOOST_TEST(t.nodes(0).address() == "10.0.0.1:7420");
  BOOST_REQUIRE(t.shards_size() == 1);
  BOOST_TEST(t.shards(0).state() == v1::SHARD_STATE_SERVING);
  BOOST_TEST(t.shards(0).unfinished() == 4u);
}

BOOST_AUTO_TEST_CASE(a_peer_that_calls_is_known_and_named_as_owner) {
  ClusterView view = NodeZero();
  uint64_t before = view.Describe(true, nullptr).version();
  v1::Topology caller = PeerPart(1, "10.0.0.2:7420");
  view.Describe(true, &caller);
  std::optional<v1::WrongShard> refusal = view.Elsewhere(1);
  BOOST_REQUIRE(refusal.has_value());
  BOOST_TEST(refusal->owner_node() == 1u);
  BOOST_TEST(refusal->owner_address() == "10.0.0.2:7420");
  // Once clustered, a shard nobody announced is refused without an owner.
  refusal = view.Elsewhere(7);
  BOOST_REQUIRE(refusal.has_value());
  BOOST_TEST(refusal->owner_address().empty());

  v1::Topology t = view.Describe(false, nullptr);
  BOOST_TEST(t.version() == before + 1);
  BOOST_REQUIRE(t.shards_size() == 2);
  BOOST_TEST(t.shards(0).id() == 0u);
  BOOST_TEST(t.shards(1).id() == 1u);
  // The same news again is no change; a new health is.
  view.Describe(true, &caller);
  BOOST_TEST(view.Describe(true, nullptr).version() == before + 1);
  v1::Topology sick = PeerPart(1, "10.0.0.2:7420", v1::NODE_HEALTH_NOT_SERVING);
  view.Describe(true, &sick);
  BOOST_TEST(view.Describe(true, nullptr).version() == before + 2);
}

BOOST_AUTO_TEST_CASE(
    a_peer_that_stops_answering_is_unreachable_its_shard_down) {
  ClusterView view = NodeZero({.poll_interval_ms = 10, .call_timeout_ms = 200});
  // Nothing listens on port 1: every poll fails at once.
  v1::Topology caller = PeerPart(1, "127.0.0.1:1");
  view.Describe(true, &caller);
  view.Start();
  BOOST_TEST(WaitFor(
      [&] {
        v1::Topology t = view.Describe(false, nullptr);
        return t.nodes_size() == 2 &&
               t.nodes(1).health() == v1::NODE_HEALTH_UNREACHABLE &&
               t.shards(1).state() == v1::SHARD_STATE_DOWN;
      },
      10s));
  view.Stop();
}

BOOST_AUTO_TEST_CASE(
    a_key_maps_over_the_cluster_shards_before_peers_are_heard) {
  ClusterView alone = NodeZero();
  BOOST_TEST(!alone.ShardForKey("order-17").has_value());

  ClusterView sized = NodeZero({.cluster_shards = 3});
  std::set<uint32_t> seen;
  for (int i = 0; i < 64; ++i) {
    std::string key = "order-" + std::to_string(i);
    std::optional<uint32_t> shard = sized.ShardForKey(key);
    BOOST_REQUIRE(shard.has_value());
    BOOST_TEST(*shard == KeyShard(key, {0, 1, 2}));
    seen.insert(*shard);
  }
  BOOST_TEST(seen == (std::set<uint32_t>{0, 1, 2}));
  BOOST_TEST(sized.Describe(false, nullptr).cluster_shards() == 3u);

  // Unsized: over the shards heard of, which grow as peers call.
  ClusterView unsized = NodeZero();
  v1::Topology one = PeerPart(1, "10.0.0.2:7420");
  unsized.Describe(true, &one);
  BOOST_TEST(*unsized.ShardForKey("k") == KeyShard("k", {0, 1}));
  v1::Topology two = PeerPart(2, "10.0.0.3:7420");
  unsized.Describe(true, &two);
  BOOST_TEST(*unsized.ShardForKey("k") == KeyShard("k", {0, 1, 2}));
}

BOOST_AUTO_TEST_CASE(a_pod_name_gives_its_ordinal) {
  BOOST_TEST(PodOrdinal("baton-2").value_or(99) == 2u);
  BOOST_TEST(PodOrdinal("my-baton-coordinator-13").value_or(99) == 13u);
  BOOST_TEST(!PodOrdinal("baton").has_value());
  BOOST_TEST(!PodOrdinal("baton-").has_value());
  BOOST_TEST(!PodOrdinal("baton-2a").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
