#include "common/fleet.h"

#include <boost/test/unit_test.hpp>

namespace baton {
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

BOOST_AUTO_TEST_SUITE(fleet)

v1::Topology TwoNodes() {
  v1::Topology t;
  for (uint32_t id : {0u, 1u}) {
    v1::TopologyNode* n = t.add_nodes();
    n->set_id(id);
    n->set_address("10.0.0." + std::to_string(id + 1) + ":7420");
    v1::TopologyShard* s = t.add_shards();
    s->set_id(id);
    s->set_node(id);
  }
  return t;
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
  v1::Topology t = TwoNodes();
  Fleet fleet = Fleet::From("seed:7420", t);
  BOOST_TEST(fleet.clustered());
  BOOST_TEST(fleet.AddressFor("1-3-9") == "10.0.0.2:7420");
  BOOST_TEST(fleet.AddressFor("7-3-9") == "seed:7420");
  BOOST_TEST(fleet.OwnerOf(1)->id == 1u);
  BOOST_TEST(fleet.OwnerOf(7) == nullptr);
  // A lone node is dialled where batonctl was told, not where it says.
  v1::Topology alone;
  *alone.add_nodes() = t.nodes(0);
  *alone.add_shards() = t.shards(0);
  Fleet one = Fleet::From("seed:7420", alone);
  BOOST_TEST(!one.clustered());
  BOOST_TEST(one.AddressFor("0-1-1") == "seed:7420");
}

v1::ListTransactionsResponse Page(std::vector<v1::Transaction> ts,
                                  std::string next) {
  v1::ListTransactionsResponse r;
  for (v1::Transaction& t : ts) *r.add_transactions() = std::move(t);
  r.set_next_page_token(std::move(next));
  return r;
}

// What batonctl and the console both do with a cluster's pages: node 1's
// page is taken only in part, so it is asked again for that part, and its
// own token then stands where the merged page stopped.
BOOST_AUTO_TEST_CASE(a_listing_asks_again_for_a_page_taken_in_part) {
  auto fleet =
      std::make_shared<const Fleet>(Fleet::From("10.0.0.1:7420", TwoNodes()));
  v1::ListTransactionsRequest request;
  request.set_limit(3);
  std::optional<FleetListing> listing = FleetListing::Start(fleet, request);
  BOOST_REQUIRE(listing.has_value());
  BOOST_REQUIRE(listing->FirstRound().size() == 2u);
  BOOST_TEST(listing->FirstRound()[0].request.limit() == 3u);
  listing->Answered(0, Page({Open("0-1-1"), Open("0-1-2")}, ""));
  listing->Answered(1, Page({Open("1-1-1"), Open("1-1-2")}, "t1"));
  std::vector<FleetListing::Ask> again = listing->Merge();
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].node->id == 1u);
  BOOST_TEST(again[0].request.limit() == 1u);
  listing->Reanswered(1, Page({Open("1-1-1")}, "after-1-1-1"));
  v1::ListTransactionsResponse page = listing->Finish();
  BOOST_TEST(Xids({page.transactions().begin(), page.transactions().end()}) ==
                 (std::vector<std::string>{"0-1-1", "0-1-2", "1-1-1"}),
             boost::test_tools::per_element());
  FleetToken token;
  BOOST_REQUIRE(DecodeFleetToken(page.next_page_token(), &token));
  BOOST_TEST(token.done[0]);
  BOOST_TEST(token.next[1] == "after-1-1-1");

  // The next page asks only node 1, from its own token.
  request.set_page_token(page.next_page_token());
  listing = FleetListing::Start(fleet, request);
  BOOST_REQUIRE(listing->FirstRound().size() == 1u);
  BOOST_TEST(listing->FirstRound()[0].request.page_token() == "after-1-1-1");
  request.set_page_token("not ours");
  BOOST_TEST(!FleetListing::Start(fleet, request).has_value());
}

// A node that does not answer is left out of the page and asked again
// from where it was by the next.
BOOST_AUTO_TEST_CASE(a_node_that_fails_keeps_its_place_in_the_token) {
  auto fleet =
      std::make_shared<const Fleet>(Fleet::From("10.0.0.1:7420", TwoNodes()));
  v1::ListTransactionsRequest request;
  FleetToken start;
  start.next = {{0, "t0"}, {1, "t1"}};
  start.done = {{0, false}, {1, false}};
  request.set_page_token(EncodeFleetToken(start));
  std::optional<FleetListing> listing = FleetListing::Start(fleet, request);
  BOOST_REQUIRE(listing.has_value());
  listing->Answered(0, Page({Open("0-1-5")}, ""));  // Node 1 failed.
  BOOST_TEST(listing->Merge().empty());
  v1::ListTransactionsResponse page = listing->Finish();
  BOOST_TEST(page.transactions_size() == 1);
  FleetToken token;
  BOOST_REQUIRE(DecodeFleetToken(page.next_page_token(), &token));
  BOOST_TEST(token.done[0]);
  BOOST_TEST(!token.done[1]);
  BOOST_TEST(token.next[1] == "t1");
}

BOOST_AUTO_TEST_CASE(stats_and_participants_merge_across_nodes) {
  std::map<uint32_t, v1::GetStatsResponse> stats;
  for (uint32_t node : {0u, 1u}) {
    v1::GetStatsResponse& r = stats[node];
    r.set_live_transactions(2 + node);
    v1::StatusCount* c = r.add_unfinished();
    c->set_status(v1::GLOBAL_STATUS_BEGUN);
    c->set_count(2 + node);
    r.set_oldest_unfinished_xid(std::to_string(node) + "-1-1");
    r.set_oldest_unfinished_begun_unix_ms(100 - node);
  }
  stats[1].set_store_error("disk full");
  v1::GetStatsResponse total = MergeStats(stats);
  BOOST_TEST(total.live_transactions() == 5u);
  BOOST_REQUIRE(total.unfinished_size() == 1);
  BOOST_TEST(total.unfinished(0).count() == 5u);
  BOOST_TEST(total.oldest_unfinished_xid() == "1-1-1");
  BOOST_TEST(total.store_error() == "node 1: disk full");

  std::map<uint32_t, v1::ListParticipantsResponse> participants;
  for (uint32_t node : {0u, 4u}) {
    v1::Participant* p = participants[node].add_participants();
    p->set_instance_id("bank-a-1");
    p->set_commands_in_flight(1);
    p->set_attached_unix_ms(10 + node);
    p->set_last_seen_unix_ms(20 + node);
  }
  std::map<std::string, std::string> attached_to;
  v1::ListParticipantsResponse merged =
      MergeParticipants(participants, &attached_to);
  BOOST_REQUIRE(merged.participants_size() == 1);
  BOOST_TEST(merged.participants(0).commands_in_flight() == 2u);
  BOOST_TEST(merged.participants(0).attached_unix_ms() == 10);
  BOOST_TEST(merged.participants(0).last_seen_unix_ms() == 24);
  BOOST_TEST(attached_to["bank-a-1"] == "0,4");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
