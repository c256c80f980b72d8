// 2PC against a real PostgreSQL server: batond, two bank services in
// --postgres mode (each with its own database on one throwaway server) and
// bank_client, all real processes on 127.0.0.1. Every scenario checks the
// balances in the databases themselves and that pg_prepared_xacts is empty
// at the end, so no prepared transaction is left holding locks.
#define BOOST_TEST_MODULE postgres_2pc
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <boost/test/unit_test.hpp>

#include "bank.grpc.pb.h"
#include "baton/propagation.h"
#include "tests/support/bank_cluster.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

PgCluster* server = nullptr;

struct ServerFixture {
  ServerFixture() { server = new PgCluster(); }
  ~ServerFixture() { delete server; }
};
BOOST_TEST_GLOBAL_FIXTURE(ServerFixture);

std::string NewDatabase() {
  static std::atomic<int> next{0};
  std::string db = "bank_" + std::to_string(++next);
  server->CreateDatabase(db);
  return db;
}

// batond plus bank-a (alice, 100) and bank-b (bob, 100) on PostgreSQL.
struct PgBanks {
  explicit PgBanks(const std::vector<std::string>& coordinator_env = {},
                   const std::vector<std::string>& bank_a_env = {}) {
    db["bank-a"] = NewDatabase();
    db["bank-b"] = NewDatabase();
    cluster.StartCoordinator(coordinator_env);
    StartBank("bank-a", {"alice=100"}, bank_a_env);
    StartBank("bank-b", {"bob=100"});
  }

  void StartBank(const std::string& resource,
                 const std::vector<std::string>& seed,
                 const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"--resource", resource, "--postgres",
                                     server->ConnInfo(db[resource])};
    for (const std::string& s : seed) {
      args.push_back("--seed");
      args.push_back(s);
    }
    cluster.StartService(resource, "bank_service", args, env);
  }

  // The balance as the database has it.
  int64_t Stored(const std::string& resource, const std::string& account) {
    auto rows = server->Query(
        db[resource],
        "SELECT balance FROM accounts WHERE id = '" + account + "'");
    BOOST_REQUIRE_MESSAGE(rows.ok() && rows->size() == 1, rows.status());
    return std::stoll((*rows)[0][0]);
  }

  // True if the account's row can be locked now: no prepared transaction
  // holds it.
  bool RowIsFree(const std::string& resource, const std::string& account) {
    return server
        ->Query(db[resource],
                "DO $$ BEGIN SET LOCAL lock_timeout = '200ms'; UPDATE "
                "accounts SET balance = balance WHERE id = '" +
                    account + "'; END $$")
        .ok();
  }

  std::vector<std::string> Prepared(const std::string& resource) {
    return server->PreparedGids(db[resource]);
  }

  void ExpectSettled(int64_t alice, int64_t bob) {
    BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", alice),
               "alice did not settle at " << alice << "\n"
                                          << cluster.Logs());
    BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", bob),
               "bob did not settle at " << bob << "\n"
                                        << cluster.Logs());
    BOOST_TEST(Stored("bank-a", "alice") == alice);
    BOOST_TEST(Stored("bank-b", "bob") == bob);
    BOOST_TEST(Prepared("bank-a").empty());
    BOOST_TEST(Prepared("bank-b").empty());
    BOOST_TEST(RowIsFree("bank-a", "alice"));
    BOOST_TEST(RowIsFree("bank-b", "bob"));
  }

  void ExpectStatus(const std::string& xid, v1::GlobalStatus status) {
    BOOST_TEST(cluster.WaitForStatus(xid, status, 30s),
               "xid " << xid << " never became "
                      << v1::GlobalStatus_Name(status) << "\n"
                      << cluster.Logs());
  }

  // Starts alice -> bob (30) without waiting, and waits for `victim` to
  // die at its fail point. Returns the xid.
  std::string TransferUntilCrash(ChildProcess& victim) {
    auto t =
        cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30, {"--no-wait"});
    BOOST_REQUIRE(!t.xid.empty());
    BOOST_REQUIRE_MESSAGE(victim.WaitExit(30s) == 128 + SIGKILL,
                          "no crash at the fail point\n"
                              << cluster.Logs());
    return t.xid;
  }

  // Calls Debit or Credit on a bank inside `xid`.
  grpc::Status Move(const std::string& resource, const std::string& account,
                    int64_t amount, bool debit, const std::string& xid) {
    auto stub = samples::bank::Bank::NewStub(grpc::CreateChannel(
        cluster.BankAddress(resource), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    InjectXid(&context, xid);
    samples::bank::MoveRequest request;
    request.set_account(account);
    request.set_amount(amount);
    samples::bank::MoveReply reply;
    return debit ? stub->Debit(&context, request, &reply)
                 : stub->Credit(&context, request, &reply);
  }

  std::map<std::string, std::string> db;
  BankCluster cluster;
};

BOOST_AUTO_TEST_CASE(commit_moves_the_money) {
  PgBanks banks;
  auto t = banks.cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30);
  BOOST_TEST(t.exit_code == 0, t.output << banks.cluster.Logs());
  banks.ExpectStatus(t.xid, v1::GLOBAL_STATUS_COMMITTED);
  banks.ExpectSettled(70, 130);
  // Each committed branch left its row in baton_branches.
  auto rows =
      server->Query(banks.db["bank-a"], "SELECT xid FROM baton_branches");
  BOOST_REQUIRE(rows.ok());
  BOOST_TEST(rows->size() == 1);
  BOOST_TEST((*rows)[0][0] == t.xid);
}

