// The TransactionStore contract, held by each backend: LevelDB in a temp
// dir, and PostgreSQL in a throwaway server (a database per case).
#define BOOST_TEST_MODULE store_backends
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/postgres_store.h"
#include "coordinator/store.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

using namespace std::chrono_literals;

enum class Backend { kLevelDb, kPostgres };

std::ostream& operator<<(std::ostream& os, Backend backend) {
  return os << (backend == Backend::kLevelDb ? "leveldb" : "postgres");
}

const Backend kBackends[] = {Backend::kLevelDb, Backend::kPostgres};

// One server for the whole run, stopped at exit: starting one costs about
// a second.
PgCluster& Server() {
  static PgCluster server;
  return server;
}

// Where one case keeps its store; Open may be called again to reopen it.
class Place {
 public:
  explicit Place(Backend backend) : backend_(backend) {
    if (backend_ == Backend::kPostgres) {
      database_ = "store_" + std::to_string(++databases_);
      Server().CreateDatabase(database_);
    }
  }

  std::unique_ptr<TransactionStore> Open() {
    std::unique_ptr<TransactionStore> store;
    absl::Status s =
        backend_ == Backend::kLevelDb
            ? OpenLevelDbStore((dir_.path() / "store").string(), &store)
            : OpenPostgresStore(conninfo(), &store);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    return store;
  }

  std::string conninfo() const { return Server().ConnInfo(database_); }
  const std::string& database() const { return database_; }

 private:
  static inline int databases_ = 0;
  Backend backend_;
  TempDir dir_;
  std::string database_;
};

v1::Transaction Txn(const std::string& xid, v1::GlobalStatus status,
                    int64_t due, int64_t finished = 0) {
  v1::Transaction txn;
  txn.set_xid(xid);
  txn.set_status(status);
  txn.set_next_action_unix_ms(due);
  txn.set_finished_unix_ms(finished);
  txn.set_name("transfer");
  return txn;
}

v1::Transaction WithBranches(v1::Transaction txn, int count) {
  for (int i = 1; i <= count; ++i) {
    v1::Branch* b = txn.add_branches();
    b->set_branch_id(i);
    b->set_resource("bank-" + std::to_string(i));
    b->set_status(v1::BRANCH_STATUS_PREPARED);
  }
  return txn;
}

absl::Status Apply(TransactionStore* store, const StoreBatch& batch) {
  return store->Apply({&batch});
}

std::vector<std::string> Unfinished(TransactionStore* store) {
  std::vector<std::string> xids;
  absl::Status s = store->ScanUnfinished([&](const v1::Transaction& t) {
    xids.push_back(t.xid());
    return true;
  });
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return xids;
}

std::vector<std::string> Finished(TransactionStore* store, int64_t cutoff) {
  std::vector<FinishedRef> refs;
  absl::Status s = store->ScanFinished(nullptr, cutoff, 100, &refs);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  std::vector<std::string> xids;
  for (const FinishedRef& ref : refs) xids.push_back(ref.xid);
  return xids;
}

BOOST_DATA_TEST_CASE(the_indexes_follow_each_put,
                     boost::unit_test::data::make(kBackends), backend) {
  Place place(backend);
  auto store = place.Open();
  StoreBatch first;
  first.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_BEGUN, 500), -1);
  first.PutTransaction(Txn("0-1-1", v1::GLOBAL_STATUS_BEGUN, 900), -1);
  BOOST_REQUIRE(Apply(store.get(), first).ok());
  BOOST_TEST(
      (Unfinished(store.get()) == std::vector<std::string>{"0-1-2", "0-1-1"}));

  StoreBatch second;
  second.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_COMMITTING, 1000), 500);
  second.PutTransaction(Txn("0-1-1", v1::GLOBAL_STATUS_COMMITTED, 0, 42), 900);
  BOOST_REQUIRE(Apply(store.get(), second).ok());
  BOOST_TEST((Unfinished(store.get()) == std::vector<std::string>{"0-1-2"}));
  v1::Transaction got;
  BOOST_REQUIRE(store->Get("0-1-2", &got).ok());
  BOOST_TEST(got.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_TEST((Finished(store.get(), 43) == std::vector<std::string>{"0-1-1"}));
  BOOST_TEST(Finished(store.get(), 42).empty());
}

