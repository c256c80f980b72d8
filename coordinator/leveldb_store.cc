// The LevelDB backend of TransactionStore. Key layout: store_keys.h.

#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store.h"
#include "coordinator/store_keys.h"
#include "coordinator/stored_record.h"
#include "fmt/format.h"
#include "leveldb/db.h"
#include "leveldb/write_batch.h"
#include "protocols/transitions.h"
#include "spdlog/spdlog.h"

namespace baton {

namespace {

// Corruption will not heal by retrying, so it is DATA_LOSS, which clients
// do not retry; an I/O error may (the disk is fixed, batond restarted).
absl::Status FromLevelDb(const leveldb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound())
    return absl::NotFoundError(fmt::format("{}: not found", what));
  std::string message = fmt::format("{}: {}", what, s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsIOError()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

// Every read checks block checksums, so a flipped bit is an error naming
// what was read, never a silently different record.
leveldb::ReadOptions CheckedReads() {
  leveldb::ReadOptions options;
  options.verify_checksums = true;
  return options;
}

std::string_view View(const leveldb::Slice& slice) {
  return std::string_view(slice.data(), slice.size());
}

class LevelDbStore : public TransactionStore {
 public:
  explicit LevelDbStore(std::unique_ptr<leveldb::DB> db) : db_(std::move(db)) {}

  absl::Status Apply(const std::vector<const StoreBatch*>& batches) override {
    absl::MutexLock lock(&write_mu_);
    if (!failed_.ok()) return failed_;
    leveldb::WriteBatch wb;
    for (const StoreBatch* batch : batches) AddToWriteBatch(*batch, &wb);
    leveldb::WriteOptions options;
    options.sync = true;
    leveldb::Status s = db_->Write(options, &wb);
    syncs_.fetch_add(1, std::memory_order_relaxed);
    batches_.fetch_add(batches.size(), std::memory_order_relaxed);
    bytes_.fetch_add(wb.ApproximateSize(), std::memory_order_relaxed);
    if (!s.ok()) {
      failed_ = FromLevelDb(
          s, "store write failed; refusing every write until restarted");
    }
    return failed_;
  }

  absl::Status Get(const std::string& xid, v1::Transaction* txn) override {
    std::string key = store_keys::RecordKey(xid);
    std::string value;
    leveldb::Status s = db_->Get(CheckedReads(), key, &value);
    if (s.IsNotFound()) {
      return absl::NotFoundError(fmt::format("no transaction {}", xid));
    }
    if (!s.ok()) return FromLevelDb(s, "read " + Printable(key));
    if (absl::Status s = ParseStoredRecord(xid, value, key, txn); !s.ok()) {
      return s;
    }
    return ReadParts(xid, txn);
  }

  // An index entry without its record is what an older batond's forget of
  // a not-yet-loaded transaction left behind: the record is gone on
  // purpose, so the entry is dropped (durably) and the scan goes on.
  absl::Status ScanUnfinished(
      const std::function<bool(const v1::Transaction&)>& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(CheckedReads()));
    const std::string prefix(store_keys::kUnfinishedPrefix);
    leveldb::WriteBatch dangling;
    int dropped = 0;
    // The index is written with its record in one batch, so a second entry
    // for one xid is damage; acting on it would resume the record twice.
    absl::flat_hash_set<std::string> seen;
    absl::Status s;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      int64_t due;
      std::string xid;
      const std::string key = it->key().ToString();
      if (!store_keys::ParseIndexKey(key, &due, &xid)) {
        return absl::DataLossError(fmt::format(
            "index key {} is malformed (expected u/<16 hex digits>/<xid>)",
            Printable(key)));
      }
      v1::Transaction txn;
      s = Get(xid, &txn);
      if (absl::IsNotFound(s)) {
        spdlog::warn("dropping index entry {}: transaction {} has no record",
                     Printable(key), xid);
        dangling.Delete(key);
        ++dropped;
        continue;
      }
      if (!s.ok()) return s;
      if (!seen.insert(xid).second) {
        return absl::DataLossError(
            fmt::format("index key {} names transaction {} a second time",
                        Printable(key), xid));
      }
      if (!fn(txn)) break;
    }
    s = FromLevelDb(it->status(), "scan unfinished transactions");
    if (s.ok() && dropped > 0) {
      absl::MutexLock lock(&write_mu_);
      leveldb::WriteOptions options;
      options.sync = true;
      s = FromLevelDb(db_->Write(options, &dangling),
                      "drop dangling index entries");
    }
    return s;
  }

