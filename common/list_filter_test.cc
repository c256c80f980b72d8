#include "common/list_filter.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(list_filter)

BOOST_AUTO_TEST_CASE(status_words_and_needs_attention) {
  v1::ListTransactionsRequest request;
  BOOST_TEST(AddStatusWord("needs-attention", &request));
  BOOST_TEST(AddStatusWord("begun", &request));
  BOOST_TEST(!AddStatusWord("stuck", &request));
  BOOST_REQUIRE(request.statuses_size() == 3);
  BOOST_TEST(request.statuses(0) == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(request.statuses(1) == v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  BOOST_TEST(request.statuses(2) == v1::GLOBAL_STATUS_BEGUN);
  v1::Protocol p;
  BOOST_TEST(ProtocolWord("tcc", &p));
  BOOST_TEST(p == v1::PROTOCOL_TCC);
  BOOST_TEST(!ProtocolWord("xa", &p));
}

BOOST_AUTO_TEST_CASE(durations) {
  int64_t ms = 0;
  BOOST_TEST((ParseDuration("90s", &ms) && ms == 90'000));
  BOOST_TEST((ParseDuration("2h", &ms) && ms == 7'200'000));
  BOOST_TEST((ParseDuration("250", &ms) && ms == 250));
  BOOST_TEST(!ParseDuration("5 minutes", &ms));
  BOOST_TEST(!ParseDuration("-1s", &ms));
  BOOST_TEST(!ParseDuration("", &ms));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
