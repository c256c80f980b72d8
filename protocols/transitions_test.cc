#define BOOST_TEST_MODULE protocols
#include "protocols/transitions.h"

#include <boost/test/unit_test.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace baton {
namespace {

using G = v1::GlobalStatus;
using B = v1::BranchStatus;
using S = v1::StepStatus;

// Every test in this module runs its protocol paths under this: a move the
// graphs refuse fails the test that made it.
void FailTheTest(std::string_view xid, std::string_view refused) {
  BOOST_ERROR("illegal status move in " << xid << ": " << refused);
}
struct RefusedMovesFail {
  RefusedMovesFail() { SetIllegalMoveObserver(&FailTheTest); }
};
BOOST_TEST_GLOBAL_FIXTURE(RefusedMovesFail);

BOOST_AUTO_TEST_SUITE(transitions)

// The complete list of legal global moves; every other pair must be refused.
BOOST_AUTO_TEST_CASE(global_graph_is_exactly_the_documented_one) {
  const std::set<std::pair<G, G>> legal = {
      {v1::GLOBAL_STATUS_BEGUN, v1::GLOBAL_STATUS_COMMITTING},
      {v1::GLOBAL_STATUS_BEGUN, v1::GLOBAL_STATUS_COMMITTED},
      {v1::GLOBAL_STATUS_BEGUN, v1::GLOBAL_STATUS_ROLLING_BACK},
      {v1::GLOBAL_STATUS_BEGUN, v1::GLOBAL_STATUS_ROLLED_BACK},
      {v1::GLOBAL_STATUS_COMMITTING, v1::GLOBAL_STATUS_COMMITTED},
      {v1::GLOBAL_STATUS_COMMITTING, v1::GLOBAL_STATUS_COMMIT_STUCK},
      {v1::GLOBAL_STATUS_COMMIT_STUCK, v1::GLOBAL_STATUS_COMMITTING},
      {v1::GLOBAL_STATUS_COMMIT_STUCK, v1::GLOBAL_STATUS_COMMITTED},
      {v1::GLOBAL_STATUS_ROLLING_BACK, v1::GLOBAL_STATUS_ROLLED_BACK},
      {v1::GLOBAL_STATUS_ROLLING_BACK, v1::GLOBAL_STATUS_ROLLBACK_STUCK},
      {v1::GLOBAL_STATUS_ROLLBACK_STUCK, v1::GLOBAL_STATUS_ROLLING_BACK},
      {v1::GLOBAL_STATUS_ROLLBACK_STUCK, v1::GLOBAL_STATUS_ROLLED_BACK},
  };
  for (int from = 0; from <= 7; ++from) {
    for (int to = 0; to <= 7; ++to) {
      G f = static_cast<G>(from), t = static_cast<G>(to);
      BOOST_TEST(IsLegalGlobalTransition(f, t) == legal.contains({f, t}),
                 "global " << from << " -> " << to);
    }
  }
}

BOOST_AUTO_TEST_CASE(branch_graph_is_exactly_the_documented_one) {
  const std::set<std::pair<B, B>> legal = {
      {v1::BRANCH_STATUS_REGISTERED, v1::BRANCH_STATUS_PREPARED},
      {v1::BRANCH_STATUS_REGISTERED, v1::BRANCH_STATUS_PREPARE_FAILED},
      {v1::BRANCH_STATUS_REGISTERED, v1::BRANCH_STATUS_ROLLED_BACK},
      {v1::BRANCH_STATUS_REGISTERED, v1::BRANCH_STATUS_ROLLBACK_FAILED},
      {v1::BRANCH_STATUS_PREPARED, v1::BRANCH_STATUS_COMMITTED},
      {v1::BRANCH_STATUS_PREPARED, v1::BRANCH_STATUS_COMMIT_FAILED},
      {v1::BRANCH_STATUS_PREPARED, v1::BRANCH_STATUS_ROLLED_BACK},
      {v1::BRANCH_STATUS_PREPARED, v1::BRANCH_STATUS_ROLLBACK_FAILED},
      {v1::BRANCH_STATUS_PREPARE_FAILED, v1::BRANCH_STATUS_ROLLED_BACK},
      {v1::BRANCH_STATUS_PREPARE_FAILED, v1::BRANCH_STATUS_ROLLBACK_FAILED},
      {v1::BRANCH_STATUS_COMMIT_FAILED, v1::BRANCH_STATUS_COMMITTED},
      {v1::BRANCH_STATUS_COMMIT_FAILED, v1::BRANCH_STATUS_PREPARED},
      {v1::BRANCH_STATUS_ROLLBACK_FAILED, v1::BRANCH_STATUS_ROLLED_BACK},
      {v1::BRANCH_STATUS_ROLLBACK_FAILED, v1::BRANCH_STATUS_PREPARED},
  };
  for (int from = 0; from <= 7; ++from) {
    for (int to = 0; to <= 7; ++to) {
      B f = static_cast<B>(from), t = static_cast<B>(to);
      BOOST_TEST(IsLegalBranchTransition(f, t) == legal.contains({f, t}),
                 "branch " << from << " -> " << to);
    }
  }
}

BOOST_AUTO_TEST_CASE(step_graph_is_exactly_the_documented_one) {
  const std::set<std::pair<S, S>> legal = {
      {v1::STEP_STATUS_UNSPECIFIED, v1::STEP_STATUS_PENDING},
      {v1::STEP_STATUS_PENDING, v1::STEP_STATUS_RUNNING},
      {v1::STEP_STATUS_PENDING, v1::STEP_STATUS_COMPENSATION_PENDING},
      {v1::STEP_STATUS_PENDING, v1::STEP_STATUS_SKIPPED},
      {v1::STEP_STATUS_PENDING, v1::STEP_STATUS_SUCCEEDED},
      {v1::STEP_STATUS_RUNNING, v1::STEP_STATUS_SUCCEEDED},
      {v1::STEP_STATUS_RUNNING, v1::STEP_STATUS_PENDING},
      {v1::STEP_STATUS_RUNNING, v1::STEP_STATUS_FAILED},
      {v1::STEP_STATUS_RUNNING, v1::STEP_STATUS_COMPENSATION_PENDING},
      {v1::STEP_STATUS_SUCCEEDED, v1::STEP_STATUS_COMPENSATION_PENDING},
      {v1::STEP_STATUS_FAILED, v1::STEP_STATUS_PENDING},
      {v1::STEP_STATUS_FAILED, v1::STEP_STATUS_SUCCEEDED},
      {v1::STEP_STATUS_COMPENSATION_PENDING, v1::STEP_STATUS_COMPENSATING},
      {v1::STEP_STATUS_COMPENSATION_PENDING, v1::STEP_STATUS_COMPENSATED},
      {v1::STEP_STATUS_COMPENSATING, v1::STEP_STATUS_COMPENSATED},
      {v1::STEP_STATUS_COMPENSATING, v1::STEP_STATUS_COMPENSATION_PENDING},
      {v1::STEP_STATUS_COMPENSATING, v1::STEP_STATUS_COMPENSATION_FAILED},
      {v1::STEP_STATUS_COMPENSATION_FAILED,
       v1::STEP_STATUS_COMPENSATION_PENDING},
      {v1::STEP_STATUS_COMPENSATION_FAILED, v1::STEP_STATUS_COMPENSATED},
  };
  for (int from = 0; from <= 9; ++from) {
    for (int to = 0; to <= 9; ++to) {
      S f = static_cast<S>(from), t = static_cast<S>(to);
      BOOST_TEST(IsLegalStepTransition(f, t) == legal.contains({f, t}),
                 "step " << from << " -> " << to);
    }
  }
}

#ifdef NDEBUG
// A release build keeps the record as it was and tells the observer (a
// debug build aborts instead).
std::string last_refused;
void Remember(std::string_view xid, std::string_view refused) {
  last_refused = std::string(xid) + ": " + std::string(refused);
}

BOOST_AUTO_TEST_CASE(an_illegal_move_is_reported_and_changes_nothing) {
  SetIllegalMoveObserver(&Remember);
  v1::Transaction txn;
  txn.set_xid("0-1-9");
  txn.set_status(v1::GLOBAL_STATUS_ROLLED_BACK);
  MoveGlobalStatus(&txn, v1::GLOBAL_STATUS_COMMITTING);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(last_refused ==
             "0-1-9: transaction 0-1-9 is rolled back and cannot become "
             "committing");
  v1::StepProgress step;
  step.set_status(v1::STEP_STATUS_COMPENSATED);
  MoveStepStatus("0-1-9", &step, v1::STEP_STATUS_RUNNING);
  BOOST_TEST(step.status() == v1::STEP_STATUS_COMPENSATED);
  BOOST_TEST(last_refused ==
             "0-1-9: a step is compensated and cannot become running");
  SetIllegalMoveObserver(&FailTheTest);
}
#endif

BOOST_AUTO_TEST_CASE(setters_refuse_illegal_moves_and_keep_the_record) {
  v1::Transaction txn;
  txn.set_xid("0-1-1");
  txn.set_status(v1::GLOBAL_STATUS_COMMITTED);
  absl::Status s = SetGlobalStatus(&txn, v1::GLOBAL_STATUS_ROLLING_BACK);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(std::string(s.message()).find("0-1-1") != std::string::npos);
  BOOST_TEST(txn.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(SetGlobalStatus(&txn, v1::GLOBAL_STATUS_COMMITTED).ok());

  v1::Branch branch;
  branch.set_status(v1::BRANCH_STATUS_ROLLED_BACK);
  BOOST_TEST(absl::IsFailedPrecondition(
      SetBranchStatus(&branch, v1::BRANCH_STATUS_COMMITTED)));
  BOOST_TEST(branch.status() == v1::BRANCH_STATUS_ROLLED_BACK);
}

BOOST_AUTO_TEST_CASE(classification) {
  BOOST_TEST(IsTerminal(v1::GLOBAL_STATUS_COMMITTED));
  BOOST_TEST(IsTerminal(v1::GLOBAL_STATUS_ROLLED_BACK));
  BOOST_TEST(!IsTerminal(v1::GLOBAL_STATUS_COMMIT_STUCK));
  BOOST_TEST(NeedsAttention(v1::GLOBAL_STATUS_ROLLBACK_STUCK));
  BOOST_TEST(IsCommitSide(v1::GLOBAL_STATUS_COMMIT_STUCK));
  BOOST_TEST(IsRollbackSide(v1::GLOBAL_STATUS_ROLLING_BACK));
  BOOST_TEST(!IsCommitSide(v1::GLOBAL_STATUS_BEGUN));
  BOOST_TEST(!IsRollbackSide(v1::GLOBAL_STATUS_BEGUN));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
