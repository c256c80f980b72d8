#include "baton/postgres.h"

#include "absl/strings/cord.h"
#include "fmt/format.h"

namespace baton {
namespace {

// The status payload that carries a statement's SQLSTATE.
constexpr char kSqlStatePayload[] = "baton.postgres/sqlstate";

absl::StatusCode CodeFor(std::string_view sqlstate) {
  if (sqlstate.starts_with("08")) return absl::StatusCode::kUnavailable;
  if (sqlstate.starts_with("23")) return absl::StatusCode::kFailedPrecondition;
  if (sqlstate.starts_with("40") || sqlstate == "55P03") {
    return absl::StatusCode::kAborted;
  }
  if (sqlstate == "57014") return absl::StatusCode::kDeadlineExceeded;
  // Admin shutdown and friends: the server is going away.
  if (sqlstate.starts_with("57P")) return absl::StatusCode::kUnavailable;
  if (sqlstate == "42704") return absl::StatusCode::kNotFound;
  return absl::StatusCode::kInternal;
}

// PostgreSQL's messages end with a newline; statuses read better without.
std::string Trimmed(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

}  // namespace

std::string PgDescribe(PGconn* conn) {
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  const char* db = PQdb(conn);
  return fmt::format("{}:{}/{}", host ? host : "?", port ? port : "?",
                     db ? db : "?");
}

absl::StatusOr<PgConn> PgConnect(const std::string& conninfo) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (conn == nullptr) {
    return absl::ResourceExhaustedError(
        "libpq could not allocate a connection");
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(fmt::format(
        "cannot connect to PostgreSQL at {}: {}", PgDescribe(conn.get()),
        Trimmed(PQerrorMessage(conn.get()))));
  }
  // Notices ("relation already exists, skipping") are not errors, and libpq
  // would print them to stderr.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

absl::StatusOr<PgResult> PgExec(PGconn* conn, std::string_view sql,
                                const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) values.push_back(p.c_str());
  std::string statement(sql);
  PgResult result(PQexecParams(conn, statement.c_str(),
                               static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
  if (absl::Status s = PgCheck(conn, result.get()); !s.ok()) return s;
  return result;
}

absl::Status PgCheck(PGconn* conn, const PGresult* result) {
  ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ||
      status == PGRES_PIPELINE_SYNC) {
    return absl::OkStatus();
  }
  if (status == PGRES_PIPELINE_ABORTED) {
    return absl::AbortedError(
        "skipped: an earlier statement of its pipeline failed");
  }
  const char* state =
      result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (state == nullptr || PQstatus(conn) != CONNECTION_OK) {
    return absl::UnavailableError(
        fmt::format("PostgreSQL at {} is unreachable: {}", PgDescribe(conn),
                    Trimmed(PQerrorMessage(conn))));
  }
  std::string message =
      Trimmed(PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY));
  const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
  if (detail != nullptr) message += fmt::format(" ({})", Trimmed(detail));
  absl::Status error(CodeFor(state),
                     fmt::format("SQLSTATE {}: {}", state, message));
  error.SetPayload(kSqlStatePayload, absl::Cord(state));
  return error;
}

std::string PgSqlState(const absl::Status& status) {
  auto state = status.GetPayload(kSqlStatePayload);
  return state ? std::string(*state) : "";
}

}  // namespace baton
