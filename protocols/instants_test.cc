#include "protocols/instants.h"

#include <boost/test/unit_test.hpp>

#include "baton/v1/admin_service.pb.h"

namespace baton::instants {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;
constexpr int64_t kHour = 60 * 60 * 1000;
const CarryOverLimits kLimits{
    .grace_ms = 5000, .retry_max_ms = 60'000, .retry_window_ms = 600'000};

v1::Transaction Open(int64_t begun, uint32_t timeout_ms) {
  v1::Transaction txn;
  txn.set_xid("0-1-1");
  txn.set_status(v1::GLOBAL_STATUS_BEGUN);
  txn.set_begun_unix_ms(begun);
  txn.set_deadline_unix_ms(begun + timeout_ms);
  txn.set_timeout_ms(timeout_ms);
  return txn;
}

v1::Transaction Committing(int64_t decided, int64_t next_retry) {
  v1::Transaction txn = Open(decided - 10, 60'000);
  txn.set_status(v1::GLOBAL_STATUS_COMMITTING);
  txn.set_decided_unix_ms(decided);
  v1::Branch* b = txn.add_branches();
  b->set_branch_id(1);
  b->set_registered_unix_ms(decided - 5);
  b->set_updated_unix_ms(decided);
  b->set_next_retry_unix_ms(next_retry);
  return txn;
}

BOOST_AUTO_TEST_SUITE(instants)

BOOST_AUTO_TEST_CASE(shift_moves_every_set_instant_nested_ones_too) {
  v1::Transaction txn = Committing(kNow, kNow + 100);
  txn.add_audit()->set_unix_ms(kNow + 1);
  txn.mutable_saga()->add_steps()->set_timeout_unix_ms(kNow + 2);
  Shift(&txn, kHour);
  BOOST_TEST(txn.begun_unix_ms() == kNow - 10 + kHour);
  BOOST_TEST(txn.decided_unix_ms() == kNow + kHour);
  BOOST_TEST(txn.finished_unix_ms() == 0);  // Unset stays unset.
  BOOST_TEST(txn.branches(0).next_retry_unix_ms() == kNow + 100 + kHour);
  BOOST_TEST(txn.branches(0).registered_unix_ms() == kNow - 5 + kHour);
  BOOST_TEST(txn.audit(0).unix_ms() == kNow + 1 + kHour);
  BOOST_TEST(txn.saga().steps(0).timeout_unix_ms() == kNow + 2 + kHour);
  BOOST_TEST(txn.timeout_ms() == 60'000u);  // A duration, not an instant.

  v1::GetStatsResponse stats;
  stats.set_oldest_unfinished_begun_unix_ms(kNow);
  stats.set_live_transactions(7);
  Shift(&stats, -kHour);
  BOOST_TEST(stats.oldest_unfinished_begun_unix_ms() == kNow - kHour);
  BOOST_TEST(stats.live_transactions() == 7u);
}

BOOST_AUTO_TEST_CASE(a_deadline_in_time_is_kept) {
  v1::Transaction txn = Open(kNow - 1000, 60'000);
  BOOST_TEST(!CarryOver(&txn, kNow, kLimits));
  BOOST_TEST(txn.deadline_unix_ms() == kNow + 59'000);
}

BOOST_AUTO_TEST_CASE(a_deadline_far_ahead_comes_back_to_its_full_timeout) {
  // Stored by a coordinator whose clock was two hours ahead.
  v1::Transaction txn = Open(kNow + 2 * kHour, 60'000);
  BOOST_TEST(CarryOver(&txn, kNow, kLimits));
  BOOST_TEST(txn.deadline_unix_ms() == kNow + 60'000);
  BOOST_TEST(txn.begun_unix_ms() == kNow);  // It did not begin later.
}

BOOST_AUTO_TEST_CASE(
    a_deadline_found_past_gets_the_grace_not_an_instant_timeout) {
  v1::Transaction txn = Open(kNow - 2 * kHour, 60'000);
  BOOST_TEST(CarryOver(&txn, kNow, kLimits));
  BOOST_TEST(txn.deadline_unix_ms() == kNow + 5000);
  // A timeout shorter than the grace is all it gets.
  v1::Transaction quick = Open(kNow - 2 * kHour, 2000);
  CarryOver(&quick, kNow, kLimits);
  BOOST_TEST(quick.deadline_unix_ms() == kNow + 2000);
}

BOOST_AUTO_TEST_CASE(carrying_over_twice_changes_nothing_more) {
  v1::Transaction txn = Open(kNow - 2 * kHour, 60'000);
  CarryOver(&txn, kNow, kLimits);
  v1::Transaction again = txn;
  BOOST_TEST(!CarryOver(&again, kNow, kLimits));
  BOOST_TEST(again.SerializeAsString() == txn.SerializeAsString());
  // The timeout it was begun with still bounds a later restart.
  CarryOver(&again, kNow + kHour, kLimits);
  BOOST_TEST(again.deadline_unix_ms() == kNow + kHour + 5000);
}

BOOST_AUTO_TEST_CASE(
    records_without_a_stored_timeout_use_deadline_minus_begun) {
  v1::Transaction txn = Open(kNow + kHour, 30'000);
  txn.clear_timeout_ms();
  CarryOver(&txn, kNow, kLimits);
  BOOST_TEST(txn.deadline_unix_ms() == kNow + 30'000);
}

BOOST_AUTO_TEST_CASE(a_retry_far_ahead_comes_within_the_longest_backoff) {
  v1::Transaction txn = Committing(kNow - 1000, kNow + 2 * kHour);
  CarryOver(&txn, kNow, kLimits);
  BOOST_TEST(txn.branches(0).next_retry_unix_ms() == kNow + 60'000);
  // One already due stays due.
  v1::Transaction due = Committing(kNow - 1000, kNow - 500);
  CarryOver(&due, kNow, kLimits);
  BOOST_TEST(due.branches(0).next_retry_unix_ms() == kNow - 500);
}

BOOST_AUTO_TEST_CASE(the_retry_window_found_spent_leaves_the_grace) {
  v1::Transaction txn = Committing(kNow - 2 * kHour, 0);
  CarryOver(&txn, kNow, kLimits);
  int64_t from =
      std::max(txn.decided_unix_ms(), txn.retry_window_start_unix_ms());
  BOOST_TEST(from + kLimits.retry_window_ms == kNow + 5000);
  BOOST_TEST(txn.decided_unix_ms() == kNow - 2 * kHour);  // History stays.
}

BOOST_AUTO_TEST_CASE(a_window_in_time_is_left_alone) {
  v1::Transaction txn = Committing(kNow - 60'000, kNow + 500);
  txn.set_retry_window_start_unix_ms(kNow - 1000);  // An operator's retry.
  BOOST_TEST(!CarryOver(&txn, kNow, kLimits));
  BOOST_TEST(txn.retry_window_start_unix_ms() == kNow - 1000);
  // Restarted from an operator's retry long ago: the later start counts.
  txn.set_retry_window_start_unix_ms(kNow - kHour);
  txn.set_decided_unix_ms(kNow - 2 * kHour);
  BOOST_TEST(CarryOver(&txn, kNow, kLimits));
  BOOST_TEST(txn.retry_window_start_unix_ms() ==
             kNow - kLimits.retry_window_ms + kLimits.grace_ms);
}

BOOST_AUTO_TEST_CASE(a_decision_in_the_future_is_brought_back_to_now) {
  v1::Transaction txn = Committing(kNow + 2 * kHour, 0);
  CarryOver(&txn, kNow, kLimits);
  BOOST_TEST(txn.decided_unix_ms() == kNow);
  BOOST_TEST(txn.branches(0).updated_unix_ms() == kNow);
  BOOST_TEST(txn.branches(0).registered_unix_ms() == kNow);
}

BOOST_AUTO_TEST_CASE(saga_steps_are_held_to_their_own_timeout_and_backoff) {
  v1::Transaction txn = Open(kNow, 60'000);
  txn.set_protocol(v1::PROTOCOL_SAGA);
  v1::SagaStep* def = txn.mutable_saga()->mutable_definition()->add_steps();
  def->set_timeout_ms(10'000);
  def->mutable_retry()->set_max_backoff_ms(30'000);
  *txn.mutable_saga()->mutable_definition()->add_steps() = *def;
  v1::StepProgress* running = txn.mutable_saga()->add_steps();
  running->set_status(v1::STEP_STATUS_RUNNING);
  running->set_timeout_unix_ms(kNow - kHour);
  running->set_dispatched_unix_ms(kNow + kHour);
  v1::StepProgress* waiting = txn.mutable_saga()->add_steps();
  waiting->set_status(v1::STEP_STATUS_PENDING);
  waiting->set_next_attempt_unix_ms(kNow + kHour);
  CarryOver(&txn, kNow, kLimits);
  BOOST_TEST(txn.saga().steps(0).timeout_unix_ms() == kNow + 5000);
  BOOST_TEST(txn.saga().steps(0).dispatched_unix_ms() == kNow);
  BOOST_TEST(txn.saga().steps(1).next_attempt_unix_ms() == kNow + 30'000);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton::instants
