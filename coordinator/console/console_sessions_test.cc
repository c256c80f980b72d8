#include "coordinator/console/console_sessions.h"

#include <boost/test/unit_test.hpp>

#include "coordinator/console/console_api.h"

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(console_sessions)

BOOST_AUTO_TEST_CASE(a_session_lasts_its_lifetime_on_the_steady_clock) {
  ManualClock clock;
  ConsoleSessions sessions(&clock, /*lifetime_ms=*/1000, /*max_sessions=*/8);
  absl::StatusOr<ConsoleSessions::Session> s = sessions.Open("token");
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(s->id.size() == 64u);
  BOOST_TEST(s->csrf_token.size() == 64u);
  BOOST_TEST(s->id != s->csrf_token);
  BOOST_TEST(s->expires_unix_ms == clock.WallMs() + 1000);
  BOOST_TEST(sessions.Find(s->id)->admin_token == "token");
  BOOST_TEST(!sessions.Find(s->csrf_token).has_value());
  BOOST_TEST(!sessions.Find("").has_value());

  clock.StepWall(-3'600'000);  // A wall clock step moves nothing.
  clock.Advance(999);
  BOOST_TEST(sessions.Find(s->id).has_value());
  clock.Advance(1);
  BOOST_TEST(!sessions.Find(s->id).has_value());
}

BOOST_AUTO_TEST_CASE(closing_and_too_many_sign_ins_end_sessions) {
  ManualClock clock;
  ConsoleSessions sessions(&clock, 10'000, /*max_sessions=*/2);
  auto first = *sessions.Open("t");
  clock.Advance(1);
  auto second = *sessions.Open("t");
  clock.Advance(1);
  auto third = *sessions.Open("t");
  BOOST_TEST(!sessions.Find(first.id).has_value());  // The oldest went.
  BOOST_TEST(sessions.Find(second.id).has_value());
  sessions.Close(third.id);
  BOOST_TEST(!sessions.Find(third.id).has_value());
  BOOST_TEST(sessions.Find(second.id).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(console_api)

BOOST_AUTO_TEST_CASE(queries_are_percent_decoded_and_may_repeat) {
  console::Query q =
      console::ParseQuery("status=commit-stuck&status=begun&name=a%20b+c&x");
  BOOST_TEST(q.count("status") == 2u);
  BOOST_TEST(q.find("name")->second == "a b c");
  BOOST_TEST(q.find("x")->second == "");
  BOOST_TEST(console::PercentDecode("0-1-2%2") == "0-1-2%2");
  BOOST_TEST(console::PercentDecode("%41%zz") == "A%zz");
}

BOOST_AUTO_TEST_CASE(an_error_is_json_a_person_can_read) {
  HttpResponse r = console::JsonError(400, "bad \"word\"\n");
  BOOST_TEST(r.status == 400);
  BOOST_TEST(r.content_type == "application/json");
  BOOST_TEST(r.body == R"({"error":"bad \"word\"\n"})");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
