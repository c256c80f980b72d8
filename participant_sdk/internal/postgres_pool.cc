#include "participant_sdk/internal/postgres_pool.h"

namespace baton::internal {

absl::StatusOr<PgPool::Lease> PgPool::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!idle_.empty()) {
      PgConn conn = std::move(idle_.back());
      idle_.pop_back();
      // A server restart breaks idle connections; libpq notices only on use,
      // so drop the ones it already knows are dead.
      if (PQstatus(conn.get()) == CONNECTION_OK) {
        return Lease(this, std::move(conn));
      }
    }
  }
  absl::StatusOr<PgConn> conn = PgConnect(conninfo_);
  if (!conn.ok()) return conn.status();
  return Lease(this, std::move(*conn));
}

void PgPool::Return(PgConn conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(conn));
}

PgPool::Lease::~Lease() {
  if (conn_ == nullptr) return;  // Moved from.
  if (PQstatus(conn_.get()) == CONNECTION_OK &&
      PQtransactionStatus(conn_.get()) == PQTRANS_IDLE) {
    pool_->Return(std::move(conn_));
  }
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
