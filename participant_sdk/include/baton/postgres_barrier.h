#ifndef BATON_POSTGRES_BARRIER_H_
#define BATON_POSTGRES_BARRIER_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "baton/barrier.h"
#include "baton/postgres.h"

// A TCC barrier kept in the service's own PostgreSQL database, in the table
// baton_barrier. Each hook runs inside the PostgreSQL transaction that also
// writes the barrier record, so both commit together or not at all.
//
//   absl::Status Try(const TccContext& c, LocalTransaction& local) override {
//     return baton::PgExec(baton::PostgresBarrier::Conn(local),
//                          "UPDATE stock SET held = held + $1 WHERE sku = $2",
//                          {c.action.at("units"), c.action.at("sku")})
//         .status();
//   }
//
// Calls for one branch are serialised by a transaction-scoped advisory lock,
// so several processes may share the table.
namespace baton {

struct PostgresBarrierOptions {
  // libpq connection string of the service's database.
  std::string conninfo;
  // Idle connections kept open for reuse. A hook holds one from its BEGIN
  // to its COMMIT, so a service with more hooks at once than this opens and
  // closes connections under load.
  size_t max_idle_connections = 8;
  // Connections open at once; past it a hook waits up to connection_wait
  // for one to come back, then fails RESOURCE_EXHAUSTED.
  size_t max_connections = 32;
  std::chrono::milliseconds connection_wait{5000};
};

class PostgresBarrier : public BarrierStore {
 public:
  // Connects with `conninfo` and creates baton_barrier if missing.
  // UNAVAILABLE if the server cannot be reached.
  static absl::StatusOr<std::unique_ptr<PostgresBarrier>> Open(
      const std::string& conninfo);
  static absl::StatusOr<std::unique_ptr<PostgresBarrier>> Open(
      const PostgresBarrierOptions& options);
  ~PostgresBarrier() override;

  // The connection a hook writes through, inside the open transaction. Do
  // not COMMIT or ROLLBACK it: return an error to abort instead.
  static PGconn* Conn(LocalTransaction& local);

  absl::StatusOr<BarrierResult> Run(const BarrierCall& call,
                                    const BarrierHook& hook) override;
  // Empty (and logged) if the server cannot be reached.
  std::vector<std::pair<std::string, uint64_t>> Unresolved() override;
  absl::StatusOr<size_t> PurgeResolvedBefore(int64_t cutoff_unix_ms) override;

 private:
  class Impl;
  explicit PostgresBarrier(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace baton

#endif  // BATON_POSTGRES_BARRIER_H_
