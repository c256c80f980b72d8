#ifndef BATON_COORDINATOR_POSTGRES_STORE_H_
#define BATON_COORDINATOR_POSTGRES_STORE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "coordinator/shard_fences.h"
#include "coordinator/store.h"

namespace baton {

// Opens a TransactionStore kept in the PostgreSQL database `conninfo` (a
// libpq connection string) names, creating its tables on first use: so
// several batond nodes can share one store (docs/CLUSTER.md).
//
// Tables (all prefixed batond_; the SDK's PostgreSQL tables are baton_):
//   transactions  one row per record: its own fields, a saga's definition,
//                 and what the indexes need (shard, terminal, due, finished)
//   branches      one row per branch, keyed (xid, branch_id)
//   meta          key/value, as StoreBatch::PutMeta writes them
//   shard_leases  one row per shard: owner, fencing number, lease expiry
//   nodes         one row per node: its address and heartbeat expiry
// Each query the store makes is an index scan: a record by xid, a shard's
// unfinished records by due time, finished records by when they finished.
//
// Apply is one database transaction per call, with every batch's rows sent
// as arrays (a handful of statements whatever the group's size) in one
// round trip; it returns once COMMIT succeeded, so under the server's
// synchronous_commit. A session whose synchronous_commit is off is turned
// back on, with a warning: the store never acknowledges a change the
// server could still lose.
//
// Fail-stop like the LevelDB store: a failed or unknown commit (the
// connection dropped in flight) makes every later Apply fail with it.
// Reads use their own connections, opened again when one drops.
//
// UNAVAILABLE if the server cannot be reached; FAILED_PRECONDITION if the
// database holds a store of another format.
//
// With `fences` (which must outlive the store), every Apply is for shards
// leased here: the database transaction first checks, under a lock on
// their lease rows, that each fencing number is still the shard's, and a
// write for a shard not in `fences` is refused before anything is sent.
// Either refusal is FAILED_PRECONDITION naming the shards, with nothing
// written, and does not stop the store.
absl::Status OpenPostgresStore(const std::string& conninfo,
                               std::unique_ptr<TransactionStore>* store,
                               const ShardFences* fences = nullptr);

}  // namespace baton

#endif  // BATON_COORDINATOR_POSTGRES_STORE_H_
