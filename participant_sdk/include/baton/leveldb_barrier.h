#ifndef BATON_LEVELDB_BARRIER_H_
#define BATON_LEVELDB_BARRIER_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/barrier.h"
#include "leveldb/db.h"
#include "leveldb/write_batch.h"

namespace baton {

// A barrier kept in the service's own LevelDB, beside its business data,
// under keys starting "barrier/". Hooks add their writes to the batch that
// also carries the barrier record; it is written with sync.
//
//   absl::Status Try(const TccContext& c, LocalTransaction& local) override {
//     leveldb::WriteBatch* batch = LevelDbBarrier::Batch(local);
//     batch->Put("held/" + c.action.at("sku"), ...);
//     return absl::OkStatus();
//   }
//
// Hooks run one at a time, so a hook may read a key from the DB and write it
// back through the batch without racing another hook.
class LevelDbBarrier : public BarrierStore {
 public:
  // `db` must outlive this object.
  explicit LevelDbBarrier(leveldb::DB* db) : db_(db) {}

  // The batch a hook writes through, and the DB it may read from.
  static leveldb::WriteBatch* Batch(LocalTransaction& local);
  static leveldb::DB* Db(LocalTransaction& local);

  absl::StatusOr<BarrierResult> Run(const BarrierCall& call,
                                    const BarrierHook& hook) override;
  std::vector<std::pair<std::string, uint64_t>> Unresolved() override;
  absl::StatusOr<size_t> PurgeResolvedBefore(int64_t cutoff_unix_ms) override;

 private:
  absl::StatusOr<BarrierResult> RunLocked(const BarrierCall& call,
                                          const BarrierHook& hook)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Write(leveldb::WriteBatch* batch);

  leveldb::DB* const db_;
  absl::Mutex mu_;  // One hook at a time.
};

}  // namespace baton

#endif  // BATON_LEVELDB_BARRIER_H_
