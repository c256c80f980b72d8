#ifndef BATON_COORDINATOR_STORE_H_
#define BATON_COORDINATOR_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "baton/v1/types.pb.h"

namespace baton {

// One atomic change to the store, in backend-neutral terms. The backend
// decides the key layout and keeps its indexes consistent with each record.
class StoreBatch {
 public:
  // The record is serialized when the op is made, once: the store needs the
  // bytes plus the few fields its indexes are keyed on.
  struct Op {
    enum Kind {
      kPutTransaction,
      kDeleteTransaction,
      kPutMeta,
      kDeleteMeta
    } kind;
    std::string key;  // The xid, or the meta key.
    // The meta value, or the record's own fields serialized (without its
    // branches and its saga's definition, which travel apart).
    std::string value;
    // kPutTransaction: the branches written, serialized, by id.
    std::vector<std::pair<uint64_t, std::string>> branches;
    std::optional<std::string> definition;  // kPutTransaction: the saga's.
    bool terminal = false;                  // kPutTransaction
    int64_t due_ms = 0;  // kPutTransaction: next_action_unix_ms
    // kPutTransaction, kDeleteTransaction: the due it was indexed at.
    int64_t previous_due_ms = -1;
    int64_t finished_ms = 0;     // kPutTransaction, kDeleteTransaction
    std::string owned_meta_key;  // kPutTransaction
  };

  // Writes the whole record. previous_due_ms is the next_action_unix_ms the
  // record carried when it was last put, or -1 if it was never put. A
  // terminal record may own a meta key (e.g. an idempotency key pointing at
  // it): ScanFinished hands it back, so a purge can drop both together.
  void PutTransaction(const v1::Transaction& txn, int64_t previous_due_ms,
                      std::string owned_meta_key = "");

  // Which parts of a record a put writes beyond its own fields: so a change
  // writes bytes in proportion to what it changed, not to the record.
  struct Parts {
    bool all_branches = true;
    std::vector<uint64_t> branches;  // If not all: these (ids, unsorted).
    // A saga's definition never changes: only its first put writes it.
    bool definition = true;
  };
  // Like PutTransaction, writing `parts` only; *txn is borrowed and left as
  // it was (its large fields are swapped out while it serializes, not
  // copied).
  void PutTransactionParts(v1::Transaction* txn, int64_t previous_due_ms,
                           std::string owned_meta_key, const Parts& parts);
  // Drops a terminal record that finished at finished_ms, or, given
  // unfinished_due_ms >= 0, an unfinished one last put with that due time.
  void DeleteTransaction(const std::string& xid, int64_t finished_ms,
                         int64_t unfinished_due_ms = -1);
  void PutMeta(const std::string& key, const std::string& value);
  void DeleteMeta(const std::string& key);

  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

// A store's refusal of a batch for a shard this node no longer leases
// (TransactionStore::ApplyFenced): FAILED_PRECONDITION, marked so the
// shard's table can tell it from other failures and stop serving at once.
absl::Status ShardNotLeasedError(std::string_view message);
bool IsShardNotLeased(const absl::Status& status);

struct FinishedRef {
  std::string xid;
  int64_t finished_ms;
  std::string owned_meta_key;  // As put with the terminal record; may be "".
};

struct StoreStats {
  uint64_t syncs = 0;    // Synced writes issued to disk.
  uint64_t batches = 0;  // StoreBatches applied (many per sync).
  uint64_t bytes = 0;    // Bytes handed to the disk in those writes.
};

// Durable storage of transaction records. Thread-safe.
//
// Fail-stop: once a write or sync fails, every later Apply fails with the
// same error; a coordinator that cannot prove durability stops acknowledging.
class TransactionStore {
 public:
  virtual ~TransactionStore() = default;

  // Applies every batch atomically and in order, and syncs. On OK all of them
  // are durable; on error none may be assumed to be.
  virtual absl::Status Apply(const std::vector<const StoreBatch*>& batches) = 0;

  // Like Apply, for a store that fences shards (the PostgreSQL store with
  // ShardFences): the batches of shards this node no longer leases are
  // left out, each refused in (*refused)[i] (FAILED_PRECONDITION naming
  // the shard), and the rest applied; OK then means those are durable.
  // Sized to `batches` on return. By default, Apply.
  virtual absl::Status ApplyFenced(
      const std::vector<const StoreBatch*>& batches,
      std::vector<absl::Status>* refused) {
    refused->assign(batches.size(), absl::OkStatus());
    return Apply(batches);
  }

  // NOT_FOUND if no record has that xid.
  virtual absl::Status Get(const std::string& xid, v1::Transaction* txn) = 0;

  // Calls fn for every non-terminal record; within a shard, earliest next
  // action first (records with no timed action, 0, come first). fn returns
  // false to stop.
  virtual absl::Status ScanUnfinished(
      const std::function<bool(const v1::Transaction&)>& fn) = 0;

  // The same for the records of one shard (a new lease holder's load). By
  // default, ScanUnfinished filtered.
  virtual absl::Status ScanShardUnfinished(
      uint32_t shard, const std::function<bool(const v1::Transaction&)>& fn);

  // Up to `limit` terminal records that finished before cutoff_ms, oldest
  // first, starting after `after` (nullptr: from the oldest).
  virtual absl::Status ScanFinished(const FinishedRef* after, int64_t cutoff_ms,
                                    size_t limit,
                                    std::vector<FinishedRef>* out) = 0;

  // NOT_FOUND if the key was never put.
  virtual absl::Status GetMeta(const std::string& key, std::string* value) = 0;

  virtual StoreStats Stats() const = 0;

  // Writes again after a failure, if the backend can prove it may: the
  // PostgreSQL store reconnects. Only for a caller that dropped everything
  // it held in memory since (the leased mode). FAILED_PRECONDITION by
  // default: a LevelDB store needs a restart.
  virtual absl::Status Revive() {
    return absl::FailedPreconditionError(
        "this store writes again only after batond restarts");
  }
};

// The data directory format this build reads and writes: 2 keeps a record's
// branches and saga definition under keys of their own. A directory of
// format 1 (no format recorded; batond before 2026-12) is migrated on open;
// a newer one is refused with FAILED_PRECONDITION.
inline constexpr int kStoreFormat = 2;

// Opens (creating if needed) a LevelDB store in `dir`.
absl::Status OpenLevelDbStore(const std::string& dir,
                              std::unique_ptr<TransactionStore>* store);

}  // namespace baton

#endif  // BATON_COORDINATOR_STORE_H_