BOOST_DATA_TEST_CASE(deletes_and_meta_survive_a_reopen,
                     boost::unit_test::data::make(kBackends), backend) {
  Place place(backend);
  {
    auto store = place.Open();
    StoreBatch batch;
    batch.PutTransaction(
        WithBranches(Txn("0-1-1", v1::GLOBAL_STATUS_ROLLED_BACK, 0, 7), 2), -1);
    batch.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_ROLLED_BACK, 0, 8), -1);
    batch.PutMeta("epoch", "3");
    BOOST_REQUIRE(Apply(store.get(), batch).ok());
    StoreBatch purge;
    purge.DeleteTransaction("0-1-1", 7);
    BOOST_REQUIRE(Apply(store.get(), purge).ok());
    BOOST_TEST(store->Stats().syncs == 2u);
  }
  auto store = place.Open();
  v1::Transaction got;
  BOOST_TEST(absl::IsNotFound(store->Get("0-1-1", &got)));
  BOOST_TEST(store->Get("0-1-2", &got).ok());
  BOOST_TEST((Finished(store.get(), 100) == std::vector<std::string>{"0-1-2"}));
  std::string epoch;
  BOOST_REQUIRE(store->GetMeta("epoch", &epoch).ok());
  BOOST_TEST(epoch == "3");
  BOOST_TEST(absl::IsNotFound(store->GetMeta("nothing", &epoch)));
}

BOOST_DATA_TEST_CASE(a_terminal_record_hands_back_the_meta_key_it_owns,
                     boost::unit_test::data::make(kBackends), backend) {
  Place place(backend);
  auto store = place.Open();
  StoreBatch batch;
  batch.PutMeta("saga-request/trip-42", "0-1-1");
  batch.PutTransaction(Txn("0-1-1", v1::GLOBAL_STATUS_COMMITTED, 0, 7), -1,
                       "saga-request/trip-42");
  batch.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_COMMITTED, 0, 8), -1);
  BOOST_REQUIRE(Apply(store.get(), batch).ok());

  std::vector<FinishedRef> finished;
  BOOST_REQUIRE(store->ScanFinished(nullptr, 100, 10, &finished).ok());
  BOOST_REQUIRE(finished.size() == 2u);
  BOOST_TEST(finished[0].owned_meta_key == "saga-request/trip-42");
  BOOST_TEST(finished[1].owned_meta_key.empty());

  StoreBatch purge;
  purge.DeleteTransaction("0-1-1", 7);
  purge.DeleteMeta(finished[0].owned_meta_key);
  BOOST_REQUIRE(Apply(store.get(), purge).ok());
  std::string xid;
  BOOST_TEST(absl::IsNotFound(store->GetMeta("saga-request/trip-42", &xid)));
}

// A group carries many changes to one record; they apply in order.
BOOST_DATA_TEST_CASE(changes_to_one_record_in_one_group_apply_in_order,
                     boost::unit_test::data::make(kBackends), backend) {
  Place place(backend);
  auto store = place.Open();
  v1::Transaction txn =
      WithBranches(Txn("0-1-1", v1::GLOBAL_STATUS_BEGUN, 5), 3);
  StoreBatch begin;
  begin.PutTransaction(txn, -1);
  StoreBatch change;
  txn.set_status(v1::GLOBAL_STATUS_COMMITTING);
  txn.mutable_branches(1)->set_status(v1::BRANCH_STATUS_COMMITTED);
  StoreBatch::Parts parts;
  parts.all_branches = false;
  parts.branches = {2};
  change.PutTransactionParts(&txn, 5, "", parts);
  // Put, then dropped, then put again from nothing: only the last survives.
  StoreBatch gone;
  gone.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_BEGUN, 9), -1);
  gone.PutMeta("k", "first");
  gone.DeleteTransaction("0-1-2", 0, 9);
  gone.DeleteMeta("k");
  StoreBatch again;
  again.PutTransaction(Txn("0-1-3", v1::GLOBAL_STATUS_BEGUN, 9), -1);
  again.DeleteTransaction("0-1-3", 0, 9);
  again.PutTransaction(
      WithBranches(Txn("0-1-3", v1::GLOBAL_STATUS_BEGUN, 4), 1), -1);
  again.PutMeta("j", "second");
  BOOST_REQUIRE(store->Apply({&begin, &change, &gone, &again}).ok());

  v1::Transaction got;
  BOOST_REQUIRE(store->Get("0-1-1", &got).ok());
  BOOST_TEST(got.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_REQUIRE(got.branches_size() == 3);
  BOOST_TEST(got.branches(0).status() == v1::BRANCH_STATUS_PREPARED);
  BOOST_TEST(got.branches(1).status() == v1::BRANCH_STATUS_COMMITTED);
  BOOST_TEST(absl::IsNotFound(store->Get("0-1-2", &got)));
  BOOST_REQUIRE(store->Get("0-1-3", &got).ok());
  BOOST_TEST(got.branches_size() == 1);
  std::string value;
  BOOST_TEST(absl::IsNotFound(store->GetMeta("k", &value)));
  BOOST_REQUIRE(store->GetMeta("j", &value).ok());
  BOOST_TEST(value == "second");
  BOOST_TEST(
      (Unfinished(store.get()) == std::vector<std::string>{"0-1-3", "0-1-1"}));
}

