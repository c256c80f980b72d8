#include "coordinator/two_phase_driver.h"

#include <boost/test/unit_test.hpp>

#include "coordinator/table_test_fixture.h"

namespace baton {
namespace {

using testing::TableFixture;

BOOST_AUTO_TEST_SUITE(two_phase_driver)

BOOST_FIXTURE_TEST_CASE(a_failed_attempt_backs_off_then_goes_again,
                        TableFixture) {
  sink.Serve("bank");
  std::string xid = Begin();
  Prepare(xid, 1);
  Decide(xid, true).get();
  Sync();
  std::vector<v1::BranchCommand> sent = sink.Take();
  BOOST_REQUIRE(sent.size() == 1u);
  Result(sent[0], v1::COMMAND_OUTCOME_RETRY);
  Sync();
  v1::Transaction r = Read(xid);
  BOOST_TEST(r.branches(0).attempts() == 1u);
  // Backoff(100, 1000) without jitter: 100 ms after the first failure.
  BOOST_TEST(r.branches(0).next_retry_unix_ms() == timeline.Now() + 100);
  BOOST_TEST(wakeups.When(xid) <= timeline.Now() + 100);
  RunDue(xid, timeline.Now() + 99);
  BOOST_TEST(sink.Take().empty());
  clock.Advance(100);
  RunDue(xid, timeline.Now());
  sent = sink.Take();
  BOOST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].attempt() == 2u);
}

BOOST_FIXTURE_TEST_CASE(an_unanswered_command_counts_as_a_failed_attempt,
                        TableFixture) {
  sink.Serve("bank");
  std::string xid = Begin();
  Prepare(xid, 1);
  Decide(xid, true).get();
  Sync();
  BOOST_REQUIRE(sink.Take().size() == 1u);
  clock.Advance(kCommandTimeoutMs);
  RunDue(xid, timeline.Now());
  Sync();
  v1::Transaction r = Read(xid);
  BOOST_TEST(r.branches(0).attempts() == 1u);
  BOOST_TEST(r.branches(0).last_error().find("no answer") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(an_open_transaction_past_its_deadline_rolls_back,
                        TableFixture) {
  sink.Serve("bank");
  std::string xid = Begin("", /*timeout_ms=*/1000);
  Prepare(xid, 2);
  BOOST_TEST(wakeups.When(xid) == timeline.Now() + 1000);
  clock.Advance(1000);
  RunDue(xid, timeline.Now());
  Sync();
  std::vector<v1::BranchCommand> sent = sink.Take();
  BOOST_REQUIRE(sent.size() == 2u);
  BOOST_TEST(sent[0].action() == v1::BRANCH_ACTION_ROLLBACK);
  BOOST_TEST(Read(xid).status() == v1::GLOBAL_STATUS_ROLLING_BACK);
}

BOOST_FIXTURE_TEST_CASE(a_command_waits_for_a_participant_serving_it,
                        TableFixture) {
  std::string xid = Begin();
  Prepare(xid, 1, "ledger");
  Decide(xid, true).get();
  Sync();
  BOOST_TEST(sink.Take().empty());
  sink.Serve("ledger");
  table.HandlePage(
      "", 10,
      [](ProtocolDriver* driver, LiveTransaction* t, int64_t now, Effects* fx) {
        driver->OnAttached(t, {"ledger"}, now, fx);
      });
  BOOST_TEST(sink.Take().size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(nothing_goes_out_for_a_paused_transaction,
                        TableFixture) {
  sink.Serve("bank");
  std::string xid = Begin();
  Prepare(xid, 1);
  BOOST_REQUIRE(table.Apply(
      xid,
      [](LiveTransaction* t, int64_t now, Effects* fx) {
        t->record.set_paused(true);
        fx->persist = true;
        return absl::OkStatus();
      },
      nullptr));
  Decide(xid, true).get();
  Sync();
  BOOST_TEST(sink.Take().empty());
}

BOOST_FIXTURE_TEST_CASE(an_adopted_open_transaction_rolls_back_and_waits,
                        TableFixture) {
  sink.Serve("bank");
  std::string xid = Begin();
  Prepare(xid, 1);
  v1::Transaction loaded = Read(xid);
  TableFixture other;
  other.sink.Serve("bank");
  BOOST_REQUIRE(other.table.Adopt(loaded).ok());
  other.Sync();
  // Decided at once, sent only once resumed.
  BOOST_TEST(other.Read(xid).status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(other.sink.Take().empty());
  other.table.Resume(xid);
  other.Sync();
  std::vector<v1::BranchCommand> sent = other.sink.Take();
  BOOST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].action() == v1::BRANCH_ACTION_ROLLBACK);
}

// The first tick after a restart may resume a record before the rollback
// Adopt decided is on disk.
BOOST_FIXTURE_TEST_CASE(a_resume_before_the_adopted_rollback_is_durable,
                        TableFixture) {
  std::string xid = Begin();
  Prepare(xid, 1);
  v1::Transaction loaded = Read(xid);
  TableFixture other;
  other.sink.Serve("bank");
  other.store.Hold();
  BOOST_REQUIRE(other.table.Adopt(loaded).ok());
  BOOST_REQUIRE(other.store.WriteWaiting());
  other.table.Resume(xid);
  BOOST_TEST(other.sink.Take().empty());
  other.store.Release();
  other.Sync();
  std::vector<v1::BranchCommand> sent = other.sink.Take();
  BOOST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].action() == v1::BRANCH_ACTION_ROLLBACK);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
