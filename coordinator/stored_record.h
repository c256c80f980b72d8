#ifndef BATON_COORDINATOR_STORED_RECORD_H_
#define BATON_COORDINATOR_STORED_RECORD_H_

#include <string_view>

#include "absl/status/status.h"
#include "baton/v1/types.pb.h"

namespace baton {

// Reassembling a record from what a backend keeps: its own fields, then its
// branches in id order, then a saga's definition (StoreBatch::Op's parts).
// Every backend makes the same checks, so damage reads as the same
// DATA_LOSS whatever holds it. `where` names the place read, for the
// message ("t/0-1-7", "baton_transactions row 0-1-7").

// Parses a record's own fields into *txn, which must belong to `xid` and
// hold no branches (they are kept apart).
absl::Status ParseStoredRecord(std::string_view xid, std::string_view bytes,
                               std::string_view where, v1::Transaction* txn);

// Appends the next branch. Ids are 1..n in order and the protocols find a
// branch by its position, so a gap or a stray is damage.
absl::Status AppendStoredBranch(std::string_view bytes, std::string_view where,
                                v1::Transaction* txn);

// Sets a saga's definition.
absl::Status ParseStoredDefinition(std::string_view bytes,
                                   std::string_view where,
                                   v1::Transaction* txn);

// `key` with bytes outside printable ASCII escaped, cut at 200 characters:
// safe to put in a message.
std::string Printable(std::string_view key);

}  // namespace baton

#endif  // BATON_COORDINATOR_STORED_RECORD_H_
