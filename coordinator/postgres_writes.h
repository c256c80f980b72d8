#ifndef BATON_COORDINATOR_POSTGRES_WRITES_H_
#define BATON_COORDINATOR_POSTGRES_WRITES_H_

#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/pg_binary.h"
#include "coordinator/store.h"

// A group of StoreBatches as the few multi-row statements that write it in
// the PostgreSQL store (postgres_store.h), whatever the group's size.
namespace baton::postgres_store {

// The statements of one Apply, in the order they run.
enum WriteStatement : size_t {
  kCheckFences,  // batond_check_fences($shards, $fencings)
  kDropRecords,
  kPutRecords,
  kPutBranches,
  kDropMeta,
  kPutMeta,
  kWriteStatements
};

// Its prepared statement's name.
const char* StatementName(size_t statement);

// Prepares every one on a writing session.
absl::Status PrepareWrites(PGconn* conn);

// The parameters of each statement for `batches`, nullopt where one has
// nothing to do. Ops apply in order: what a group leaves of each record and
// meta key is what is written. kCheckFences is left to the caller.
std::vector<std::optional<pg::Params>> GroupParams(
    const std::vector<const StoreBatch*>& batches);

// The shard an xid names; -1 if it is not an xid.
int32_t ShardOf(std::string_view xid);

// The shards whose live state a batch writes, in order: every record it
// puts, and every unfinished record it drops (a forget). Dropping a
// finished record (the purge) is not fenced: a terminal record never
// changes again, so whichever node drops it drops the same thing.
std::vector<int32_t> BatchShards(const StoreBatch& batch);

}  // namespace baton::postgres_store

#endif  // BATON_COORDINATOR_POSTGRES_WRITES_H_