BOOST_AUTO_TEST_CASE(rollback_leaves_the_balances_as_they_were) {
  PgBanks banks;
  auto t = banks.cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30,
                                  {"--rollback"});
  BOOST_TEST(t.exit_code == 2, t.output);
  banks.ExpectStatus(t.xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  banks.ExpectSettled(100, 100);
  auto rows = server->Query(banks.db["bank-a"], "SELECT 1 FROM baton_branches");
  BOOST_REQUIRE(rows.ok());
  BOOST_TEST(rows->empty());
}

// The credit prepares first; the debit then violates CHECK (balance >= 0)
// inside its branch, so its PREPARE never happens, and the commit turns
// into a rollback that also releases the prepared credit.
BOOST_AUTO_TEST_CASE(a_check_violation_at_prepare_rolls_everything_back) {
  PgBanks banks;
  auto txn = banks.cluster.client().Begin("overdraw", 30s);
  BOOST_REQUIRE(txn.ok());
  const std::string xid = (*txn)->xid();
  grpc::Status credit = banks.Move("bank-b", "bob", 500, false, xid);
  BOOST_REQUIRE_MESSAGE(credit.ok(), credit.error_message());
  BOOST_TEST(banks.Prepared("bank-b").size() == 1);
  grpc::Status debit = banks.Move("bank-a", "alice", 500, true, xid);
  BOOST_TEST(debit.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  BOOST_TEST(debit.error_message().find("violates check constraint") !=
                 std::string::npos,
             debit.error_message());
  BOOST_TEST(banks.Prepared("bank-a").empty());

  absl::Status s = (*txn)->Commit(/*wait=*/true);
  BOOST_TEST(absl::IsAborted(s), s);
  banks.ExpectStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  banks.ExpectSettled(100, 100);
  auto record = banks.cluster.GetTransaction(xid);
  BOOST_REQUIRE(record.ok());
  BOOST_REQUIRE(record->branches_size() == 2);
  for (const v1::Branch& b : record->branches()) {
    BOOST_TEST(b.status() == v1::BRANCH_STATUS_ROLLED_BACK);
  }
}

// The hard case: PostgreSQL prepared the debit, then the process died
// before reporting it. The prepared transaction outlives the process and
// keeps alice's row locked until the restarted service attaches, reports
// it in doubt, and rolls it back as the coordinator says.
BOOST_AUTO_TEST_CASE(a_participant_killed_after_prepare_releases_its_locks) {
  PgBanks banks({}, {"BATON_FAILPOINTS=participant_after_prepare=crash"});
  std::string xid = banks.TransferUntilCrash(banks.cluster.bank("bank-a"));
  BOOST_TEST(banks.Prepared("bank-a").size() == 1);
  BOOST_TEST(!banks.RowIsFree("bank-a", "alice"));

  banks.StartBank("bank-a", {});
  banks.ExpectStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  banks.ExpectSettled(100, 100);
}

// batond dies once the commit decision is durable, before any branch hears
// of it: both branches stay prepared, and the restarted batond commits them.
BOOST_AUTO_TEST_CASE(batond_killed_after_the_decision_commits_on_restart) {
  PgBanks banks({"BATON_FAILPOINTS=after_commit_decision=crash"});
  std::string xid = banks.TransferUntilCrash(banks.cluster.coordinator());
  BOOST_TEST(banks.Prepared("bank-a").size() == 1);
  BOOST_TEST(banks.Prepared("bank-b").size() == 1);

  banks.cluster.StartCoordinator();
  banks.ExpectStatus(xid, v1::GLOBAL_STATUS_COMMITTED);
  banks.ExpectSettled(70, 130);
}

// The participant commits in PostgreSQL and dies before acknowledging, so
// the restarted one receives the same commit again: COMMIT PREPARED finds no
// gid, the branch row says it committed, and the answer is DONE. The debit
// applies once.
BOOST_AUTO_TEST_CASE(a_commit_delivered_twice_is_done_and_applied_once) {
  PgBanks banks({}, {"BATON_FAILPOINTS=participant_after_commit=crash"});
  std::string xid = banks.TransferUntilCrash(banks.cluster.bank("bank-a"));
  BOOST_TEST(banks.Stored("bank-a", "alice") == 70);  // Applied, unacked.

  banks.StartBank("bank-a", {});
  banks.ExpectStatus(xid, v1::GLOBAL_STATUS_COMMITTED);
  banks.ExpectSettled(70, 130);
  auto record = banks.cluster.GetTransaction(xid);
  BOOST_REQUIRE(record.ok());
  for (const v1::Branch& b : record->branches()) {
    BOOST_TEST(b.status() == v1::BRANCH_STATUS_COMMITTED);
  }
}

BOOST_AUTO_TEST_CASE(
    bank_service_says_plainly_that_prepared_transactions_are_off) {
  PgCluster off({.max_prepared_transactions = 0});
  TempDir logs;
  auto bank = ChildProcess::Start(
      "bank-off",
      {BinPath("bank_service"), "--listen", "127.0.0.1:0", "--resource",
       "bank-a", "--postgres", off.ConnInfo("postgres")},
      {}, logs.path());
  BOOST_TEST(bank->WaitExit(30s) == 1);
  BOOST_TEST(bank->Stderr().find("has max_prepared_transactions = 0; set it "
                                 "to at least") != std::string::npos,
             bank->Stderr());
}

}  // namespace
}  // namespace baton::testing
