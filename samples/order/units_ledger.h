#ifndef BATON_SAMPLES_ORDER_UNITS_LEDGER_H_
#define BATON_SAMPLES_ORDER_UNITS_LEDGER_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "baton/leveldb_barrier.h"
#include "baton/tcc.h"
#include "leveldb/db.h"

namespace baton::samples {

// Units per key (stock per SKU, cents per account) as a TCC resource:
// try moves units from available to held, confirm from held to spent,
// cancel from held back to available. available + held + spent never
// changes. Business keys and the barrier share one LevelDB, so each hook's
// writes commit atomically with its barrier record.
class UnitsLedger : public TccResource {
 public:
  struct Level {
    int64_t available = 0, held = 0, spent = 0;
  };

  static absl::Status Open(const std::string& dir,
                           const std::map<std::string, int64_t>& seed,
                           std::unique_ptr<UnitsLedger>* ledger);

  BarrierStore* barrier() { return &barrier_; }
  absl::StatusOr<Level> GetLevel(const std::string& key);

  absl::Status Try(const TccContext& branch, LocalTransaction& local) override;
  // The try writes only through `local`. Tests turn this off to run the
  // barrier's path for tries that act outside it. Only before serving.
  bool TryIsLocal() const override { return try_is_local_; }
  void set_try_is_local(bool local) { try_is_local_ = local; }
  PhaseTwoResult Confirm(const TccContext& branch,
                         LocalTransaction& local) override;
  PhaseTwoResult Cancel(const TccContext& branch,
                        LocalTransaction& local) override;

 private:
  explicit UnitsLedger(std::unique_ptr<leveldb::DB> db)
      : db_(std::move(db)), barrier_(db_.get()) {}

  std::unique_ptr<leveldb::DB> db_;
  LevelDbBarrier barrier_;
  bool try_is_local_ = true;
};

}  // namespace baton::samples

#endif  // BATON_SAMPLES_ORDER_UNITS_LEDGER_H_
