#define BOOST_TEST_MODULE batonctl_unit
#include "tools/batonctl/fleet.h"

#include <boost/test/unit_test.hpp>

namespace baton::ctl {
namespace {

v1::Transaction Open(const std::string& xid) {
  v1::Transaction t;
  t.set_xid(xid);
  t.set_status(v1::GLOBAL_STATUS_BEGUN);
  return t;
}

v1::Transaction Finished(const std::string& xid, int64_t finished_ms) {
  v1::Transaction t;
  t.set_xid(xid);
  t.set_status(v1::GLOBAL_STATUS_COMMITTED);
  t.set_finished_unix_ms(finished_ms);
  return t;
}

std::vector<std::string> Xids(const std::vector<v1::Transaction>& ts) {
  std::vector<std::string> out;
  for (const v1::Transaction& t : ts) out.push_back(t.xid());
  return out;
}

BOOST_AUTO_TEST_CASE(pages_merge_in_one_nodes_order) {
  // Node 1 hosts shards 1 and 3, node 2 shard 2: unfinished shard by shard,
  // each node's in its own order, then finished by finish time.
  std::vector<NodePage> pages = {
      {1, {Open("1-1-9"), Open("1-1-2"), Open("3-1-1"), Finished("1-1-5", 30)}},
      {2, {Open("2-1-1"), Finished("2-1-7", 10), Finished("2-1-8", 40)}}};
  std::vector<v1::Transaction> out;
  std::vector<size_t> taken = MergePages(pages, 100, &out);
  BOOST_TEST(
      Xids(out) == (std::vector<std::string>{"1-1-9", "1-1-2", "2-1-1", "3-1-1",
                                             "2-1-7", "1-1-5", "2-1-8"}),
      boost::test_tools::per_element());
  BOOST_TEST(taken == (std::vector<size_t>{4, 3}),
             boost::test_tools::per_element());

  out.clear();
  taken = MergePages(pages, 4, &out);
  BOOST_TEST(Xids(out) ==
                 (std::vector<std::string>{"1-1-9", "1-1-2", "2-1-1", "3-1-1"}),
             boost::test_tools::per_element());
  BOOST_TEST(taken == (std::vector<size_t>{3, 1}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_fleet_token_round_trips) {
  FleetToken token;
  token.next = {{0, "L:17:0-1-4"}, {1, ""}, {2, ""}};
  token.done = {{0, false}, {1, false}, {2, true}};
  std::string text = EncodeFleetToken(token);
  FleetToken back;
  BOOST_REQUIRE(DecodeFleetToken(text, &back));
  BOOST_TEST(back.next[0] == "L:17:0-1-4");
  BOOST_TEST(back.next[1].empty());
  BOOST_TEST(!back.done[1]);
  BOOST_TEST(back.done[2]);
  FleetToken ignored;
  BOOST_TEST(!DecodeFleetToken("L:17:0-1-4", &ignored));
  BOOST_TEST(!DecodeFleetToken("N|x=1", &ignored));
  BOOST_TEST(DecodeFleetToken("", &ignored));
}

BOOST_AUTO_TEST_CASE(an_xid_goes_to_its_shards_owner) {
  v1::Topology t;
  for (uint32_t id : {0u, 1u}) {
    v1::TopologyNode* n = t.add_nodes();
    n->set_id(id);
    n->set_address("10.0.0." + std::to_string(id + 1) + ":7420");
    v1::TopologyShard* s = t.add_shards();
    s->set_id(id);
    s->set_node(id);
  }
  Fleet fleet = Fleet::From("seed:7420", t);
  BOOST_TEST(fleet.clustered());
  BOOST_TEST(fleet.AddressFor("1-3-9") == "10.0.0.2:7420");
  BOOST_TEST(fleet.AddressFor("7-3-9") == "seed:7420");
  // A lone node is dialled where batonctl was told, not where it says.
  v1::Topology alone;
  *alone.add_nodes() = t.nodes(0);
  *alone.add_shards() = t.shards(0);
  Fleet one = Fleet::From("seed:7420", alone);
  BOOST_TEST(!one.clustered());
  BOOST_TEST(one.AddressFor("0-1-1") == "seed:7420");
}

}  // namespace
}  // namespace baton::ctl
