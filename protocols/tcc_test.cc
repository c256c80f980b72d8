#include "protocols/tcc.h"

#include <boost/test/unit_test.hpp>

#include "protocols/transitions.h"

namespace baton::tcc {
namespace {

constexpr int64_t kNow = 5'000'000;

v1::Transaction OpenTcc() {
  v1::Transaction txn;
  txn.set_xid("0-2-1");
  txn.set_protocol(v1::PROTOCOL_TCC);
  txn.set_status(v1::GLOBAL_STATUS_BEGUN);
  txn.set_deadline_unix_ms(kNow + 10'000);
  return txn;
}

BOOST_AUTO_TEST_SUITE(tcc)

BOOST_AUTO_TEST_CASE(action_context_round_trips_through_the_branch) {
  v1::Transaction txn = OpenTcc();
  ActionValues values = {
      {"sku", "widget"}, {"units", "3"}, {"raw", std::string("\0\1", 2)}};
  auto id = RegisterBranch(&txn, "inventory", values, "inv-1", kNow);
  BOOST_REQUIRE(id.ok());
  BOOST_TEST(txn.branches(0).type() == v1::BRANCH_TYPE_TCC);
  auto decoded = DecodeActionContext(txn.branches(0).application_data());
  BOOST_REQUIRE(decoded.ok());
  BOOST_TEST((*decoded == values));
  BOOST_TEST(!DecodeActionContext("\xff\xff\xff").ok());
}

BOOST_AUTO_TEST_CASE(tcc_and_xa_branches_do_not_mix) {
  v1::Transaction txn = OpenTcc();
  auto xa = two_phase::RegisterBranch(&txn, {.resource = "db"}, kNow);
  BOOST_TEST(absl::IsFailedPrecondition(xa.status()));
  v1::Transaction two_phase_txn = OpenTcc();
  two_phase_txn.set_protocol(v1::PROTOCOL_TWO_PHASE);
  BOOST_TEST(absl::IsFailedPrecondition(
      RegisterBranch(&two_phase_txn, "inventory", {}, "", kNow).status()));
}

BOOST_AUTO_TEST_CASE(all_tries_succeeded_confirms_every_branch) {
  v1::Transaction txn = OpenTcc();
  for (const char* r : {"inventory", "payment"}) {
    BOOST_REQUIRE(RegisterBranch(&txn, r, {}, "", kNow).ok());
  }
  BOOST_REQUIRE(ReportTry(&txn, 1, true, "", kNow).ok());
  BOOST_REQUIRE(ReportTry(&txn, 2, true, "", kNow).ok());
  BOOST_REQUIRE(DecideConfirm(&txn, kNow).ok());
  auto commands = two_phase::PendingCommands(txn);
  BOOST_REQUIRE(commands.size() == 2u);
  for (auto& c : commands) BOOST_TEST(c.action == v1::BRANCH_ACTION_COMMIT);
}

BOOST_AUTO_TEST_CASE(a_failed_try_cancels_every_branch_including_itself) {
  v1::Transaction txn = OpenTcc();
  for (const char* r : {"payment", "inventory", "shipping"}) {
    BOOST_REQUIRE(RegisterBranch(&txn, r, {}, "", kNow).ok());
  }
  BOOST_REQUIRE(ReportTry(&txn, 1, true, "", kNow).ok());
  BOOST_REQUIRE(ReportTry(&txn, 2, false, "out of stock", kNow).ok());
  // Branch 3's try never reported: it may have run.
  BOOST_REQUIRE(DecideConfirm(&txn, kNow).ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(txn.reason().find("out of stock") != std::string::npos);
  auto commands = two_phase::PendingCommands(txn);
  BOOST_REQUIRE(commands.size() == 3u);
  for (auto& c : commands) BOOST_TEST(c.action == v1::BRANCH_ACTION_ROLLBACK);
}

BOOST_AUTO_TEST_CASE(a_timeout_cancels_a_hanging_try) {
  v1::Transaction txn = OpenTcc();
  BOOST_REQUIRE(RegisterBranch(&txn, "inventory", {}, "", kNow).ok());
  BOOST_TEST(two_phase::ExpireIfPastDeadline(&txn, kNow + 10'000));
  BOOST_TEST(txn.reason() == "timeout");
  BOOST_TEST(two_phase::PendingCommands(txn).size() == 1u);
  // The late try's report is refused.
  BOOST_TEST(absl::IsFailedPrecondition(ReportTry(&txn, 1, true, "", kNow)));
}

BOOST_AUTO_TEST_CASE(confirm_do_not_retry_needs_attention_without_looping) {
  v1::Transaction txn = OpenTcc();
  BOOST_REQUIRE(RegisterBranch(&txn, "payment", {}, "", kNow).ok());
  BOOST_REQUIRE(ReportTry(&txn, 1, true, "", kNow).ok());
  BOOST_REQUIRE(DecideConfirm(&txn, kNow).ok());
  BOOST_REQUIRE(two_phase::ApplyCommandResult(&txn, 1, v1::BRANCH_ACTION_COMMIT,
                                              v1::COMMAND_OUTCOME_FAILED,
                                              "card closed", kNow, 100)
                    .ok());
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(txn.reason().find("card closed") != std::string::npos);
  BOOST_TEST(two_phase::PendingCommands(txn).empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton::tcc
