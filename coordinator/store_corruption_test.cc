// The LevelDB store on damaged data: every kind of damage is an error that
// names what is damaged (DATA_LOSS, which clients do not retry), never a
// crash and never a record silently dropped or changed. The one exception
// is normal crash residue: a log whose last record was cut short.
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "coordinator/store.h"
#include "coordinator/store_keys.h"
#include "leveldb/db.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

struct ScratchDir {
  ScratchDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("baton-corruption-test-" + std::to_string(getpid()) + "-" +
            std::to_string(counter++));
    fs::remove_all(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  fs::path path;
};

std::string XidOf(int i) { return "0-1-" + std::to_string(i); }

v1::Transaction Record(int i, bool finished) {
  v1::Transaction txn;
  txn.set_xid(XidOf(i));
  txn.set_name("transfer " + std::string(150, 'x'));
  txn.set_status(finished ? v1::GLOBAL_STATUS_COMMITTED
                          : v1::GLOBAL_STATUS_COMMITTING);
  txn.set_next_action_unix_ms(finished ? 0 : 1000 + i);
  txn.set_finished_unix_ms(finished ? 1000 + i : 0);
  return txn;
}

// Writes `count` records, one synced write each, then closes the store. With
// `compact`, LevelDB then moves them all from the log into an .ldb table.
void WriteRecords(const fs::path& dir, int count, bool finished, bool compact) {
  {
    std::unique_ptr<TransactionStore> store;
    BOOST_REQUIRE(OpenLevelDbStore(dir.string(), &store).ok());
    for (int i = 0; i < count; ++i) {
      StoreBatch batch;
      batch.PutTransaction(Record(i, finished), -1);
      BOOST_REQUIRE(store->Apply({&batch}).ok());
    }
  }
  if (!compact) return;
  leveldb::DB* raw = nullptr;
  BOOST_REQUIRE(leveldb::DB::Open(leveldb::Options(), dir.string(), &raw).ok());
  raw->CompactRange(nullptr, nullptr);
  delete raw;
}

fs::path FileNamed(const fs::path& dir, const std::string& part) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.find(part) != std::string::npos && fs::file_size(entry) > 0) {
      return entry.path();
    }
  }
  BOOST_FAIL("no file like " + part + " in " + dir.string());
  return {};
}

// Inverts 16 bytes in the middle of `file`, as a bad disk sector would.
void FlipMiddle(const fs::path& file) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  auto middle = static_cast<std::streamoff>(fs::file_size(file) / 2);
  char bytes[16];
  f.seekg(middle);
  f.read(bytes, sizeof(bytes));
  for (char& b : bytes) b = static_cast<char>(~b);
  f.seekp(middle);
  f.write(bytes, sizeof(bytes));
}

void PutRaw(const fs::path& dir, const std::string& key,
            const std::string& value) {
  leveldb::DB* raw = nullptr;
  leveldb::Options options;
  options.create_if_missing = true;
  BOOST_REQUIRE(leveldb::DB::Open(options, dir.string(), &raw).ok());
  BOOST_REQUIRE(raw->Put(leveldb::WriteOptions(), key, value).ok());
  delete raw;
}

// The value under `key`, or "" if none.
std::string GetRaw(const fs::path& dir, const std::string& key) {
  leveldb::DB* raw = nullptr;
  BOOST_REQUIRE(leveldb::DB::Open(leveldb::Options(), dir.string(), &raw).ok());
  std::string value;
  if (!raw->Get(leveldb::ReadOptions(), key, &value).ok()) value.clear();
  delete raw;
  return value;
}

absl::Status ScanAll(TransactionStore* store, int* seen) {
  *seen = 0;
  return store->ScanUnfinished([&](const v1::Transaction& t) {
    ++*seen;
    return true;
  });
}

bool Names(const absl::Status& s, const std::string& part) {
  return std::string(s.message()).find(part) != std::string::npos;
}

