#include "coordinator/xid.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(xid)

BOOST_AUTO_TEST_CASE(format_and_parse_round_trip) {
  XidParts parts{.node = 3, .epoch = 17, .sequence = 123456789};
  std::string xid = FormatXid(parts);
  BOOST_TEST(xid == "3-17-123456789");
  XidParts back;
  BOOST_REQUIRE(ParseXid(xid, &back));
  BOOST_TEST(back.node == 3u);
  BOOST_TEST(back.epoch == 17u);
  BOOST_TEST(back.sequence == 123456789u);
}

BOOST_AUTO_TEST_CASE(rejects_malformed) {
  XidParts parts;
  for (const char* bad : {"", "1-2", "1-2-3-4", "a-1-2", "1--2", "1-2-",
                          "-1-2-3", "1-2-3x", "99999999999-1-1"}) {
    BOOST_TEST(!ParseXid(bad, &parts), bad);
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
