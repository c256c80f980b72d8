#ifndef BATON_COORDINATOR_RECOVERY_HOOKS_H_
#define BATON_COORDINATOR_RECOVERY_HOOKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "baton/v1/participant_service.pb.h"
#include "coordinator/xid.h"

namespace baton {

// What the core asks of recovery/, which implements these; the core never
// includes recovery/ itself.

// Where a table asks for timed work on a record: the shard's recovery
// schedule. Called under the table's lock: must not block or call back.
// Thread-safe.
class Wakeups {
 public:
  virtual ~Wakeups() = default;
  // Keyed by RecordKey, not xid: an entry per live transaction, so it must
  // cost no allocation of its own.
  virtual void WakeAt(RecordKey record, int64_t when_ms) = 0;
  // The record left memory: nothing more is due for it. Without this the
  // schedule would hold every transaction begun within a deadline's length.
  virtual void Forget(RecordKey record) = 0;
};

// Answers a participant's in-doubt branches whose transactions are not in
// memory, from the store. Must not block the caller. Thread-safe.
class StoredInDoubt {
 public:
  virtual ~StoredInDoubt() = default;
  virtual void Resolve(const std::string& instance_id,
                       std::vector<v1::InDoubtBranch> branches) = 0;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_RECOVERY_HOOKS_H_