BOOST_AUTO_TEST_SUITE(store_corruption)

BOOST_AUTO_TEST_CASE(a_flipped_log_is_data_loss_at_open) {
  ScratchDir dir;
  WriteRecords(dir.path, 200, /*finished=*/false, /*compact=*/false);
  FlipMiddle(FileNamed(dir.path, ".log"));
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenLevelDbStore(dir.path.string(), &store);
  BOOST_TEST(absl::IsDataLoss(s), s);
  BOOST_TEST(Names(s, "corrupt"), s);
  BOOST_TEST(Names(s, dir.path.string()), s);
}

BOOST_AUTO_TEST_CASE(a_flipped_manifest_is_data_loss_at_open) {
  ScratchDir dir;
  WriteRecords(dir.path, 200, /*finished=*/false, /*compact=*/true);
  FlipMiddle(FileNamed(dir.path, "MANIFEST-"));
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenLevelDbStore(dir.path.string(), &store);
  BOOST_TEST(absl::IsDataLoss(s), s);
}

// The table holds unfinished records: loading them at start must stop on
// the damaged block with DATA_LOSS, not skip it.
BOOST_AUTO_TEST_CASE(a_flipped_table_of_unfinished_records_fails_the_load) {
  ScratchDir dir;
  WriteRecords(dir.path, 2000, /*finished=*/false, /*compact=*/true);
  FlipMiddle(FileNamed(dir.path, ".ldb"));
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenLevelDbStore(dir.path.string(), &store);
  if (s.ok()) {
    int seen = 0;
    s = ScanAll(store.get(), &seen);
  }
  BOOST_TEST(absl::IsDataLoss(s), s);
}

// Finished records are read one by one later: each read of a damaged one is
// DATA_LOSS (not UNAVAILABLE, which clients would retry for ever), and every
// record read OK is exactly what was written.
BOOST_AUTO_TEST_CASE(reads_of_a_flipped_table_are_data_loss_or_exact) {
  ScratchDir dir;
  constexpr int kRecords = 2000;
  WriteRecords(dir.path, kRecords, /*finished=*/true, /*compact=*/true);
  FlipMiddle(FileNamed(dir.path, ".ldb"));
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  int lost = 0;
  for (int i = 0; i < kRecords; ++i) {
    v1::Transaction got;
    absl::Status s = store->Get(XidOf(i), &got);
    if (absl::IsDataLoss(s)) {
      ++lost;
      BOOST_TEST(Names(s, "t/" + XidOf(i)), s);
      continue;
    }
    BOOST_REQUIRE_MESSAGE(s.ok(), XidOf(i) << ": " << s);
    BOOST_TEST(got.SerializeAsString() == Record(i, true).SerializeAsString());
  }
  BOOST_TEST(lost > 0);
}

BOOST_AUTO_TEST_CASE(a_log_cut_short_opens_quietly_without_its_last_write) {
  ScratchDir dir;
  WriteRecords(dir.path, 50, /*finished=*/false, /*compact=*/false);
  fs::path log = FileNamed(dir.path, ".log");
  fs::resize_file(log, fs::file_size(log) - 10);
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  int seen = 0;
  BOOST_REQUIRE(ScanAll(store.get(), &seen).ok());
  BOOST_TEST(seen == 49);
}

BOOST_AUTO_TEST_CASE(an_unparseable_record_is_data_loss_naming_its_key) {
  ScratchDir dir;
  WriteRecords(dir.path, 3, /*finished=*/false, /*compact=*/false);
  PutRaw(dir.path, store_keys::RecordKey(XidOf(1)), "\xff\xff garbage");
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  int seen = 0;
  absl::Status s = ScanAll(store.get(), &seen);
  BOOST_TEST(absl::IsDataLoss(s), s);
  BOOST_TEST(Names(s, "t/0-1-1"), s);
}

