#ifndef BATON_COORDINATOR_LIVE_TRANSACTION_H_
#define BATON_COORDINATOR_LIVE_TRANSACTION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "baton/v1/types.pb.h"
#include "coordinator/xid.h"

namespace baton {

// Answers a call with the record as it was when the answer was allowed.
using Done = std::function<void(const absl::Status&, const v1::Transaction&)>;

// A command a driver wants sent. It goes out once every write queued for its
// record before it was queued is durable (see TransactionTable).
struct Outgoing {
  uint64_t branch_id = 0;  // A saga step's is its index + 1.
  v1::BranchAction action = v1::BRANCH_ACTION_UNSPECIFIED;
  uint64_t after_write = 0;  // Set by the table.
};

// What a driver asks the table to do once its change to a record is made.
struct Effects {
  // The record changed: write it whole. A change that knows what it touched
  // says so with WriteHeader or WriteBranch instead, so that only that is
  // written.
  bool persist = false;
  bool narrow = false;             // WriteHeader or WriteBranch was called.
  std::vector<uint64_t> branches;  // Branches they touched.
  std::vector<Outgoing> send;

  // Only the record's own fields changed (status, deadlines, saga steps).
  void WriteHeader() { narrow = true; }
  // Those and branch `branch_id`.
  void WriteBranch(uint64_t branch_id) {
    narrow = true;
    branches.push_back(branch_id);
  }
  bool writes() const { return persist || narrow; }
  void Send(uint64_t branch_id, v1::BranchAction action) {
    send.push_back({.branch_id = branch_id, .action = action});
  }
};

// One unfinished transaction in memory: its record and what the coordinator
// knows of it beyond the record. Owned by a TransactionTable and touched
// only under its lock.
struct LiveTransaction {
  struct Delivery {
    uint64_t command_id = 0;  // Of the command in flight; 0 if none.
    int64_t overdue_ms = 0;   // When it counts as unanswered; 0: never.
  };
  struct Waiter {
    uint64_t id = 0;
    int64_t deadline_ms = 0;
    Done reply;
  };

  v1::Transaction record;
  RecordKey key;               // Of record.xid().
  int64_t persisted_due = -1;  // next_action_unix_ms of the last queued write.
  // Adopted after a restart; the schedule has not resumed it yet, so nothing
  // is sent for it.
  bool resume_pending = false;
  // Whether a write carrying a decision (any status past BEGUN) is durable.
  bool decision_durable = false;
  // The record holds a change no queued write carries (a DONE riding along
  // with the next write).
  bool unwritten = false;
  // What changed since the last queued write: everything, or the record's
  // own fields and these branches.
  bool dirty_all = true;
  std::vector<uint64_t> dirty_branches;
  bool definition_stored = false;  // A saga's definition is on its way.
  uint64_t writes_queued = 0;      // Numbers this record's writes.
  uint64_t writes_durable = 0;     // The last of them on disk.
  std::unordered_map<uint64_t, Delivery> deliveries;  // By branch id.
  std::vector<Waiter> waiters;
  // At most one entry per branch: a newer command replaces an unsent one.
  std::vector<Outgoing> outbox;

  // Whether a command for the branch is in flight or waiting to go.
  bool Owes(uint64_t branch_id) const {
    auto it = deliveries.find(branch_id);
    if (it != deliveries.end() && it->second.command_id != 0) return true;
    for (const Outgoing& o : outbox) {
      if (o.branch_id == branch_id) return true;
    }
    return false;
  }
};

}  // namespace baton

#endif  // BATON_COORDINATOR_LIVE_TRANSACTION_H_
