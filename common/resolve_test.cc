#include "common/resolve.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(resolve)

BOOST_AUTO_TEST_CASE(a_name_becomes_its_addresses_with_the_port) {
  std::vector<std::string> v4 = ResolveAll("127.0.0.1:7420");
  BOOST_REQUIRE(v4.size() == 1u);
  BOOST_TEST(v4[0] == "127.0.0.1:7420");
  std::vector<std::string> v6 = ResolveAll("[::1]:7420");
  BOOST_REQUIRE(v6.size() == 1u);
  BOOST_TEST(v6[0] == "[::1]:7420");
  for (const std::string& a : ResolveAll("localhost:9")) {
    BOOST_TEST(a.ends_with(":9"));
  }
}

BOOST_AUTO_TEST_CASE(no_port_is_nothing) {
  BOOST_TEST(ResolveAll("127.0.0.1").empty());
  BOOST_TEST(ResolveAll("127.0.0.1:").empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
