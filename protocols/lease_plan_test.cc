#include "protocols/lease_plan.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

std::vector<ShardLease> Free(uint32_t shards) {
  std::vector<ShardLease> out;
  for (uint32_t s = 0; s < shards; ++s) out.push_back({.shard = s});
  return out;
}

// Every node plans on the same reading and the table applies the plan, as
// the lease keepers do, until nothing changes.
std::vector<ShardLease> Settle(std::vector<ShardLease> leases,
                               const std::vector<std::string>& nodes) {
  for (int round = 0; round < 20; ++round) {
    bool changed = false;
    for (const std::string& node : nodes) {
      LeasePlan plan = PlanLeases(node, nodes, leases);
      for (uint32_t s : plan.give_back) {
        leases[s].owner.clear();
        changed = true;
      }
      for (uint32_t s : plan.take) {
        leases[s] = {
            .shard = s, .owner = node, .fencing = leases[s].fencing + 1};
        changed = true;
      }
    }
    if (!changed) return leases;
  }
  BOOST_FAIL("the plan did not settle");
  return leases;
}

size_t HeldBy(const std::vector<ShardLease>& leases, const std::string& node) {
  return std::count_if(leases.begin(), leases.end(),
                       [&](const ShardLease& l) { return l.owner == node; });
}

BOOST_AUTO_TEST_SUITE(lease_plan)

BOOST_AUTO_TEST_CASE(twelve_shards_over_three_nodes_settle_at_four_each) {
  std::vector<ShardLease> leases = Settle(Free(12), {"a", "b", "c"});
  for (const char* node : {"a", "b", "c"}) {
    BOOST_TEST(HeldBy(leases, node) == 4u, node);
  }
}

BOOST_AUTO_TEST_CASE(shares_that_do_not_divide_go_to_the_first_names) {
  BOOST_TEST(PlanLeases("a", {"b", "c", "d", "e"}, Free(12)).share == 3u);
  BOOST_TEST(PlanLeases("b", {"a", "c", "d", "e"}, Free(12)).share == 3u);
  BOOST_TEST(PlanLeases("c", {"a", "b", "d", "e"}, Free(12)).share == 2u);
  std::vector<ShardLease> leases = Settle(Free(12), {"a", "b", "c", "d", "e"});
  size_t total = 0;
  for (const char* node : {"a", "b", "c", "d", "e"}) {
    total += HeldBy(leases, node);
    BOOST_TEST(HeldBy(leases, node) >= 2u);
  }
  BOOST_TEST(total == 12u);
}

BOOST_AUTO_TEST_CASE(a_dead_nodes_expired_shards_are_taken_by_the_rest) {
  std::vector<ShardLease> leases = Settle(Free(12), {"a", "b", "c"});
  for (ShardLease& lease : leases) {
    if (lease.owner == "c") lease.expired = true;
  }
  leases = Settle(leases, {"a", "b"});
  BOOST_TEST(HeldBy(leases, "a") == 6u);
  BOOST_TEST(HeldBy(leases, "b") == 6u);
  BOOST_TEST(HeldBy(leases, "c") == 0u);
  for (const ShardLease& lease : leases) {
    BOOST_TEST(lease.fencing >= 1);
  }
}

BOOST_AUTO_TEST_CASE(a_returning_node_gets_its_share_back) {
  std::vector<ShardLease> leases = Settle(Free(12), {"a", "b"});
  leases = Settle(leases, {"a", "b", "c"});
  for (const char* node : {"a", "b", "c"}) {
    BOOST_TEST(HeldBy(leases, node) == 4u, node);
  }
}

BOOST_AUTO_TEST_CASE(a_live_owner_keeps_its_shard_and_self_counts_as_live) {
  std::vector<ShardLease> leases = Free(2);
  leases[0].owner = "b";
  // b is not in a's list of live nodes, but its lease has not expired.
  LeasePlan plan = PlanLeases("a", {}, leases);
  BOOST_TEST(plan.share == 2u);
  BOOST_TEST((plan.take == std::vector<uint32_t>{1}));
  // Its own expired lease is still its own: nothing to take.
  leases[1] = {.shard = 1, .owner = "a", .fencing = 3, .expired = true};
  plan = PlanLeases("a", {"b"}, leases);
  BOOST_TEST(plan.share == 1u);
  BOOST_TEST(plan.take.empty());
  BOOST_TEST(plan.give_back.empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
