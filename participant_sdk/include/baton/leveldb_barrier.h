#ifndef BATON_LEVELDB_BARRIER_H_
#define BATON_LEVELDB_BARRIER_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/barrier.h"
#include "leveldb/db.h"
#include "leveldb/write_batch.h"

namespace baton {

// A barrier kept in the service's own LevelDB, beside its business data,
// under keys starting "barrier/". A hook reads through Get and writes
// through Batch; its writes and the barrier record are one atomic write.
//
//   absl::Status Try(const TccContext& c, LocalTransaction& local) override {
//     std::string held;
//     LevelDbBarrier::Get(local, "held/" + c.action.at("sku"), &held);
//     LevelDbBarrier::Batch(local)->Put("held/" + c.action.at("sku"), ...);
//     return absl::OkStatus();
//   }
//
// Hooks run one at a time, each seeing every earlier hook's writes through
// Get (not its own, which are still in its batch), so a hook may read a key
// and write it back without racing another hook. Hooks that run while a
// synced write is in flight share the next one (group commit): each call
// returns once its own writes are synced. A hook must not read the DB
// directly: the writes of hooks that ran but are not synced yet are only
// visible through Get.
//
// If a write fails, the barrier fails every call from then on with
// UNAVAILABLE (later hooks may have read what the failed write held); what
// was acknowledged before is durable. Restart the service once the disk is
// fixed; LevelDB may then replay the failed group, which is harmless, since
// none of its calls was acknowledged: their commands come again and find
// their phases done. Thread-safe.
class LevelDbBarrier : public BarrierStore {
 public:
  // `db` must outlive this object.
  explicit LevelDbBarrier(leveldb::DB* db);
  ~LevelDbBarrier() override;

  // The batch a hook writes through.
  static leveldb::WriteBatch* Batch(LocalTransaction& local);
  // What `key` holds after every earlier hook's writes: OK, NotFound, or
  // the DB's error.
  static leveldb::Status Get(LocalTransaction& local, const std::string& key,
                             std::string* value);

  absl::StatusOr<BarrierResult> Run(const BarrierCall& call,
                                    const BarrierHook& hook) override;
  std::vector<std::pair<std::string, uint64_t>> Unresolved() override;
  absl::StatusOr<size_t> PurgeResolvedBefore(int64_t cutoff_unix_ms) override;

  // Synced writes made so far; with concurrent hooks, fewer than the
  // writes they asked for.
  uint64_t syncs();

 private:
  class Local;
  // Writes accepted for one synced write, and what they leave each key
  // holding (nullopt: deleted), for reads until they are in the DB.
  struct Group {
    uint64_t number = 0;
    leveldb::WriteBatch batch;
    std::map<std::string, std::optional<std::string>, std::less<>> keys;
  };

  absl::StatusOr<BarrierResult> RunLocked(const BarrierCall& call,
                                          const BarrierHook& hook)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  leveldb::Status GetLocked(const std::string& key, std::string* value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds `batch` to the open group; returns that group's number.
  uint64_t AppendLocked(const leveldb::WriteBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns once group `number` is synced (writing it, and what joined it,
  // if no write is in flight), or with the failure.
  absl::Status WaitDurableLocked(uint64_t number)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The last group holding a write.
  uint64_t LastAcceptedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // AppendLocked, then WaitDurableLocked.
  absl::Status WriteLocked(const leveldb::WriteBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  leveldb::DB* const db_;
  absl::Mutex mu_;  // Held while a hook runs: one at a time.
  // Waiters for group n wait on synced_[n % 2]. The end of group n's write
  // wakes all of its waiters and one of group n + 1's, which writes that
  // group; the rest of n + 1's sleep on until it is done. One is enough:
  // a group holding writes has a waiter, since a caller holds mu_ from its
  // append to its wait.
  absl::CondVar synced_[2];
  absl::CondVar branch_free_;  // A call left busy_.
  std::unique_ptr<Group> open_ ABSL_GUARDED_BY(mu_);
  // Being written, without the lock, by the call that took it.
  std::unique_ptr<Group> syncing_ ABSL_GUARDED_BY(mu_);
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;  // Groups 1..durable_ synced.
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  // Branches with a call in progress, which may wait for a sync without
  // the lock: a second call for one waits for the first to finish.
  std::set<std::pair<std::string, uint64_t>> busy_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_LEVELDB_BARRIER_H_