  absl::Status ScanFinished(const FinishedRef* after, int64_t cutoff_ms,
                            size_t limit,
                            std::vector<FinishedRef>* out) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(CheckedReads()));
    const std::string prefix(store_keys::kFinishedPrefix);
    const std::string start =
        after == nullptr
            ? prefix
            : store_keys::FinishedKey(after->finished_ms, after->xid);
    for (it->Seek(start);
         it->Valid() && it->key().starts_with(prefix) && out->size() < limit;
         it->Next()) {
      if (after != nullptr && it->key().ToString() == start) continue;
      FinishedRef ref;
      if (!store_keys::ParseIndexKey(it->key().ToString(), &ref.finished_ms,
                                     &ref.xid)) {
        return absl::DataLossError(fmt::format(
            "index key {} is malformed (expected f/<16 hex digits>/<xid>)",
            Printable(it->key().ToString())));
      }
      if (ref.finished_ms >= cutoff_ms) break;
      ref.owned_meta_key = it->value().ToString();
      out->push_back(std::move(ref));
    }
    return FromLevelDb(it->status(), "scan finished transactions");
  }

  absl::Status GetMeta(const std::string& key, std::string* value) override {
    leveldb::Status s =
        db_->Get(CheckedReads(), store_keys::MetaKey(key), value);
    return FromLevelDb(s, "read " + Printable(store_keys::MetaKey(key)));
  }

  StoreStats Stats() const override {
    return {.syncs = syncs_.load(std::memory_order_relaxed),
            .batches = batches_.load(std::memory_order_relaxed),
            .bytes = bytes_.load(std::memory_order_relaxed)};
  }

 private:
  // The branches and saga definition kept under keys of their own.
  absl::Status ReadParts(const std::string& xid, v1::Transaction* txn) {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(CheckedReads()));
    const std::string prefix = store_keys::BranchPrefix(xid);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      if (absl::Status s =
              AppendStoredBranch(View(it->value()), View(it->key()), txn);
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = FromLevelDb(it->status(), "read branches of " + xid);
        !s.ok()) {
      return s;
    }
    if (!txn->has_saga()) return absl::OkStatus();
    const std::string key = store_keys::DefinitionKey(xid);
    std::string value;
    leveldb::Status s = db_->Get(CheckedReads(), key, &value);
    if (!s.ok()) return FromLevelDb(s, "read " + Printable(key));
    return ParseStoredDefinition(value, key, txn);
  }

  void DeleteParts(const std::string& xid, leveldb::WriteBatch* wb) {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(CheckedReads()));
    const std::string prefix = store_keys::BranchPrefix(xid);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      wb->Delete(it->key());
    }
    wb->Delete(store_keys::DefinitionKey(xid));
  }

  void AddToWriteBatch(const StoreBatch& batch, leveldb::WriteBatch* wb) {
    for (const StoreBatch::Op& op : batch.ops()) {
      switch (op.kind) {
        case StoreBatch::Op::kPutTransaction:
          AddPut(op, wb);
          break;
        case StoreBatch::Op::kDeleteTransaction:
          wb->Delete(store_keys::RecordKey(op.key));
          DeleteParts(op.key, wb);
          if (op.previous_due_ms >= 0) {
            wb->Delete(store_keys::UnfinishedKey(op.previous_due_ms, op.key));
          } else {
            wb->Delete(store_keys::FinishedKey(op.finished_ms, op.key));
          }
          break;
        case StoreBatch::Op::kPutMeta:
          wb->Put(store_keys::MetaKey(op.key), op.value);
          break;
        case StoreBatch::Op::kDeleteMeta:
          wb->Delete(store_keys::MetaKey(op.key));
          break;
      }
    }
  }

  static void AddPut(const StoreBatch::Op& op, leveldb::WriteBatch* wb) {
    const std::string& xid = op.key;
    bool moved = op.terminal || op.previous_due_ms != op.due_ms;
    if (op.previous_due_ms >= 0 && moved) {
      wb->Delete(store_keys::UnfinishedKey(op.previous_due_ms, xid));
    }
    if (op.terminal) {
      wb->Put(store_keys::FinishedKey(op.finished_ms, xid), op.owned_meta_key);
    } else if (moved) {
      wb->Put(store_keys::UnfinishedKey(op.due_ms, xid), "");
    }
    wb->Put(store_keys::RecordKey(xid), op.value);
    for (const auto& [id, bytes] : op.branches) {
      wb->Put(store_keys::BranchKey(xid, id), bytes);
    }
    if (op.definition) wb->Put(store_keys::DefinitionKey(xid), *op.definition);
  }

  std::unique_ptr<leveldb::DB> db_;
  absl::Mutex write_mu_;
  absl::Status failed_ ABSL_GUARDED_BY(write_mu_);  // sticky once set.
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> bytes_{0};
};

