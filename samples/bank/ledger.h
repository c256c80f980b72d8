#ifndef BATON_SAMPLES_BANK_LEDGER_H_
#define BATON_SAMPLES_BANK_LEDGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "baton/participant.h"
#include "leveldb/db.h"

namespace baton::samples {

// The accounts of one bank service, in its own LevelDB, as a 2PC resource.
//
// Prepare writes a hold record keyed by (xid, branch); Commit applies the
// hold to the balance and deletes it in one synced batch; Rollback deletes
// it. The hold record is the only marker, so every handler is idempotent: a
// repeated Commit or Rollback finds no hold and reports done.
class Ledger : public XaResource {
 public:
  // Opens (or creates) the ledger in `dir`. `seed` balances are written only
  // when the ledger is new.
  static absl::Status Open(const std::string& dir,
                           const std::map<std::string, int64_t>& seed,
                           std::unique_ptr<Ledger>* ledger);

  // What a branch carries: the account and the signed amount.
  static std::string EncodeMove(const std::string& account, int64_t delta);
  // The reverse; false if `data` is not a move.
  static bool DecodeMove(const std::string& data, std::string* account,
                         int64_t* delta);

  absl::Status Prepare(const BranchContext& branch) override;
  PhaseTwoResult Commit(const BranchContext& branch) override;
  PhaseTwoResult Rollback(const BranchContext& branch) override;
  std::vector<InDoubtBranch> Recover() override;

  struct Balance {
    int64_t balance = 0;
    int64_t held = 0;
    int64_t open_holds = 0;
  };
  absl::StatusOr<Balance> GetBalance(const std::string& account);

 private:
  explicit Ledger(std::unique_ptr<leveldb::DB> db) : db_(std::move(db)) {}
  absl::StatusOr<int64_t> ReadBalanceLocked(const std::string& account);
  PhaseTwoResult Resolve(const BranchContext& branch, bool apply);

  std::unique_ptr<leveldb::DB> db_;
  std::mutex mu_;
  std::map<std::string, int64_t> held_;  // Debits on hold, per account.
  int64_t open_holds_ = 0;
};

}  // namespace baton::samples

#endif  // BATON_SAMPLES_BANK_LEDGER_H_