BOOST_AUTO_TEST_CASE(a_malformed_index_key_is_data_loss_naming_it) {
  ScratchDir dir;
  WriteRecords(dir.path, 3, /*finished=*/false, /*compact=*/false);
  PutRaw(dir.path, "u/not-a-time/0-1-1", "");
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  int seen = 0;
  absl::Status s = ScanAll(store.get(), &seen);
  BOOST_TEST(absl::IsDataLoss(s), s);
  BOOST_TEST(Names(s, "u/not-a-time/0-1-1"), s);
}

BOOST_AUTO_TEST_CASE(a_record_holding_another_xid_is_data_loss_naming_it) {
  ScratchDir dir;
  WriteRecords(dir.path, 3, /*finished=*/false, /*compact=*/false);
  v1::Transaction other = Record(2, /*finished=*/false);
  PutRaw(dir.path, store_keys::RecordKey(XidOf(1)), other.SerializeAsString());
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  int seen = 0;
  absl::Status s = ScanAll(store.get(), &seen);
  BOOST_TEST(absl::IsDataLoss(s), s);
  BOOST_TEST(Names(s, "t/0-1-1"), s);
  BOOST_TEST(Names(s, "0-1-2"), s);
}

// Found by fuzz_store: a record whose first branch's key was damaged loaded
// with branch 2 in branch 1's place, and phase two looked branch 2 up by
// its position and found nothing.
BOOST_AUTO_TEST_CASE(a_branch_out_of_place_is_data_loss_naming_its_key) {
  ScratchDir dir;
  {
    std::unique_ptr<TransactionStore> store;
    BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
    v1::Transaction txn = Record(1, /*finished=*/false);
    for (int i = 1; i <= 2; ++i) txn.add_branches()->set_branch_id(i);
    StoreBatch batch;
    batch.PutTransaction(txn, -1);
    BOOST_REQUIRE(store->Apply({&batch}).ok());
  }
  v1::Branch stray;
  stray.set_branch_id(2);
  const std::string first = store_keys::BranchKey(XidOf(1), 1);
  PutRaw(dir.path, first, stray.SerializeAsString());
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  v1::Transaction loaded;
  absl::Status s = store->Get(XidOf(1), &loaded);
  BOOST_TEST(absl::IsDataLoss(s), s);
  BOOST_TEST(Names(s, first), s);
}

// Found by fuzz_store: two index entries for one xid made batond resume the
// record twice, and the second adopt freed the first's live state.
BOOST_AUTO_TEST_CASE(a_second_index_entry_for_one_xid_is_data_loss) {
  ScratchDir dir;
  WriteRecords(dir.path, 3, /*finished=*/false, /*compact=*/false);
  PutRaw(dir.path, store_keys::UnfinishedKey(999999, XidOf(1)), "");
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  int seen = 0;
  absl::Status s = ScanAll(store.get(), &seen);
  BOOST_TEST(absl::IsDataLoss(s), s);
  BOOST_TEST(Names(s, store_keys::UnfinishedKey(999999, XidOf(1))), s);
  BOOST_TEST(seen == 3);
}

