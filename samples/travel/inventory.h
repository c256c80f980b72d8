#ifndef BATON_SAMPLES_TRAVEL_INVENTORY_H_
#define BATON_SAMPLES_TRAVEL_INVENTORY_H_

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "baton/leveldb_barrier.h"
#include "baton/saga.h"
#include "leveldb/db.h"

namespace baton::samples {

// Bookable units per key as saga steps: the action books units (available
// to booked), the compensation gives them back. available + booked never
// changes. Units and the barrier share one LevelDB, so a step's writes
// commit atomically with its barrier record.
//
// If a journal file is given, every applied action and compensation appends
// a line "<resource> act|compensate <xid> <step> <key>", so a demo (or a
// test) can see the order steps ran in across services.
class Inventory : public SagaResource {
 public:
  struct Level {
    int64_t available = 0, booked = 0;
  };

  static absl::Status Open(const std::string& dir, std::string resource,
                           const std::map<std::string, int64_t>& seed,
                           const std::string& journal_path,
                           std::unique_ptr<Inventory>* inventory);
  ~Inventory() override;

  BarrierStore* barrier() { return &barrier_; }
  Level GetLevel(const std::string& key);

  PhaseTwoResult Act(const SagaStepContext& step,
                     LocalTransaction& local) override;
  PhaseTwoResult Compensate(const SagaStepContext& step,
                            LocalTransaction& local) override;

 private:
  Inventory(std::unique_ptr<leveldb::DB> db, std::string resource,
            FILE* journal)
      : db_(std::move(db)),
        barrier_(db_.get()),
        resource_(std::move(resource)),
        journal_(journal) {}
  void Journal(const char* what, const SagaStepContext& step,
               const std::string& key);

  std::unique_ptr<leveldb::DB> db_;
  LevelDbBarrier barrier_;
  const std::string resource_;
  FILE* const journal_;  // May be null.
  std::mutex journal_mu_;
};

}  // namespace baton::samples

#endif  // BATON_SAMPLES_TRAVEL_INVENTORY_H_
