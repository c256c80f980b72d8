#define BOOST_TEST_MODULE coordinator
#include "coordinator/store.h"

#include <boost/test/unit_test.hpp>
#include <filesystem>

#include "coordinator/store_keys.h"

namespace baton {
namespace {

struct TempDir {
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("baton-store-test-" + std::to_string(getpid()) + "-" +
            std::to_string(counter++));
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
  static inline int counter = 0;
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

absl::Status Apply(TransactionStore* store, const StoreBatch& batch) {
  return store->Apply({&batch});
}

std::vector<std::string> Unfinished(TransactionStore* store) {
  std::vector<std::string> xids;
  BOOST_REQUIRE(store
                    ->ScanUnfinished([&](const v1::Transaction& t) {
                      xids.push_back(t.xid());
                      return true;
                    })
                    .ok());
  return xids;
}

BOOST_AUTO_TEST_SUITE(store_keys_encoding)

BOOST_AUTO_TEST_CASE(index_keys_sort_by_time_and_round_trip) {
  std::string early = store_keys::UnfinishedKey(5, "0-1-9");
  std::string late = store_keys::UnfinishedKey(0x1000, "0-1-1");
  BOOST_TEST(early < late);
  BOOST_TEST(early == "u/0000000000000005/0-1-9");
  int64_t ms;
  std::string xid;
  BOOST_TEST(store_keys::ParseIndexKey(late, &ms, &xid));
  BOOST_TEST(ms == 0x1000);
  BOOST_TEST(xid == "0-1-1");
  BOOST_TEST(store_keys::ParseIndexKey(
      store_keys::FinishedKey(1700000000000, "x"), &ms, &xid));
  BOOST_TEST(ms == 1700000000000);
  BOOST_TEST(!store_keys::ParseIndexKey("t/0-1-1", &ms, &xid));
  BOOST_TEST(!store_keys::ParseIndexKey("u/00000000000000zz/x", &ms, &xid));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(leveldb_store)

BOOST_AUTO_TEST_CASE(records_and_unfinished_index_follow_each_put) {
  TempDir dir;
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  StoreBatch first;
  first.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_BEGUN, 500), -1);
  first.PutTransaction(Txn("0-1-1", v1::GLOBAL_STATUS_BEGUN, 900), -1);
  BOOST_REQUIRE(Apply(store.get(), first).ok());
  BOOST_TEST(
      (Unfinished(store.get()) == std::vector<std::string>{"0-1-2", "0-1-1"}));

  // Moving the due time re-indexes; finishing moves it to the finished index.
  StoreBatch second;
  second.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_COMMITTING, 1000), 500);
  second.PutTransaction(Txn("0-1-1", v1::GLOBAL_STATUS_COMMITTED, 0, 42), 900);
  BOOST_REQUIRE(Apply(store.get(), second).ok());
  BOOST_TEST((Unfinished(store.get()) == std::vector<std::string>{"0-1-2"}));
  v1::Transaction got;
  BOOST_REQUIRE(store->Get("0-1-2", &got).ok());
  BOOST_TEST(got.status() == v1::GLOBAL_STATUS_COMMITTING);

  std::vector<FinishedRef> finished;
  BOOST_REQUIRE(store->ScanFinished(nullptr, 43, 10, &finished).ok());
  BOOST_REQUIRE(finished.size() == 1u);
  BOOST_TEST(finished[0].xid == "0-1-1");
  finished.clear();
  BOOST_REQUIRE(store->ScanFinished(nullptr, 42, 10, &finished).ok());
  BOOST_TEST(finished.empty());
}

BOOST_AUTO_TEST_CASE(delete_removes_record_and_index_and_data_survives_reopen) {
  TempDir dir;
  {
    std::unique_ptr<TransactionStore> store;
    BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
    StoreBatch batch;
    batch.PutTransaction(Txn("0-1-1", v1::GLOBAL_STATUS_ROLLED_BACK, 0, 7), -1);
    batch.PutTransaction(Txn("0-1-2", v1::GLOBAL_STATUS_ROLLED_BACK, 0, 8), -1);
    batch.PutMeta("epoch", "3");
    BOOST_REQUIRE(Apply(store.get(), batch).ok());
    StoreBatch purge;
    purge.DeleteTransaction("0-1-1", 7);
    BOOST_REQUIRE(Apply(store.get(), purge).ok());
    BOOST_TEST(store->Stats().syncs == 2u);
  }
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  v1::Transaction got;
  BOOST_TEST(absl::IsNotFound(store->Get("0-1-1", &got)));
  BOOST_TEST(store->Get("0-1-2", &got).ok());
  std::vector<FinishedRef> finished;
  BOOST_REQUIRE(store->ScanFinished(nullptr, 100, 10, &finished).ok());
  BOOST_REQUIRE(finished.size() == 1u);
  BOOST_TEST(finished[0].xid == "0-1-2");
  std::string epoch;
  BOOST_REQUIRE(store->GetMeta("epoch", &epoch).ok());
  BOOST_TEST(epoch == "3");
  BOOST_TEST(absl::IsNotFound(store->GetMeta("nothing", &epoch)));
}

BOOST_AUTO_TEST_CASE(a_terminal_record_hands_back_the_meta_key_it_owns) {
  TempDir dir;
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
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

BOOST_AUTO_TEST_CASE(open_fails_clearly_on_unusable_dir) {
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenLevelDbStore("/proc/baton-cannot-be-here", &store);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(std::string(s.message()).find("/proc/baton-cannot-be-here") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
