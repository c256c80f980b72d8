#ifndef BATON_COORDINATOR_POSTGRES_SCHEMA_H_
#define BATON_COORDINATOR_POSTGRES_SCHEMA_H_

#include <libpq-fe.h>

#include "absl/status/status.h"

// The tables of batond's PostgreSQL store (postgres_store.h) and what a
// session of it needs. Errors as baton/postgres.h's.
namespace baton::postgres_store {

// Creates the tables and functions where missing (under an advisory lock,
// so nodes starting together do not collide) and records or checks the
// format: FAILED_PRECONDITION if the database holds another.
absl::Status EnsureSchema(PGconn* conn);

// Durability is the server's: a session that would not wait for the WAL
// flush gets it back, with a warning.
absl::Status RequireSynchronousCommit(PGconn* conn);

}  // namespace baton::postgres_store

#endif  // BATON_COORDINATOR_POSTGRES_SCHEMA_H_
