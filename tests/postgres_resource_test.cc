// The PostgreSQL XA resource and barrier against a real server (a throwaway
// cluster, see support/pg_cluster.h), driven directly, without a
// coordinator: phase two is idempotent, a prepared branch outlives its
// process and is found again, and bad settings are reported plainly.
#define BOOST_TEST_MODULE postgres_resource
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <thread>

#include "baton/postgres_barrier.h"
#include "baton/postgres_xa_resource.h"
#include "common/child_process.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

PgCluster* server = nullptr;

struct ServerFixture {
  ServerFixture() { server = new PgCluster(); }
  ~ServerFixture() { delete server; }
};
BOOST_TEST_GLOBAL_FIXTURE(ServerFixture);

// A database of its own per test, with one counter row, and resources whose
// branch adds application_data (a number) to the counter.
struct Fixture {
  Fixture() {
    static std::atomic<int> next{0};
    db = "resource_test_" + std::to_string(++next);
    server->CreateDatabase(db);
    Exec(
        "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL CHECK (n >= "
        "0))");
    Exec("INSERT INTO counter VALUES (1, 10), (2, 10)");
  }

  void Exec(const std::string& sql) {
    auto r = server->Query(db, sql);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  }

  std::unique_ptr<PostgresXaResource> Open(const std::string& resource,
                                           int row = 1) {
    auto opened = PostgresXaResource::Open(
        {.conninfo = server->ConnInfo(db), .resource = resource},
        [row](PGconn* conn, const BranchContext& branch) {
          return PgExec(conn,
                        "UPDATE counter SET n = n + $1::int WHERE id = $2::int",
                        {branch.application_data, std::to_string(row)})
              .status();
        });
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    return std::move(*opened);
  }

  int Counter() {
    auto rows = server->Query(db, "SELECT n FROM counter WHERE id = 1");
    BOOST_REQUIRE(rows.ok());
    return std::stoi((*rows)[0][0]);
  }

  // True if the counter row can be locked now, i.e. no prepared branch
  // holds it.
  bool RowIsFree() {
    return server
        ->Query(db,
                "DO $$ BEGIN SET LOCAL lock_timeout = '200ms'; "
                "PERFORM 1 FROM counter WHERE id = 1 FOR UPDATE; END $$")
        .ok();
  }

  std::string db;
};

using Outcome = PhaseTwoResult::Outcome;

BOOST_FIXTURE_TEST_SUITE(xa_resource, Fixture)

BOOST_AUTO_TEST_CASE(gids_are_deterministic_prefixed_and_bounded) {
  auto resource = Open("bank-a");
  BOOST_TEST(*resource->Gid("n1-3-42", 7) == "baton/bank-a/7/n1-3-42");
  BOOST_TEST(*resource->Gid("n1-3-42", 7) == *resource->Gid("n1-3-42", 7));
  std::string long_xid(190, 'x');
  BOOST_TEST(!resource->Gid(long_xid, 1).has_value());
  absl::Status s = resource->Prepare({long_xid, 1, "bank-a", "1"});
  BOOST_TEST(absl::IsInvalidArgument(s), s);
  BOOST_TEST(server->PreparedGids(db).empty());
}

BOOST_AUTO_TEST_CASE(open_refuses_bad_resource_names) {
  auto opened = PostgresXaResource::Open(
      {.conninfo = server->ConnInfo(db), .resource = "bank/a"},
      [](PGconn*, const BranchContext&) { return absl::OkStatus(); });
  BOOST_TEST(absl::IsInvalidArgument(opened.status()));
}

BOOST_AUTO_TEST_CASE(open_reports_an_unreachable_server) {
  auto opened = PostgresXaResource::Open(
      {.conninfo = "host=127.0.0.1 port=1 dbname=x connect_timeout=2",
       .resource = "bank-a"},
      [](PGconn*, const BranchContext&) { return absl::OkStatus(); });
  BOOST_TEST(absl::IsUnavailable(opened.status()), opened.status());
}

