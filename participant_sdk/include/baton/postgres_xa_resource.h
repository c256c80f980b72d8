#ifndef BATON_POSTGRES_XA_RESOURCE_H_
#define BATON_POSTGRES_XA_RESOURCE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/participant.h"
#include "baton/postgres.h"

// A 2PC resource on PostgreSQL's own two-phase commit. The service's SQL for
// a branch runs inside one local transaction, which Prepare ends with
// PREPARE TRANSACTION; phase two is COMMIT PREPARED or ROLLBACK PREPARED.
// The server needs max_prepared_transactions > 0 (see docs/POSTGRESQL.md).
//
//   auto accounts = baton::PostgresXaResource::Open(
//       {.conninfo = "host=db dbname=bank", .resource = "bank-a"},
//       [](PGconn* conn, const baton::BranchContext& b) {
//         return baton::PgExec(conn, "UPDATE accounts SET ...", {...})
//             .status();
//       });
//   participant->AddXaResource("bank-a", accounts->get());
//
// Every branch is a prepared transaction with the gid
// "baton/<resource>/<branch id>/<xid>", and leaves a row in the table
// baton_branches, written in the branch's own transaction: after COMMIT
// PREPARED the row exists, after ROLLBACK PREPARED it does not. That row is
// how a repeated phase-two command tells "already committed" from "rolled
// back" once the gid is gone from pg_prepared_xacts.
namespace baton {

struct PostgresXaOptions {
  // libpq connection string of the database the branches write to. Add
  // connect_timeout=N to bound how long an unreachable server blocks.
  std::string conninfo;
  // The name the resource is served under (Participant::AddXaResource).
  // It is part of every gid, so Recover finds its own branches and no
  // other resource's: 1 to 64 characters of [A-Za-z0-9._-].
  std::string resource;
  // How long the branch's SQL waits for a row lock before the branch fails.
  // Rows written by a prepared branch stay locked until its phase two, so
  // without this a branch could wait on another global transaction that in
  // turn waits on it, and neither would ever prepare.
  std::chrono::milliseconds lock_timeout{2000};
  // Idle connections kept open for reuse.
  size_t max_idle_connections = 8;
  // Connections open at once. A branch holds one from BEGIN to PREPARE, so
  // this caps the branches in phase one together; past it a branch waits up
  // to connection_wait for one to come back, then fails RESOURCE_EXHAUSTED.
  size_t max_connections = 32;
  std::chrono::milliseconds connection_wait{5000};
  // Branch rows older than this are deleted every purge_interval, from a
  // thread of the resource's own. Keep it well beyond the coordinator's
  // retry window (see PurgeBranchesBefore); zero keeps rows forever.
  std::chrono::milliseconds branch_retention = std::chrono::hours(24 * 7);
  std::chrono::milliseconds purge_interval = std::chrono::hours(1);
};

// The service's SQL for one branch. It runs on `conn` inside the branch's
// local transaction (do not COMMIT or ROLLBACK it); an error fails the
// branch and rolls the local transaction back.
using PostgresBranchWork =
    std::function<absl::Status(PGconn* conn, const BranchContext& branch)>;

class PostgresXaResource : public XaResource {
 public:
  // Connects, checks the server can prepare transactions, and creates
  // baton_branches if missing. UNAVAILABLE if the server is unreachable;
  // FAILED_PRECONDITION, saying what to change, if max_prepared_transactions
  // is 0; INVALID_ARGUMENT for a bad resource name.
  static absl::StatusOr<std::unique_ptr<PostgresXaResource>> Open(
      const PostgresXaOptions& options, PostgresBranchWork work);
  ~PostgresXaResource() override;

  // The gid of a branch of this resource, or nullopt if it would exceed
  // PostgreSQL's limit of 199 bytes (the xid is too long).
  std::optional<std::string> Gid(const std::string& xid,
                                 uint64_t branch_id) const;

  // BEGIN, the branch row, the service's work, PREPARE TRANSACTION. An
  // error from the work is returned as is (a constraint violation is
  // FAILED_PRECONDITION); so is a deferred constraint that fails PREPARE
  // itself, with its SQLSTATE (PgSqlState). Nothing stays prepared after an
  // error.
  absl::Status Prepare(const BranchContext& branch) override;
  // COMMIT PREPARED. If the gid is gone: DONE when the branch row shows it
  // committed, FAILED when it does not (it was rolled back, so it can never
  // commit). RETRY while the server is unreachable.
  PhaseTwoResult Commit(const BranchContext& branch) override;
  // ROLLBACK PREPARED. If the gid is gone: DONE when there is no branch row
  // (rolled back before, or never prepared), FAILED when there is one (it
  // committed, so it can never roll back).
  PhaseTwoResult Rollback(const BranchContext& branch) override;
  // This resource's gids in pg_prepared_xacts of its database, whichever
  // process prepared them. Empty (and logged) if the server is unreachable;
  // the next attach lists them again.
  std::vector<InDoubtBranch> Recover() override;

  // Deletes branch rows older than `cutoff_unix_ms` (the resource also does
  // so by itself, see branch_retention), after which a repeated
  // commit of those branches would be answered FAILED: keep them longer
  // than the coordinator's retry window. Returns how many were deleted.
  absl::StatusOr<size_t> PurgeBranchesBefore(int64_t cutoff_unix_ms);

 private:
  class Impl;
  explicit PostgresXaResource(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace baton

#endif  // BATON_POSTGRES_XA_RESOURCE_H_
