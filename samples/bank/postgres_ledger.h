#ifndef BATON_SAMPLES_BANK_POSTGRES_LEDGER_H_
#define BATON_SAMPLES_BANK_POSTGRES_LEDGER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "baton/postgres_xa_resource.h"
#include "samples/bank/ledger.h"

namespace baton::samples {

// The accounts of one bank service in its own PostgreSQL database, joined to
// global transactions through PostgreSQL's two-phase commit.
//
// Table accounts(id, balance CHECK (balance >= 0)). A branch's move is one
// UPDATE inside the branch's local transaction, which the SDK prepares: a
// debit that would overdraw violates the check and fails the branch at
// prepare. Until phase two the row stays locked by the prepared transaction
// and readers see the old balance. The hold lives inside PostgreSQL, so
// GetBalance reports `held` as 0 and `open_holds` as the number of this
// resource's prepared transactions.
class PostgresLedger {
 public:
  struct Options {
    std::string conninfo;  // libpq connection string of the database.
    std::string resource;  // The Baton resource name it serves.
    // Applied only when the database has never been seeded.
    std::map<std::string, int64_t> seed;
    std::chrono::milliseconds lock_timeout{2000};
  };

  // Connects, creates the tables if missing, and seeds a new database.
  // FAILED_PRECONDITION if the server cannot prepare transactions.
  static absl::StatusOr<std::unique_ptr<PostgresLedger>> Open(
      const Options& options);

  // The resource to add to the participant.
  XaResource* resource() { return xa_.get(); }

  absl::StatusOr<Ledger::Balance> GetBalance(const std::string& account);

 private:
  PostgresLedger(Options options, std::unique_ptr<PostgresXaResource> xa)
      : options_(std::move(options)), xa_(std::move(xa)) {}
  absl::StatusOr<PgResult> Read(const std::string& sql,
                                const std::vector<std::string>& params);

  const Options options_;
  std::unique_ptr<PostgresXaResource> xa_;
  std::mutex mu_;
  PgConn reader_;  // For GetBalance; reconnected when lost. Guarded by mu_.
};

}  // namespace baton::samples

#endif  // BATON_SAMPLES_BANK_POSTGRES_LEDGER_H_
