#include "participant_sdk/internal/postgres_pool.h"

#include "fmt/format.h"

namespace baton::internal {

absl::StatusOr<PgPool::Lease> PgPool::Acquire() {
  auto deadline = SteadyCondVar::Clock::now() + limits_.acquire_timeout;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      while (!idle_.empty()) {
        PgConn conn = std::move(idle_.back());
        idle_.pop_back();
        // A server restart breaks idle connections; libpq notices only on
        // use, so drop the ones it already knows are dead.
        if (PQstatus(conn.get()) == CONNECTION_OK) {
          return Lease(this, std::move(conn));
        }
        --open_;
        released_.SignalAll();  // A slot others may be waiting for.
      }
      if (open_ < limits_.max_open) break;
      if (!released_.WaitUntil(&mu_, deadline) && idle_.empty() &&
          open_ >= limits_.max_open) {
        return absl::ResourceExhaustedError(fmt::format(
            "all {} connections to the database stayed in use for {} ms; "
            "raise the pool's connection limit or lower the service's "
            "concurrency",
            limits_.max_open, limits_.acquire_timeout.count()));
      }
    }
    ++open_;
  }
  absl::StatusOr<PgConn> conn = PgConnect(conninfo_);
  if (!conn.ok()) {
    Release(nullptr, false);
    return conn.status();
  }
  return Lease(this, std::move(*conn));
}

void PgPool::Release(PgConn conn, bool reusable) {
  {
    absl::MutexLock lock(&mu_);
    if (reusable && idle_.size() < limits_.max_idle) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
  }
  released_.Signal();
  // A connection not kept closes here, outside the lock.
}

PgPool::Lease::~Lease() {
  if (conn_ == nullptr) return;  // Moved from.
  bool reusable = PQstatus(conn_.get()) == CONNECTION_OK &&
                  PQtransactionStatus(conn_.get()) == PQTRANS_IDLE;
  pool_->Release(std::move(conn_), reusable);
}

absl::Status CreateTablesOnce(PGconn* conn, const std::string& table,
                              const std::vector<std::string_view>& statements) {
  absl::StatusOr<PgResult> exists =
      PgExec(conn, "SELECT to_regclass($1) IS NOT NULL", {table});
  if (!exists.ok()) return exists.status();
  if (std::string_view(PQgetvalue(exists->get(), 0, 0)) == "t") {
    return absl::OkStatus();
  }
  // Any fixed key works; this one spells "baton".
  constexpr char kSchemaLock[] = "SELECT pg_advisory_xact_lock(422827093870)";
  absl::StatusOr<PgResult> r = PgExec(conn, "BEGIN");
  if (r.ok()) r = PgExec(conn, kSchemaLock);
  for (std::string_view statement : statements) {
    if (r.ok()) r = PgExec(conn, statement);
  }
  if (r.ok()) r = PgExec(conn, "COMMIT");
  if (!r.ok()) {
    PgExec(conn, "ROLLBACK").IgnoreError();
    return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PgLiteral(PGconn* conn, const std::string& text) {
  char* quoted = PQescapeLiteral(conn, text.data(), text.size());
  if (quoted == nullptr) {
    return absl::ResourceExhaustedError(PQerrorMessage(conn));
  }
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

}  // namespace baton::internal