BOOST_AUTO_TEST_CASE(commit_applies_once_and_a_duplicate_commit_is_done) {
  auto resource = Open("bank-a");
  BranchContext branch{"n1-1-1", 1, "bank-a", "5"};
  BOOST_REQUIRE(resource->Prepare(branch).ok());
  BOOST_TEST(server->PreparedGids(db) ==
                 std::vector<std::string>{"baton/bank-a/1/n1-1-1"},
             boost::test_tools::per_element());
  BOOST_TEST(Counter() == 10);  // Not visible before phase two.
  BOOST_TEST(!RowIsFree());     // The prepared branch holds the row.

  BOOST_TEST((resource->Commit(branch).outcome == Outcome::kDone));
  BOOST_TEST(Counter() == 15);
  BOOST_TEST(server->PreparedGids(db).empty());
  BOOST_TEST(RowIsFree());

  // The command delivered again, as after a lost acknowledgement.
  PhaseTwoResult again = resource->Commit(branch);
  BOOST_TEST((again.outcome == Outcome::kDone), again.message);
  BOOST_TEST(Counter() == 15);

  // It committed, so it can never roll back.
  PhaseTwoResult late = resource->Rollback(branch);
  BOOST_TEST((late.outcome == Outcome::kFailed));
  BOOST_TEST(late.message.find("committed") != std::string::npos, late.message);
  BOOST_TEST(Counter() == 15);
}

BOOST_AUTO_TEST_CASE(rollback_undoes_and_a_duplicate_rollback_is_done) {
  auto resource = Open("bank-a");
  BranchContext branch{"n1-1-2", 3, "bank-a", "5"};
  BOOST_REQUIRE(resource->Prepare(branch).ok());
  BOOST_TEST((resource->Rollback(branch).outcome == Outcome::kDone));
  BOOST_TEST((resource->Rollback(branch).outcome == Outcome::kDone));
  BOOST_TEST(Counter() == 10);
  BOOST_TEST(server->PreparedGids(db).empty());
  BOOST_TEST(RowIsFree());

  // It rolled back, so a commit can never apply.
  PhaseTwoResult late = resource->Commit(branch);
  BOOST_TEST((late.outcome == Outcome::kFailed));
  BOOST_TEST(late.message.find("rolled back") != std::string::npos,
             late.message);
  BOOST_TEST(Counter() == 10);
}

BOOST_AUTO_TEST_CASE(rollback_of_a_branch_that_never_prepared_is_done) {
  auto resource = Open("bank-a");
  BOOST_TEST((resource->Rollback({"n1-1-3", 1, "bank-a", "5"}).outcome ==
              Outcome::kDone));
}

BOOST_AUTO_TEST_CASE(a_constraint_violation_fails_prepare_and_holds_nothing) {
  auto resource = Open("bank-a");
  absl::Status s = resource->Prepare({"n1-1-4", 1, "bank-a", "-11"});
  BOOST_TEST(absl::IsFailedPrecondition(s), s);
  BOOST_TEST(s.message().find("violates check constraint") != std::string::npos,
             s);
  BOOST_TEST(server->PreparedGids(db).empty());
  BOOST_TEST(Counter() == 10);
  BOOST_TEST(RowIsFree());
  // The connection went back clean: the next branch prepares fine.
  BOOST_TEST(resource->Prepare({"n1-1-5", 1, "bank-a", "-10"}).ok());
  BOOST_TEST((resource->Commit({"n1-1-5", 1, "bank-a", "-10"}).outcome ==
              Outcome::kDone));
  BOOST_TEST(Counter() == 0);
}