// Format 1 kept each record whole under t/<xid>; format 2 splits off its
// branches and saga definition. Splitting is idempotent, so a migration cut
// short by a crash simply runs again on the next open.
absl::Status Migrate(leveldb::DB* db, const std::string& dir) {
  const std::string prefix(store_keys::kRecordPrefix);
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(CheckedReads()));
  leveldb::WriteBatch wb;
  leveldb::WriteOptions synced;
  synced.sync = true;
  size_t records = 0, split = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    ++records;
    v1::Transaction txn;
    if (!txn.ParseFromArray(it->value().data(), it->value().size())) {
      return absl::DataLossError(fmt::format(
          "cannot migrate {} to format {}: record {} does not parse; restore "
          "the data dir from a backup",
          dir, kStoreFormat, Printable(it->key().ToString())));
    }
    if (txn.branches_size() == 0 && !txn.saga().has_definition()) continue;
    StoreBatch batch;
    batch.PutTransactionParts(&txn, -1, "", StoreBatch::Parts());
    const StoreBatch::Op& op = batch.ops()[0];
    wb.Put(it->key(), op.value);
    for (const auto& [id, bytes] : op.branches) {
      wb.Put(store_keys::BranchKey(op.key, id), bytes);
    }
    if (op.definition)
      wb.Put(store_keys::DefinitionKey(op.key), *op.definition);
    if (++split % 1000 == 0) {
      if (leveldb::Status s = db->Write(synced, &wb); !s.ok()) {
        return FromLevelDb(s, "migrate " + dir);
      }
      wb.Clear();
    }
  }
  if (absl::Status s = FromLevelDb(it->status(), "migrate " + dir); !s.ok()) {
    return s;
  }
  wb.Put(store_keys::MetaKey(store_keys::kFormatName),
         std::to_string(kStoreFormat));
  if (leveldb::Status s = db->Write(synced, &wb); !s.ok()) {
    return FromLevelDb(s, "migrate " + dir);
  }
  if (records > 0) {
    spdlog::info("store {}: migrated {} record(s) to format {} ({} split)", dir,
                 records, kStoreFormat, split);
  }
  return absl::OkStatus();
}

absl::Status CheckFormat(leveldb::DB* db, const std::string& dir) {
  std::string value;
  leveldb::Status s = db->Get(
      CheckedReads(), store_keys::MetaKey(store_keys::kFormatName), &value);
  if (s.IsNotFound()) return Migrate(db, dir);
  if (!s.ok()) return FromLevelDb(s, "read the format of " + dir);
  int format = 0;
  if (!absl::SimpleAtoi(value, &format) || format < 1) {
    return absl::DataLossError(fmt::format(
        "the store in {} is corrupt: m/{} holds '{}', not a format number", dir,
        store_keys::kFormatName, Printable(value)));
  }
  if (format > kStoreFormat) {
    return absl::FailedPreconditionError(fmt::format(
        "the store in {} has format {}, written by a newer batond; this one "
        "reads format {} and older: run the newer batond on it, or restore a "
        "backup made before the upgrade",
        dir, format, kStoreFormat));
  }
  return format < kStoreFormat ? Migrate(db, dir) : absl::OkStatus();
}

}  // namespace

absl::Status OpenLevelDbStore(const std::string& dir,
                              std::unique_ptr<TransactionStore>* store) {
  leveldb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.write_buffer_size = 16 << 20;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, dir, &db);
  if (s.IsCorruption()) {
    return absl::DataLossError(fmt::format(
        "the store in {} is corrupt ({}); batond will not run on it: restore "
        "the directory from a backup, or move it aside to start empty",
        dir, s.ToString()));
  }
  if (!s.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("cannot open store in {}: {}", dir, s.ToString()));
  }
  std::unique_ptr<leveldb::DB> owned(db);
  if (absl::Status format = CheckFormat(db, dir); !format.ok()) return format;
  *store = std::make_unique<LevelDbStore>(std::move(owned));
  return absl::OkStatus();
}

}  // namespace baton