// What an older batond's forget of a not-yet-loaded transaction left: an
// index entry whose record is gone. The load drops it for good and goes on.
BOOST_AUTO_TEST_CASE(a_dangling_index_entry_is_dropped_and_the_load_goes_on) {
  ScratchDir dir;
  WriteRecords(dir.path, 3, /*finished=*/false, /*compact=*/false);
  {
    std::unique_ptr<TransactionStore> store;
    BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
    StoreBatch forget;  // As if terminal: the unfinished index stays.
    forget.DeleteTransaction(XidOf(1), /*finished_ms=*/0);
    BOOST_REQUIRE(store->Apply({&forget}).ok());
    int seen = 0;
    BOOST_REQUIRE(ScanAll(store.get(), &seen).ok());
    BOOST_TEST(seen == 2);
  }
  leveldb::DB* raw = nullptr;
  BOOST_REQUIRE(
      leveldb::DB::Open(leveldb::Options(), dir.path.string(), &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  std::string value;
  BOOST_TEST(db->Get(leveldb::ReadOptions(),
                     store_keys::UnfinishedKey(1001, XidOf(1)), &value)
                 .IsNotFound());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(store_format)

// What batond wrote before format 2: each record whole under t/<xid>, and no
// format recorded.
BOOST_AUTO_TEST_CASE(a_format_1_directory_is_migrated_on_open) {
  ScratchDir dir;
  v1::Transaction old = Record(1, /*finished=*/false);
  for (int i = 1; i <= 3; ++i) {
    v1::Branch* b = old.add_branches();
    b->set_branch_id(i);
    b->set_resource("bank");
    b->set_status(v1::BRANCH_STATUS_PREPARED);
  }
  v1::Transaction saga = Record(2, /*finished=*/true);
  saga.set_protocol(v1::PROTOCOL_SAGA);
  saga.mutable_saga()->mutable_definition()->add_steps()->set_name("book");
  saga.mutable_saga()->add_steps();
  PutRaw(dir.path, store_keys::RecordKey(old.xid()), old.SerializeAsString());
  PutRaw(dir.path,
         store_keys::UnfinishedKey(old.next_action_unix_ms(), old.xid()), "");
  PutRaw(dir.path, store_keys::RecordKey(saga.xid()), saga.SerializeAsString());
  for (int open = 0; open < 2; ++open) {  // Migrated once, then just read.
    std::unique_ptr<TransactionStore> store;
    absl::Status s = OpenLevelDbStore(dir.path.string(), &store);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    v1::Transaction read;
    BOOST_REQUIRE(store->Get(old.xid(), &read).ok());
    BOOST_TEST(read.SerializeAsString() == old.SerializeAsString());
    BOOST_REQUIRE(store->Get(saga.xid(), &read).ok());
    BOOST_TEST(read.saga().definition().steps(0).name() == "book");
    int seen = 0;
    BOOST_TEST(ScanAll(store.get(), &seen).ok());
    BOOST_TEST(seen == 1);
  }
  BOOST_TEST(GetRaw(dir.path, "m/format") == std::to_string(kStoreFormat));
  v1::Transaction fields;
  BOOST_REQUIRE(fields.ParseFromString(
      GetRaw(dir.path, store_keys::RecordKey(old.xid()))));
  BOOST_TEST(fields.branches_size() == 0);
  BOOST_TEST(!GetRaw(dir.path, store_keys::BranchKey(old.xid(), 3)).empty());
  BOOST_TEST(!GetRaw(dir.path, store_keys::DefinitionKey(saga.xid())).empty());
}

BOOST_AUTO_TEST_CASE(a_directory_of_a_newer_format_is_refused) {
  ScratchDir dir;
  PutRaw(dir.path, "m/format", std::to_string(kStoreFormat + 1));
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenLevelDbStore(dir.path.string(), &store);
  BOOST_TEST(absl::IsFailedPrecondition(s), s);
  BOOST_TEST(Names(s, "newer batond"), s);
  BOOST_TEST(GetRaw(dir.path, "m/format") == std::to_string(kStoreFormat + 1));
}

BOOST_AUTO_TEST_CASE(a_deleted_record_takes_its_branches_along) {
  ScratchDir dir;
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.path.string(), &store).ok());
  v1::Transaction txn = Record(1, /*finished=*/true);
  txn.add_branches()->set_branch_id(1);
  StoreBatch put;
  put.PutTransaction(txn, -1);
  BOOST_REQUIRE(store->Apply({&put}).ok());
  StoreBatch drop;
  drop.DeleteTransaction(txn.xid(), txn.finished_unix_ms());
  BOOST_REQUIRE(store->Apply({&drop}).ok());
  store.reset();
  BOOST_TEST(GetRaw(dir.path, store_keys::BranchKey(txn.xid(), 1)).empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