// A deferred constraint is checked when the transaction ends, which for a
// branch is PREPARE TRANSACTION: every statement of the work succeeds, and
// PREPARE itself fails. PostgreSQL has then aborted the whole local
// transaction, branch row included.
BOOST_AUTO_TEST_CASE(a_deferred_constraint_fails_at_prepare_and_holds_nothing) {
  Exec(
      "CREATE TABLE receipts (ref text UNIQUE DEFERRABLE INITIALLY DEFERRED, "
      "counter_id int NOT NULL)");
  Exec("INSERT INTO receipts VALUES ('r1', 1)");
  // The work adds to the counter and files a receipt named by
  // application_data, and records whether its own statements succeeded.
  std::atomic<int> works_ok{0};
  auto opened = PostgresXaResource::Open(
      {.conninfo = server->ConnInfo(db), .resource = "bank-a"},
      [&works_ok](PGconn* conn, const BranchContext& branch) {
        absl::StatusOr<PgResult> r =
            PgExec(conn, "UPDATE counter SET n = n + 1 WHERE id = 1");
        if (r.ok()) {
          r = PgExec(conn, "INSERT INTO receipts VALUES ($1, 1)",
                     {branch.application_data});
        }
        if (r.ok()) ++works_ok;
        return r.status();
      });
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  PostgresXaResource& resource = **opened;

  BranchContext duplicate{"n1-1-11", 4, "bank-a", "r1"};
  absl::Status s = resource.Prepare(duplicate);
  BOOST_TEST(works_ok.load() == 1);  // The INSERT itself was accepted.
  BOOST_TEST(absl::IsFailedPrecondition(s), s);
  BOOST_TEST(PgSqlState(s) == "23505", s);
  BOOST_TEST(s.message().find("PREPARE TRANSACTION baton/bank-a/4/n1-1-11 "
                              "failed") != std::string::npos,
             s);
  BOOST_TEST(s.message().find("receipts_ref_key") != std::string::npos, s);

  // Nothing prepared, nothing written, no lock held.
  BOOST_TEST(server->PreparedGids(db).empty());
  BOOST_TEST(Counter() == 10);
  auto receipts = server->Query(db, "SELECT ref FROM receipts ORDER BY ref");
  BOOST_REQUIRE(receipts.ok());
  BOOST_TEST(receipts->size() == 1);
  auto rows = server->Query(db, "SELECT count(*) FROM baton_branches");
  BOOST_REQUIRE(rows.ok());
  BOOST_TEST((*rows)[0][0] == "0");
  BOOST_TEST(RowIsFree());
  BOOST_TEST(resource.Recover().empty());

  // Phase two for the failed branch: the rollback the coordinator sends is
  // done, and a commit could never apply.
  BOOST_TEST((resource.Rollback(duplicate).outcome == Outcome::kDone));
  BOOST_TEST((resource.Commit(duplicate).outcome == Outcome::kFailed));
  BOOST_TEST(Counter() == 10);

  // The pooled connection came back outside any transaction: the next
  // branch on it prepares and commits.
  BranchContext fresh{"n1-1-12", 1, "bank-a", "r2"};
  BOOST_REQUIRE(resource.Prepare(fresh).ok());
  BOOST_TEST((resource.Commit(fresh).outcome == Outcome::kDone));
  BOOST_TEST(Counter() == 11);
  receipts = server->Query(db, "SELECT ref FROM receipts ORDER BY ref");
  BOOST_REQUIRE(receipts.ok());
  BOOST_TEST(receipts->size() == 2);
  BOOST_TEST(server->PreparedGids(db).empty());
}

BOOST_AUTO_TEST_CASE(a_work_that_swallows_an_error_is_not_prepared) {
  auto opened = PostgresXaResource::Open(
      {.conninfo = server->ConnInfo(db), .resource = "bank-a"},
      [](PGconn* conn, const BranchContext&) {
        PgExec(conn, "SELECT no_such_column FROM counter").IgnoreError();
        return absl::OkStatus();
      });
  BOOST_REQUIRE(opened.ok());
  absl::Status s = (*opened)->Prepare({"n1-1-6", 1, "bank-a", "1"});
  BOOST_TEST(absl::IsAborted(s), s);
  BOOST_TEST(server->PreparedGids(db).empty());
}

