#include "coordinator/recent_rates.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

v1::SecondCounts Second(int64_t end_unix_ms, uint64_t begun,
                        uint64_t committed) {
  v1::SecondCounts s;
  s.set_end_unix_ms(end_unix_ms);
  s.set_begun(begun);
  s.set_committed(committed);
  return s;
}

BOOST_AUTO_TEST_SUITE(recent_rates)

BOOST_AUTO_TEST_CASE(each_second_holds_what_changed_and_15_minutes_are_kept) {
  RecentRates::Totals totals;
  RecentRates rates([&] { return totals; });
  rates.Sample(1000);  // The baseline.
  BOOST_TEST(rates.Recent(RecentRates::kSeconds).empty());
  totals = {5, 3, 1};
  rates.Sample(2000);
  totals = {6, 5, 1};
  rates.Sample(3000);
  std::vector<v1::SecondCounts> recent = rates.Recent(RecentRates::kSeconds);
  BOOST_REQUIRE(recent.size() == 2u);
  BOOST_TEST(recent[0].end_unix_ms() == 2000);
  BOOST_TEST(recent[0].begun() == 5u);
  BOOST_TEST(recent[1].committed() == 2u);
  BOOST_TEST(recent[1].rolled_back() == 0u);
  BOOST_TEST(rates.Recent(1).size() == 1u);
  BOOST_TEST(rates.Recent(1)[0].end_unix_ms() == 3000);
  for (int i = 0; i < 1000; ++i) rates.Sample(4000 + i * 1000);
  recent = rates.Recent(100000);
  BOOST_TEST(recent.size() == RecentRates::kSeconds);
  BOOST_TEST(recent.back().end_unix_ms() == 4000 + 999 * 1000);
}

BOOST_AUTO_TEST_CASE(nodes_seconds_add_up_by_the_whole_second) {
  std::vector<v1::SecondCounts> sum =
      SumSeconds({{Second(10'100, 1, 1), Second(11'100, 2, 0)},
                  {Second(10'900, 3, 1), Second(12'050, 4, 4)}});
  BOOST_REQUIRE(sum.size() == 3u);
  BOOST_TEST(sum[0].end_unix_ms() == 10'000);
  BOOST_TEST(sum[0].begun() == 4u);
  BOOST_TEST(sum[0].committed() == 2u);
  BOOST_TEST(sum[1].begun() == 2u);
  BOOST_TEST(sum[2].end_unix_ms() == 12'000);
  BOOST_TEST(sum[2].committed() == 4u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
