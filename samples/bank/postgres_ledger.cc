#include "samples/bank/postgres_ledger.h"

#include "fmt/format.h"

namespace baton::samples {
namespace {

// SQLSTATE check_violation.
constexpr char kCheckViolation[] = "23514";

// One branch: the move it carries, as one UPDATE.
absl::Status ApplyMove(PGconn* conn, const BranchContext& branch) {
  std::string account;
  int64_t delta;
  if (!Ledger::DecodeMove(branch.application_data, &account, &delta)) {
    return absl::InvalidArgumentError("malformed move " +
                                      branch.application_data);
  }
  absl::StatusOr<PgResult> r =
      PgExec(conn, "UPDATE accounts SET balance = balance + $2 WHERE id = $1",
             {account, std::to_string(delta)});
  if (!r.ok() && PgSqlState(r.status()) == kCheckViolation) {
    return absl::FailedPreconditionError(
        fmt::format("insufficient funds: a debit of {} from {}: {}", -delta,
                    account, std::string(r.status().message())));
  }
  if (!r.ok()) return r.status();
  if (std::string_view(PQcmdTuples(r->get())) == "0") {
    return absl::NotFoundError(fmt::format("no account '{}'", account));
  }
  return absl::OkStatus();
}

// Creates the tables and, in the same transaction, seeds them if this is
// the first time: the bank_seeded row is the marker.
absl::Status CreateAndSeed(PGconn* conn,
                           const std::map<std::string, int64_t>& seed) {
  absl::StatusOr<PgResult> r = PgExec(conn, "BEGIN");
  if (r.ok()) {
    r = PgExec(conn,
               "CREATE TABLE IF NOT EXISTS accounts ("
               "  id text PRIMARY KEY,"
               "  balance bigint NOT NULL CHECK (balance >= 0))");
  }
  if (r.ok()) {
    r = PgExec(conn,
               "CREATE TABLE IF NOT EXISTS bank_seeded (seeded boolean "
               "PRIMARY KEY)");
  }
  if (r.ok()) {
    r = PgExec(conn,
               "INSERT INTO bank_seeded VALUES (true) ON CONFLICT DO NOTHING");
  }
  bool fresh = r.ok() && std::string_view(PQcmdTuples(r->get())) == "1";
  for (auto it = seed.begin(); fresh && r.ok() && it != seed.end(); ++it) {
    r = PgExec(conn, "INSERT INTO accounts VALUES ($1, $2)",
               {it->first, std::to_string(it->second)});
  }
  if (r.ok()) r = PgExec(conn, "COMMIT");
  return r.status();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresLedger>> PostgresLedger::Open(
    const Options& options) {
  absl::StatusOr<std::unique_ptr<PostgresXaResource>> xa =
      PostgresXaResource::Open({.conninfo = options.conninfo,
                                .resource = options.resource,
                                .lock_timeout = options.lock_timeout},
                               ApplyMove);
  if (!xa.ok()) return xa.status();
  absl::StatusOr<PgConn> conn = PgConnect(options.conninfo);
  if (!conn.ok()) return conn.status();
  if (absl::Status s = CreateAndSeed(conn->get(), options.seed); !s.ok()) {
    return s;
  }
  std::unique_ptr<PostgresLedger> ledger(
      new PostgresLedger(options, std::move(*xa)));
  ledger->reader_ = std::move(*conn);
  return ledger;
}

absl::StatusOr<PgResult> PostgresLedger::Read(
    const std::string& sql, const std::vector<std::string>& params) {
  std::lock_guard<std::mutex> lock(mu_);
  if (reader_ == nullptr || PQstatus(reader_.get()) != CONNECTION_OK) {
    absl::StatusOr<PgConn> conn = PgConnect(options_.conninfo);
    if (!conn.ok()) return conn.status();
    reader_ = std::move(*conn);
  }
  return PgExec(reader_.get(), sql, params);
}

absl::StatusOr<Ledger::Balance> PostgresLedger::GetBalance(
    const std::string& account) {
  absl::StatusOr<PgResult> balance =
      Read("SELECT balance FROM accounts WHERE id = $1", {account});
  if (!balance.ok()) return balance.status();
  if (PQntuples(balance->get()) == 0) {
    return absl::NotFoundError(fmt::format("no account '{}'", account));
  }
  // Every prepared branch of this resource, whichever process prepared it.
  int64_t open = static_cast<int64_t>(xa_->Recover().size());
  return Ledger::Balance{
      .balance = std::stoll(PQgetvalue(balance->get(), 0, 0)),
      .held = 0,
      .open_holds = open};
}

}  // namespace baton::samples
