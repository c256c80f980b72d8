#ifndef BATON_COORDINATOR_MEMORY_STORE_H_
#define BATON_COORDINATOR_MEMORY_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store.h"

namespace baton {

// A TransactionStore in memory, for unit tests of what sits on a store: it
// keeps records and meta keys as LevelDB would, and can hold writes back
// (Hold/Release) so a test sees exactly what happens before a change is
// durable. Not durable, obviously; not for production.
//
// Thread-safe.
class MemoryStore : public TransactionStore {
 public:
  absl::Status Apply(const std::vector<const StoreBatch*>& batches) override;
  absl::Status Get(const std::string& xid, v1::Transaction* txn) override;
  absl::Status ScanUnfinished(
      const std::function<bool(const v1::Transaction&)>& fn) override;
  absl::Status ScanFinished(const FinishedRef* after, int64_t cutoff_ms,
                            size_t limit,
                            std::vector<FinishedRef>* out) override;
  absl::Status GetMeta(const std::string& key, std::string* value) override;
  StoreStats Stats() const override;

  // Writes wait (in Apply) while held.
  void Hold();
  void Release();
  // Whether a write is waiting in Apply, within about a second.
  bool WriteWaiting();

 private:
  mutable absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  // As LevelDbStore keeps them: the record's own fields, its branches and
  // its saga's definition apart.
  struct Stored {
    std::string fields;
    std::map<uint64_t, std::string> branches;
    std::string definition;
  };
  bool Assemble(const Stored& stored, v1::Transaction* txn) const;
  std::map<std::string, Stored> records_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> meta_ ABSL_GUARDED_BY(mu_);
  StoreStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_COORDINATOR_MEMORY_STORE_H_