BOOST_DATA_TEST_CASE(a_saga_keeps_its_definition_written_once,
                     boost::unit_test::data::make(kBackends), backend) {
  Place place(backend);
  auto store = place.Open();
  v1::Transaction saga = Txn("0-1-1", v1::GLOBAL_STATUS_BEGUN, 0);
  v1::SagaStep* step = saga.mutable_saga()->mutable_definition()->add_steps();
  step->set_name("book-flight");
  StoreBatch first;
  first.PutTransaction(saga, -1);
  saga.set_status(v1::GLOBAL_STATUS_COMMITTING);
  StoreBatch::Parts parts;
  parts.definition = false;
  StoreBatch later;
  later.PutTransactionParts(&saga, 0, "", parts);
  BOOST_REQUIRE(Apply(store.get(), first).ok());
  BOOST_REQUIRE(Apply(store.get(), later).ok());
  v1::Transaction got;
  BOOST_REQUIRE(store->Get("0-1-1", &got).ok());
  BOOST_TEST(got.status() == v1::GLOBAL_STATUS_COMMITTING);
  BOOST_REQUIRE(got.saga().definition().steps_size() == 1);
  BOOST_TEST(got.saga().definition().steps(0).name() == "book-flight");
}

// More records than one page of either scan.
BOOST_DATA_TEST_CASE(scans_page_through_many_records,
                     boost::unit_test::data::make(kBackends), backend) {
  Place place(backend);
  auto store = place.Open();
  StoreBatch batch;
  for (int i = 1; i <= 1200; ++i) {
    batch.PutTransaction(
        WithBranches(
            Txn("1-1-" + std::to_string(i), v1::GLOBAL_STATUS_BEGUN, i), 2),
        -1);
    batch.PutTransaction(Txn("2-1-" + std::to_string(i),
                             v1::GLOBAL_STATUS_COMMITTED, 0, 1000 + i),
                         -1);
  }
  BOOST_REQUIRE(Apply(store.get(), batch).ok());
  size_t seen = 0;
  int64_t last_due = -1;
  BOOST_REQUIRE(store
                    ->ScanUnfinished([&](const v1::Transaction& t) {
                      BOOST_TEST(t.next_action_unix_ms() > last_due);
                      BOOST_TEST(t.branches_size() == 2);
                      last_due = t.next_action_unix_ms();
                      return ++seen < 1100;
                    })
                    .ok());
  BOOST_TEST(seen == 1100u);

  std::vector<FinishedRef> page;
  BOOST_REQUIRE(store->ScanFinished(nullptr, INT64_MAX, 700, &page).ok());
  BOOST_REQUIRE(page.size() == 700u);
  FinishedRef after = page.back();
  page.clear();
  BOOST_REQUIRE(store->ScanFinished(&after, INT64_MAX, 700, &page).ok());
  BOOST_REQUIRE(page.size() == 500u);
  BOOST_TEST(page.front().finished_ms == after.finished_ms + 1);
  BOOST_TEST(page.back().xid == "2-1-1200");
}

// PostgreSQL alone from here.

int64_t SequentialScans(Place& place) {
  auto rows = Server().Query(
      place.database(),
      "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables WHERE "
      "relname LIKE 'batond_%'");
  BOOST_REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
  return std::stoll((*rows)[0][0]);
}

