#include "coordinator/saga_driver.h"

#include <boost/test/unit_test.hpp>
#include <thread>

#include "coordinator/table_test_fixture.h"
#include "protocols/saga.h"

namespace baton {
namespace {

using testing::Answer;
using testing::TableFixture;

// Begins a two-step chain: "book" on `first`, then "pay" on `second`.
// Asserts nothing, so that a test may call it off the main thread (Boost.Test
// is not thread-safe).
absl::StatusOr<std::string> BeginSaga(TableFixture& f, const std::string& first,
                                      const std::string& second) {
  v1::SagaDefinition definition;
  v1::SagaStep* book = definition.add_steps();
  book->set_name("book");
  book->mutable_action()->set_resource(first);
  book->mutable_compensation()->set_resource(first);
  v1::SagaStep* pay = definition.add_steps();
  pay->set_name("pay");
  pay->mutable_action()->set_resource(second);
  pay->mutable_compensation()->set_resource(second);
  pay->add_depends_on("book");
  Answer a;
  f.table.Create(
      "", false,
      [&](v1::Transaction* r, int64_t now) {
        r->set_protocol(v1::PROTOCOL_SAGA);
        r->set_status(v1::GLOBAL_STATUS_BEGUN);
        r->set_begun_unix_ms(f.timeline.Now());
        r->set_deadline_unix_ms(f.timeline.Now() + 60'000);
        return saga::Start(r, definition, f.timeline.Now());
      },
      nullptr, a.done());
  if (a.future.wait_for(std::chrono::seconds(10)) !=
      std::future_status::ready) {
    return absl::DeadlineExceededError("no answer to the saga's Create");
  }
  auto [s, r] = a.future.get();
  if (!s.ok()) return s;
  return r.xid();
}

std::string StartSaga(TableFixture& f, const std::string& first,
                      const std::string& second) {
  absl::StatusOr<std::string> xid = BeginSaga(f, first, second);
  BOOST_REQUIRE_MESSAGE(xid.ok(), xid.status().ToString());
  return *xid;
}

BOOST_AUTO_TEST_SUITE(saga_driver)

BOOST_FIXTURE_TEST_CASE(a_step_goes_out_only_once_its_dispatch_is_durable,
                        TableFixture) {
  sink.Serve("hotel");
  sink.Serve("bank");
  store.Hold();
  absl::StatusOr<std::string> begun;
  std::thread start([&] { begun = BeginSaga(*this, "hotel", "bank"); });
  BOOST_REQUIRE(store.WriteWaiting());
  BOOST_TEST(sink.Take().empty());
  store.Release();
  start.join();
  BOOST_REQUIRE_MESSAGE(begun.ok(), begun.status().ToString());
  Sync();
  std::vector<v1::BranchCommand> sent = sink.Take();
  BOOST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].resource() == "hotel");
  BOOST_TEST(sent[0].type() == v1::BRANCH_TYPE_SAGA);
  Result(sent[0], v1::COMMAND_OUTCOME_DONE);
  Sync();
  sent = sink.Take();
  BOOST_REQUIRE(sent.size() == 1u);
  BOOST_TEST(sent[0].resource() == "bank");
}

BOOST_FIXTURE_TEST_CASE(a_step_without_a_participant_spends_no_attempt,
                        TableFixture) {
  std::string xid = StartSaga(*this, "hotel", "bank");
  Sync();
  BOOST_TEST(sink.Take().empty());
  BOOST_TEST(Read(xid).saga().steps(0).attempts() == 0u);
  sink.Serve("hotel");
  table.HandlePage(
      "", 10,
      [](ProtocolDriver* driver, LiveTransaction* t, int64_t now, Effects* fx) {
        driver->OnAttached(t, {"hotel"}, now, fx);
      });
  Sync();
  BOOST_TEST(sink.Take().size() == 1u);
  BOOST_TEST(Read(xid).saga().steps(0).attempts() == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_failed_step_compensates_what_ran_last_first,
                        TableFixture) {
  sink.Serve("hotel");
  sink.Serve("bank");
  std::string xid = StartSaga(*this, "hotel", "bank");
  Sync();
  Result(sink.Take().at(0), v1::COMMAND_OUTCOME_DONE);
  Sync();
  Result(sink.Take().at(0), v1::COMMAND_OUTCOME_FAILED);
  Sync();
  // In reverse order, the failed step included: it may have done part of
  // its work.
  std::vector<std::string> compensated;
  for (int i = 0; i < 2; ++i) {
    std::vector<v1::BranchCommand> sent = sink.Take();
    BOOST_REQUIRE(sent.size() == 1u);
    BOOST_TEST(sent[0].action() == v1::BRANCH_ACTION_ROLLBACK);
    compensated.push_back(sent[0].resource());
    Result(sent[0], v1::COMMAND_OUTCOME_DONE);
    Sync();
  }
  BOOST_TEST(compensated == std::vector<std::string>({"bank", "hotel"}),
             boost::test_tools::per_element());
  BOOST_TEST(table.LiveCount() == 0u);
  v1::Transaction stored;
  BOOST_REQUIRE(store.Get(xid, &stored).ok());
  BOOST_TEST(stored.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
}

BOOST_FIXTURE_TEST_CASE(a_saga_refuses_what_only_two_phase_does, TableFixture) {
  std::string xid = StartSaga(*this, "hotel", "bank");
  v1::Transaction r = Read(xid);
  BOOST_TEST(absl::IsFailedPrecondition(saga.Decide(&r, true, "", 0)));
  BOOST_TEST(absl::IsFailedPrecondition(
      saga.RegisterBranch(&r, {.resource = "x"}, 0).status()));
  BOOST_TEST(saga.DurableKey(r).empty());
  r.set_request_id("k");
  BOOST_TEST(saga.DurableKey(r) == std::string(kSagaRequestPrefix) + "k");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
