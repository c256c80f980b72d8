#ifndef BATON_PARTICIPANT_SDK_INTERNAL_POSTGRES_POOL_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_POSTGRES_POOL_H_

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "baton/postgres.h"
#include "common/steady_cond_var.h"

namespace baton::internal {

struct PgPoolLimits {
  // Idle connections kept open for reuse.
  size_t max_idle = 8;
  // Connections open at once, lent out or idle; past it Acquire waits.
  size_t max_open = 32;
  // How long Acquire waits for a connection to come back.
  std::chrono::milliseconds acquire_timeout{5000};
};

// Connections to one database, reused across branches. A connection is
// lent out whole, so a branch's local transaction owns it from BEGIN to
// PREPARE. At most `max_open` exist at once, so a burst of branches queues
// here instead of running the server out of connection slots. Thread-safe.
class PgPool {
 public:
  class Lease;

  PgPool(std::string conninfo, PgPoolLimits limits)
      : conninfo_(std::move(conninfo)), limits_(limits) {}
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // An idle connection, or a new one. UNAVAILABLE if the server cannot be
  // reached; RESOURCE_EXHAUSTED if all max_open stayed lent out for the
  // whole acquire_timeout.
  absl::StatusOr<Lease> Acquire();

 private:
  // Takes back a lent connection: kept idle if `reusable` and there is
  // room, closed otherwise.
  void Release(PgConn conn, bool reusable);

  const std::string conninfo_;
  const PgPoolLimits limits_;
  absl::Mutex mu_;
  SteadyCondVar released_;
  std::vector<PgConn> idle_ ABSL_GUARDED_BY(mu_);
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;  // Lent out or idle.
};

// A borrowed connection. It goes back to the pool on destruction only if it
// is healthy and outside any transaction; otherwise it is closed, which also
// aborts whatever transaction it had open.
class PgPool::Lease {
 public:
  Lease(PgPool* pool, PgConn conn) : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&&) = default;
  // Would close the connection it overwrites behind the pool's back.
  Lease& operator=(Lease&&) = delete;
  ~Lease();

  PGconn* get() const { return conn_.get(); }

 private:
  PgPool* pool_;
  PgConn conn_;
};

// Unless `table` is already visible on the search_path, runs `statements`
// (CREATE ... IF NOT EXISTS) in one transaction under an advisory lock, so
// that processes starting together against a new database do not collide
// creating the same tables. An existing table needs no CREATE privilege.
absl::Status CreateTablesOnce(PGconn* conn, const std::string& table,
                              const std::vector<std::string_view>& statements);

// `text` as a quoted SQL literal, for statements that take no parameters
// (PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED).
// RESOURCE_EXHAUSTED if libpq runs out of memory.
absl::StatusOr<std::string> PgLiteral(PGconn* conn, const std::string& text);

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_POSTGRES_POOL_H_