// A session flushes its statistics as it exits, before it leaves
// pg_stat_activity.
void WaitUntilStoreSessionsEnded(Place& place) {
  const std::string sql =
      "SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
      place.database() + "' AND pid <> pg_backend_pid()";
  BOOST_REQUIRE(WaitFor(
      [&] {
        auto rows = Server().Query(place.database(), sql);
        return rows.ok() && (*rows)[0][0] == "0";
      },
      10s));
}

BOOST_AUTO_TEST_CASE(every_query_of_the_postgres_store_is_an_index_scan) {
  Place place(Backend::kPostgres);
  {
    auto store = place.Open();
    StoreBatch batch;
    for (int i = 1; i <= 5000; ++i) {
      batch.PutTransaction(WithBranches(Txn("0-1-" + std::to_string(i),
                                            v1::GLOBAL_STATUS_COMMITTED, 0, i),
                                        2),
                           -1);
      batch.PutMeta("saga-request/" + std::to_string(i), "x");
    }
    for (int i = 1; i <= 10; ++i) {
      batch.PutTransaction(
          Txn("3-1-" + std::to_string(i), v1::GLOBAL_STATUS_BEGUN, i), -1);
    }
    BOOST_REQUIRE(Apply(store.get(), batch).ok());
  }
  BOOST_REQUIRE(Server().Query(place.database(), "ANALYZE").ok());
  WaitUntilStoreSessionsEnded(place);
  const int64_t before = SequentialScans(place);

  auto store = place.Open();
  v1::Transaction got;
  BOOST_REQUIRE(store->Get("0-1-77", &got).ok());
  BOOST_TEST(got.branches_size() == 2);
  std::string value;
  BOOST_REQUIRE(store->GetMeta("saga-request/77", &value).ok());
  BOOST_TEST(Unfinished(store.get()).size() == 10u);
  std::vector<FinishedRef> page;
  BOOST_REQUIRE(store->ScanFinished(nullptr, 100, 50, &page).ok());
  BOOST_TEST(page.size() == 50u);
  StoreBatch change;
  change.PutTransaction(Txn("3-1-1", v1::GLOBAL_STATUS_COMMITTED, 0, 9), 1);
  change.DeleteTransaction("0-1-1", 1);
  change.DeleteMeta("saga-request/1");
  BOOST_REQUIRE(Apply(store.get(), change).ok());
  store.reset();
  WaitUntilStoreSessionsEnded(place);
  BOOST_TEST(SequentialScans(place) == before);
}

BOOST_AUTO_TEST_CASE(another_format_in_the_database_is_refused) {
  Place place(Backend::kPostgres);
  place.Open();
  BOOST_REQUIRE(Server()
                    .Query(place.database(),
                           "UPDATE batond_meta SET value = "
                           "convert_to('postgres/9', 'UTF8') WHERE key = "
                           "convert_to('format', 'UTF8')")
                    .ok());
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenPostgresStore(place.conninfo(), &store);
  BOOST_TEST(absl::IsFailedPrecondition(s), s.ToString());
  BOOST_TEST(std::string(s.message()).find("postgres/9") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_unreachable_database_is_unavailable_and_named) {
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenPostgresStore(
      "host=127.0.0.1 port=1 dbname=nowhere user=postgres connect_timeout=2",
      &store);
  BOOST_TEST(absl::IsUnavailable(s), s.ToString());
  BOOST_TEST(std::string(s.message()).find("127.0.0.1:1/nowhere") !=
             std::string::npos);
}

// A session that loses its server cannot prove any later write durable.
BOOST_AUTO_TEST_CASE(a_write_after_the_connection_is_lost_fails_for_good) {
  Place place(Backend::kPostgres);
  auto store = place.Open();
  StoreBatch batch;
  batch.PutMeta("epoch", "1");
  BOOST_REQUIRE(Apply(store.get(), batch).ok());
  BOOST_REQUIRE(Server()
                    .Query("postgres",
                           "SELECT pg_terminate_backend(pid) FROM "
                           "pg_stat_activity WHERE datname = '" +
                               place.database() + "'")
                    .ok());
  absl::Status s = Apply(store.get(), batch);
  BOOST_TEST(absl::IsUnavailable(s), s.ToString());
  BOOST_TEST(std::string(s.message()).find("refusing every write") !=
             std::string::npos);
  BOOST_TEST(absl::IsUnavailable(Apply(store.get(), batch)));
  // Reads reconnect.
  std::string epoch;
  BOOST_TEST(store->GetMeta("epoch", &epoch).ok());
}

}  // namespace
}  // namespace baton::testing
