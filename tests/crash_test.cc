// One crash test per named fault point (docs/FAILPOINTS.md): a real process
// dies by SIGKILL at that exact instant in a bank transfer, is restarted, and
// the transfer must end all-committed or all-rolled-back as the protocol
// says, with nothing applied twice and the money conserved.
#define BOOST_TEST_MODULE crash
#include <signal.h>

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <ostream>

#include "tests/support/bank_cluster.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

enum class Victim { kCoordinator, kParticipant };

struct Scenario {
  const char* failpoint;  // BATON_FAILPOINTS value.
  Victim victim;
  bool caller_rolls_back;  // bank_client --rollback instead of commit.
  v1::GlobalStatus outcome;
};

std::ostream& operator<<(std::ostream& os, const Scenario& s) {
  return os << s.failpoint;
}

// In a lone transfer the coordinator's synced writes are, in order: the
// epoch at start (1), Begin (2), register and report for each leg (3-6),
// then the decision (7).
const Scenario kScenarios[] = {
    {"before_commit_decision=crash", Victim::kCoordinator, false,
     v1::GLOBAL_STATUS_ROLLED_BACK},
    {"after_commit_decision=crash", Victim::kCoordinator, false,
     v1::GLOBAL_STATUS_COMMITTED},
    {"before_rollback_decision=crash", Victim::kCoordinator, true,
     v1::GLOBAL_STATUS_ROLLED_BACK},
    {"after_rollback_decision=crash", Victim::kCoordinator, true,
     v1::GLOBAL_STATUS_ROLLED_BACK},
    {"before_branch_command=2:crash", Victim::kCoordinator, false,
     v1::GLOBAL_STATUS_COMMITTED},
    {"branch_done_unwritten=crash", Victim::kCoordinator, false,
     v1::GLOBAL_STATUS_COMMITTED},
    {"group_commit_before_sync=7:crash", Victim::kCoordinator, false,
     v1::GLOBAL_STATUS_ROLLED_BACK},
    {"group_commit_after_sync=7:crash", Victim::kCoordinator, false,
     v1::GLOBAL_STATUS_COMMITTED},
    {"participant_after_prepare=crash", Victim::kParticipant, false,
     v1::GLOBAL_STATUS_ROLLED_BACK},
    {"participant_before_commit=crash", Victim::kParticipant, false,
     v1::GLOBAL_STATUS_COMMITTED},
    {"participant_after_commit=crash", Victim::kParticipant, false,
     v1::GLOBAL_STATUS_COMMITTED},
    {"participant_before_rollback=crash", Victim::kParticipant, true,
     v1::GLOBAL_STATUS_ROLLED_BACK},
    {"participant_after_rollback=crash", Victim::kParticipant, true,
     v1::GLOBAL_STATUS_ROLLED_BACK},
};

// `store_flags` pick batond's store on every start.
void CrashAndRestart(const Scenario& scenario,
                     const std::vector<std::string>& store_flags) {
  std::vector<std::string> env = {std::string("BATON_FAILPOINTS=") +
                                  scenario.failpoint};
  bool coordinator_dies = scenario.victim == Victim::kCoordinator;
  BankCluster cluster;
  cluster.StartCoordinator(coordinator_dies ? env : std::vector<std::string>{},
                           store_flags);
  cluster.StartBank("bank-a", {"alice=100"},
                    coordinator_dies ? std::vector<std::string>{} : env);
  cluster.StartBank("bank-b", {"bob=100"});

  std::vector<std::string> flags = {"--no-wait"};
  if (scenario.caller_rolls_back) flags.push_back("--rollback");
  auto t = cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30, flags);
  BOOST_TEST_INFO("transfer said: " << t.output);
  BOOST_REQUIRE(!t.xid.empty());

  ChildProcess& victim =
      coordinator_dies ? cluster.coordinator() : cluster.bank("bank-a");
  BOOST_REQUIRE_MESSAGE(victim.WaitExit(30s) == 128 + SIGKILL,
                        victim.name() << " did not crash\n"
                                      << cluster.Logs());
  if (coordinator_dies) {
    cluster.StartCoordinator({}, store_flags);
  } else {
    cluster.StartBank("bank-a", {});
  }

  BOOST_TEST(cluster.WaitForStatus(t.xid, scenario.outcome, 30s),
             "xid " << t.xid << " never became "
                    << v1::GlobalStatus_Name(scenario.outcome) << "\n"
                    << cluster.Logs());
  bool committed = scenario.outcome == v1::GLOBAL_STATUS_COMMITTED;
  BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", committed ? 70 : 100),
             cluster.Logs());
  BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", committed ? 130 : 100),
             cluster.Logs());
  auto txn = cluster.GetTransaction(t.xid);
  BOOST_REQUIRE(txn.ok());
  for (const v1::Branch& b : txn->branches()) {
    BOOST_TEST(b.status() == (committed ? v1::BRANCH_STATUS_COMMITTED
                                        : v1::BRANCH_STATUS_ROLLED_BACK));
  }
}

BOOST_DATA_TEST_CASE(crash_and_restart_at_fault_point,
                     boost::unit_test::data::make(kScenarios), scenario) {
  CrashAndRestart(scenario, {});
}

// The coordinator's fault points again, its store in PostgreSQL: the
// database survives batond, and the restarted batond resumes from it.
std::vector<Scenario> CoordinatorScenarios() {
  std::vector<Scenario> out;
  for (const Scenario& s : kScenarios) {
    if (s.victim == Victim::kCoordinator) out.push_back(s);
  }
  return out;
}

BOOST_DATA_TEST_CASE(crash_and_restart_with_the_postgres_store,
                     boost::unit_test::data::make(CoordinatorScenarios()),
                     scenario) {
  PgCluster postgres;
  postgres.CreateDatabase("baton");
  CrashAndRestart(scenario, {"--store", "postgres", "--postgres",
                             postgres.ConnInfo("baton")});
}

}  // namespace
}  // namespace baton::testing