// With every connection held by a branch in phase one, the next branch waits
// for one, then fails plainly instead of opening more than the limit.
BOOST_AUTO_TEST_CASE(branches_past_the_connection_limit_wait_then_fail) {
  PostgresXaResource* self = nullptr;
  absl::Status nested;
  auto opened = PostgresXaResource::Open(
      {.conninfo = server->ConnInfo(db),
       .resource = "bank-a",
       .max_connections = 1,
       .connection_wait = std::chrono::milliseconds(200)},
      [&](PGconn* conn, const BranchContext& branch) {
        // The outer branch holds the only connection from BEGIN to PREPARE.
        if (branch.branch_id != 1) return PgExec(conn, "SELECT 1").status();
        nested = self->Prepare({"n1-3-2", 2, "bank-a", "1"});
        return PgExec(conn, "UPDATE counter SET n = n + 1 WHERE id = 2")
            .status();
      });
  BOOST_REQUIRE(opened.ok());
  self = opened->get();
  BOOST_REQUIRE(self->Prepare({"n1-3-1", 1, "bank-a", "1"}).ok());
  BOOST_TEST(absl::IsResourceExhausted(nested), nested);
  BOOST_TEST(std::string(nested.message()).find("all 1 connections") !=
             std::string::npos);
  // Only the outer branch is held; with its connection back, a new branch
  // gets it.
  BOOST_TEST(server->PreparedGids(db).size() == 1u);
  BranchContext next{"n1-3-3", 3, "bank-a", "1"};
  BOOST_TEST(self->Prepare(next).ok());
  // Prepared transactions are cluster-wide: leave none for other tests.
  BOOST_TEST((self->Rollback(next).outcome == Outcome::kDone));
  BOOST_TEST(
      (self->Rollback({"n1-3-1", 1, "bank-a", "1"}).outcome == Outcome::kDone));
  BOOST_TEST(server->PreparedGids(db).empty());
}

BOOST_AUTO_TEST_CASE(a_prepared_branch_outlives_its_process_and_is_recovered) {
  BranchContext branch{"n1-1-7", 2, "bank-a", "5"};
  Open("bank-a")->Prepare(branch).IgnoreError();  // And "dies".
  BOOST_REQUIRE(server->PreparedGids(db).size() == 1);
  BOOST_TEST(!RowIsFree());

  auto restarted = Open("bank-a");
  std::vector<InDoubtBranch> in_doubt = restarted->Recover();
  BOOST_REQUIRE(in_doubt.size() == 1);
  BOOST_TEST(in_doubt[0].xid == "n1-1-7");
  BOOST_TEST(in_doubt[0].branch_id == 2);
  // The coordinator answers presumed abort, say.
  BOOST_TEST((restarted->Rollback(branch).outcome == Outcome::kDone));
  BOOST_TEST(server->PreparedGids(db).empty());
  BOOST_TEST(RowIsFree());
  BOOST_TEST(Counter() == 10);
  BOOST_TEST(restarted->Recover().empty());
}

BOOST_AUTO_TEST_CASE(recover_lists_only_its_own_resource) {
  auto a = Open("bank-a");
  auto b = Open("bank-b", /*row=*/2);
  BOOST_REQUIRE(a->Prepare({"n1-1-8", 1, "bank-a", "1"}).ok());
  BOOST_REQUIRE(b->Prepare({"n1-1-9", 1, "bank-b", "1"}).ok());
  BOOST_TEST(a->Recover().size() == 1);
  BOOST_TEST(a->Recover()[0].xid == "n1-1-8");
  BOOST_TEST(b->Recover()[0].xid == "n1-1-9");
  a->Rollback({"n1-1-8", 1, "bank-a", "1"});
  b->Rollback({"n1-1-9", 1, "bank-b", "1"});
  BOOST_TEST(server->PreparedGids(db).empty());
}

// An instance connected to another database cannot finish the branch; it
// says so, naming what to fix, and leaves it for one that can.
BOOST_AUTO_TEST_CASE(an_instance_on_another_database_names_the_mistake) {
  BranchContext branch{"n1-1-21", 1, "bank-a", "4"};
  BOOST_REQUIRE(Open("bank-a")->Prepare(branch).ok());
  std::string other = db + "_other";
  server->CreateDatabase(other);
  auto misplaced = PostgresXaResource::Open(
      {.conninfo = server->ConnInfo(other), .resource = "bank-a"},
      [](PGconn*, const BranchContext&) { return absl::OkStatus(); });
  BOOST_REQUIRE_MESSAGE(misplaced.ok(), misplaced.status().ToString());

  PhaseTwoResult refused = (*misplaced)->Commit(branch);
  BOOST_TEST((refused.outcome == Outcome::kRetry));
  BOOST_TEST(refused.message.find("another database") != std::string::npos,
             refused.message);
  BOOST_TEST(refused.message.find("'" + other + "'") != std::string::npos,
             refused.message);
  BOOST_TEST(server->PreparedGids(db).size() == 1);  // Left for the right one.

  BOOST_TEST((Open("bank-a")->Commit(branch).outcome == Outcome::kDone));
  BOOST_TEST(Counter() == 14);
  BOOST_TEST(server->PreparedGids(db).empty());
}

