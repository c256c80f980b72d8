#include "protocols/backoff.h"

#include <boost/test/unit_test.hpp>

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(backoff)

BOOST_AUTO_TEST_CASE(doubles_per_failure_up_to_the_cap) {
  Backoff b(100, 1000, [] { return 1.0; });
  BOOST_TEST(b.DelayMs(0) == 100);
  BOOST_TEST(b.DelayMs(1) == 200);
  BOOST_TEST(b.DelayMs(3) == 800);
  BOOST_TEST(b.DelayMs(4) == 1000);
  BOOST_TEST(b.DelayMs(4000) == 1000);
}

BOOST_AUTO_TEST_CASE(jitter_scales_and_never_reaches_zero) {
  BOOST_TEST(Backoff(100, 1000, [] { return 0.8; }).DelayMs(0) == 80);
  BOOST_TEST(Backoff(1, 1, [] { return 0.8; }).DelayMs(0) == 1);
  Backoff random(100, 1000);
  for (int i = 0; i < 100; ++i) {
    int64_t d = random.DelayMs(0);
    BOOST_TEST((d >= 80 && d <= 120));
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
