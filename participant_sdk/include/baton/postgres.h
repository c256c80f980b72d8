#ifndef BATON_POSTGRES_H_
#define BATON_POSTGRES_H_

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Small libpq helpers for services that keep their data in PostgreSQL: what
// the PostgreSQL XA resource (postgres_xa_resource.h) and barrier
// (postgres_barrier.h) hand to the service's SQL is a plain PGconn*.
namespace baton {

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// Connects with a libpq connection string. UNAVAILABLE, naming the server,
// if the connection fails.
absl::StatusOr<PgConn> PgConnect(const std::string& conninfo);

// Runs one statement with text parameters ($1, $2, ...). Errors carry the
// SQLSTATE and PostgreSQL's message, and map to codes by what the caller can
// do about them:
//   UNAVAILABLE          the connection is lost or unusable (retry elsewhere)
//   FAILED_PRECONDITION  a constraint was violated (23xxx): the data says no
//   ABORTED              serialization failure, deadlock, lock timeout
//                        (40xxx, 55P03): retry the whole transaction
//   DEADLINE_EXCEEDED    statement_timeout cancelled it (57014)
//   NOT_FOUND            an object does not exist (42704), e.g. a gid in
//                        COMMIT PREPARED
//   INTERNAL             anything else
absl::StatusOr<PgResult> PgExec(PGconn* conn, std::string_view sql,
                                const std::vector<std::string>& params = {});

// The status PgExec gives for `result`, a result of `conn` obtained some
// other way (binary parameters, pipeline mode): OK for a command, rows or a
// pipeline's sync; ABORTED for a statement its pipeline skipped after an
// earlier one failed.
absl::Status PgCheck(PGconn* conn, const PGresult* result);

// The SQLSTATE of a status returned by PgExec ("" if it carries none).
std::string PgSqlState(const absl::Status& status);

// "host:port/dbname" of a connection, for messages (never the password).
std::string PgDescribe(PGconn* conn);

}  // namespace baton

#endif  // BATON_POSTGRES_H_