BOOST_AUTO_TEST_CASE(purge_forgets_old_branch_rows) {
  auto resource = Open("bank-a");
  BranchContext branch{"n1-1-10", 1, "bank-a", "1"};
  BOOST_REQUIRE(resource->Prepare(branch).ok());
  BOOST_REQUIRE((resource->Commit(branch).outcome == Outcome::kDone));
  BOOST_TEST(*resource->PurgeBranchesBefore(0) == 0);
  auto now = std::chrono::system_clock::now() + std::chrono::seconds(1);
  int64_t cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                       now.time_since_epoch())
                       .count();
  BOOST_TEST(*resource->PurgeBranchesBefore(cutoff) == 1);
}

// A least-privilege role (no CREATE on the schema) opens the resource once
// a privileged role created its table, and runs branches.
BOOST_AUTO_TEST_CASE(a_role_without_create_opens_existing_tables) {
  Open("bank-a");  // As the superuser: creates baton_branches.
  Exec("CREATE ROLE app_" + db + " LOGIN");
  Exec("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
  Exec("GRANT SELECT, INSERT, DELETE ON baton_branches TO app_" + db);
  Exec("GRANT SELECT, UPDATE ON counter TO app_" + db);
  auto opened = PostgresXaResource::Open(
      {.conninfo = server->ConnInfo(db) + " user=app_" + db,
       .resource = "bank-a"},
      [](PGconn* conn, const BranchContext& branch) {
        return PgExec(conn, "UPDATE counter SET n = n + $1::int WHERE id = 1",
                      {branch.application_data})
            .status();
      });
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  BranchContext branch{"n1-1-13", 1, "bank-a", "2"};
  BOOST_REQUIRE((*opened)->Prepare(branch).ok());
  BOOST_TEST(((*opened)->Commit(branch).outcome == Outcome::kDone));
  BOOST_TEST(Counter() == 12);
}

BOOST_AUTO_TEST_CASE(old_branch_rows_are_purged_by_the_resource_itself) {
  auto opened = PostgresXaResource::Open(
      {.conninfo = server->ConnInfo(db),
       .resource = "bank-a",
       .branch_retention = std::chrono::milliseconds(1),
       .purge_interval = std::chrono::milliseconds(20)},
      [](PGconn*, const BranchContext&) { return absl::OkStatus(); });
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  BranchContext branch{"n1-1-11", 1, "bank-a", "1"};
  BOOST_REQUIRE((*opened)->Prepare(branch).ok());
  BOOST_REQUIRE(((*opened)->Commit(branch).outcome == Outcome::kDone));
  auto rows = [&] {
    auto r = server->Query(db, "SELECT count(*) FROM baton_branches");
    return r.ok() ? std::stoi((*r)[0][0]) : -1;
  };
  BOOST_TEST(WaitFor([&] { return rows() == 0; }, std::chrono::seconds(10)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(open_says_plainly_that_prepared_transactions_are_off) {
  PgCluster off({.max_prepared_transactions = 0});
  auto opened = PostgresXaResource::Open(
      {.conninfo = off.ConnInfo("postgres"), .resource = "bank-a"},
      [](PGconn*, const BranchContext&) { return absl::OkStatus(); });
  BOOST_TEST(absl::IsFailedPrecondition(opened.status()), opened.status());
  BOOST_TEST(opened.status().message().find(
                 "has max_prepared_transactions = 0; set it to at least") !=
                 std::string::npos,
             opened.status());
}

// The barrier: the same guarantees as the LevelDB one, in a table.
struct BarrierFixture : Fixture {
  BarrierFixture() {
    auto opened = PostgresBarrier::Open(server->ConnInfo(db));
    BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    barrier = std::move(*opened);
  }

  // A hook that counts its runs and adds `delta` to the counter.
  BarrierHook Adding(std::atomic<int>* runs, int delta,
                     TryState* seen = nullptr) {
    return [=](LocalTransaction& local, TryState state) {
      ++*runs;
      if (seen != nullptr) *seen = state;
      return PgExec(PostgresBarrier::Conn(local),
                    "UPDATE counter SET n = n + $1::int WHERE id = 1",
                    {std::to_string(delta)})
          .status();
    };
  }

  std::unique_ptr<PostgresBarrier> barrier;
};

BOOST_FIXTURE_TEST_SUITE(postgres_barrier, BarrierFixture)

BOOST_AUTO_TEST_CASE(try_then_confirm_run_once_each) {
  std::atomic<int> tries{0}, confirms{0};
  BarrierCall t{"n1-2-1", 1, TccPhase::kTry};
  BOOST_TEST((*barrier->Run(t, Adding(&tries, 1)) == BarrierResult::kRan));
  BOOST_TEST(
      (*barrier->Run(t, Adding(&tries, 1)) == BarrierResult::kDuplicate));
  BOOST_TEST(barrier->Unresolved().size() == 1);
  BarrierCall c{"n1-2-1", 1, TccPhase::kConfirm};
  for (int i = 0; i < 3; ++i)
    barrier->Run(c, Adding(&confirms, 2)).IgnoreError();
  BOOST_TEST(tries.load() == 1);
  BOOST_TEST(confirms.load() == 1);
  BOOST_TEST(Counter() == 13);
  BOOST_TEST(barrier->Unresolved().empty());
}

BOOST_AUTO_TEST_CASE(an_empty_cancel_succeeds_and_refuses_the_late_try) {
  std::atomic<int> cancels{0}, tries{0};
  auto r = barrier->Run({"n1-2-2", 1, TccPhase::kCancel}, Adding(&cancels, 1));
  BOOST_TEST((*r == BarrierResult::kEmptyCancel));
  auto late = barrier->Run({"n1-2-2", 1, TccPhase::kTry}, Adding(&tries, 1));
  BOOST_TEST(absl::IsFailedPrecondition(late.status()));
  BOOST_TEST(cancels.load() + tries.load() == 0);
  BOOST_TEST(Counter() == 10);
}

BOOST_AUTO_TEST_CASE(
    a_failing_hook_writes_nothing_and_a_started_try_is_unresolved) {
  auto r = barrier->Run(
      {"n1-2-3", 1, TccPhase::kTry}, [](LocalTransaction& local, TryState) {
        PgExec(PostgresBarrier::Conn(local), "UPDATE counter SET n = 99")
            .IgnoreError();
        return absl::InternalError("external call failed");
      });
  BOOST_TEST(absl::IsInternal(r.status()));
  BOOST_TEST(Counter() == 10);
  auto unresolved = barrier->Unresolved();
  BOOST_REQUIRE(unresolved.size() == 1);
  BOOST_TEST(unresolved[0].first == "n1-2-3");
  TryState seen = TryState::kNone;
  std::atomic<int> cancels{0};
  BOOST_TEST(
      (*barrier->Run({"n1-2-3", 1, TccPhase::kCancel},
                     Adding(&cancels, 0, &seen)) == BarrierResult::kRan));
  BOOST_TEST((seen == TryState::kStarted));
}

// A local try's row is written done with its update, in one commit, and a
// local try that failed leaves no row, so its cancel is empty.
BOOST_AUTO_TEST_CASE(
    a_local_try_is_one_commit_and_a_failed_one_leaves_nothing) {
  std::atomic<int> tries{0};
  BarrierCall t{.xid = "n1-2-5",
                .branch_id = 1,
                .phase = TccPhase::kTry,
                .local_only = true};
  BOOST_TEST((*barrier->Run(t, Adding(&tries, 1)) == BarrierResult::kRan));
  BOOST_TEST(
      (*barrier->Run(t, Adding(&tries, 1)) == BarrierResult::kDuplicate));
  BOOST_TEST(tries.load() == 1);
  BOOST_TEST(Counter() == 11);
  auto rows =
      server->Query(db, "SELECT state FROM baton_barrier WHERE xid = 'n1-2-5'");
  BOOST_REQUIRE(rows.ok());
  BOOST_REQUIRE(rows->size() == 1u);
  BOOST_TEST((*rows)[0][0] == "done");

  BarrierCall failing{.xid = "n1-2-6",
                      .branch_id = 1,
                      .phase = TccPhase::kTry,
                      .local_only = true};
  auto r = barrier->Run(failing, [](LocalTransaction& local, TryState) {
    PgExec(PostgresBarrier::Conn(local), "UPDATE counter SET n = 99")
        .IgnoreError();
    return absl::InternalError("out of stock");
  });
  BOOST_TEST(absl::IsInternal(r.status()));
  BOOST_TEST(Counter() == 11);
  std::atomic<int> cancels{0};
  auto cancel =
      barrier->Run({"n1-2-6", 1, TccPhase::kCancel}, Adding(&cancels, 0));
  BOOST_TEST((*cancel == BarrierResult::kEmptyCancel));
  BOOST_TEST(cancels.load() == 0);
  auto left = server->Query(
      db, "SELECT phase::text FROM baton_barrier WHERE xid = 'n1-2-6'");
  BOOST_REQUIRE(left.ok());
  BOOST_REQUIRE(left->size() == 1u);  // Only the empty cancel's marker.
  BOOST_TEST((*left)[0][0] == "x");
}

// A cancel that waited at the branch's lock for a try must see the try's
// record once it has the lock, even on a server whose default isolation is
// REPEATABLE READ (whose snapshot would predate the wait).
BOOST_AUTO_TEST_CASE(a_cancel_waiting_for_a_try_sees_it_under_repeatable_read) {
  Exec("ALTER DATABASE " + db +
       " SET default_transaction_isolation = 'repeatable read'");
  auto opened = PostgresBarrier::Open(server->ConnInfo(db));
  BOOST_REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
  std::unique_ptr<PostgresBarrier> strict = std::move(*opened);
  auto cancel_waits_at_the_lock = [&] {
    auto rows = server->Query(
        db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT "
        "granted");
    return rows.ok() && (*rows)[0][0] == "1";
  };
  std::atomic<int> tries{0}, cancels{0};
  TryState seen = TryState::kNone;
  std::thread cancel;
  auto tried = strict->Run(
      {.xid = "n1-2-7",
       .branch_id = 1,
       .phase = TccPhase::kTry,
       .local_only = true},
      [&](LocalTransaction& local, TryState state) {
        cancel = std::thread([&] {
          strict
              ->Run({"n1-2-7", 1, TccPhase::kCancel},
                    Adding(&cancels, -1, &seen))
              .IgnoreError();
        });
        BOOST_TEST(WaitFor(cancel_waits_at_the_lock, std::chrono::seconds(10)));
        return Adding(&tries, 1)(local, state);
      });
  cancel.join();
  BOOST_TEST(tried.ok());
  BOOST_TEST(tries.load() == 1);
  BOOST_TEST(cancels.load() == 1);  // Not an empty cancel: it saw the try.
  BOOST_TEST((seen == TryState::kCompleted));
  BOOST_TEST(Counter() == 10);
}

BOOST_AUTO_TEST_CASE(concurrent_cancels_apply_once) {
  std::atomic<int> tries{0}, cancels{0};
  BOOST_REQUIRE(
      barrier->Run({"n1-2-4", 1, TccPhase::kTry}, Adding(&tries, 5)).ok());
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      barrier->Run({"n1-2-4", 1, TccPhase::kCancel}, Adding(&cancels, -5))
          .IgnoreError();
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(cancels.load() == 1);
  BOOST_TEST(Counter() == 10);
  auto later = std::chrono::system_clock::now() + std::chrono::seconds(1);
  int64_t cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                       later.time_since_epoch())
                       .count();
  BOOST_TEST(*barrier->PurgeResolvedBefore(cutoff) == 1);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton::testing
