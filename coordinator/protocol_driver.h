#ifndef BATON_COORDINATOR_PROTOCOL_DRIVER_H_
#define BATON_COORDINATOR_PROTOCOL_DRIVER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/v1/participant_service.pb.h"
#include "baton/v1/transaction_service.pb.h"
#include "coordinator/live_transaction.h"
#include "protocols/two_phase.h"

namespace baton {

// How one protocol moves its transactions: the only place that knows what a
// protocol's record means. The table (protocol-neutral) calls a driver with
// its lock held, so a driver never blocks and never calls back into the
// table; it changes the record through protocols/ and says in Effects what
// to write and send. `now` is the table's timeline.
//
// Implementations are stateless apart from their options: one instance
// serves every shard.
class ProtocolDriver {
 public:
  // A command ready to go, built at release time from the record as it is
  // then.
  struct Release {
    enum Kind { kSend, kDrop, kKeep } kind = kDrop;
    v1::BranchCommand command;     // kSend: all but command_id.
    std::string instance;          // kSend: the preferred participant.
    int64_t answer_within_ms = 0;  // kSend: 0 for no deadline.
    std::string attempt_label;     // kSend: the attempts metric's action.
  };

  virtual ~ProtocolDriver() = default;

  // When the record next needs timed work (its next_action_unix_ms).
  virtual int64_t NextActionTime(const v1::Transaction& record) const = 0;

  // The meta key under which the record's idempotency key outlives its
  // stay in memory, until the purge; "" for none.
  virtual std::string DurableKey(const v1::Transaction& record) const = 0;

  // After a change by a caller or operator: queue whatever may go now.
  virtual void Advance(LiveTransaction* t, int64_t now, Effects* fx) = 0;

  // The caller's verdict on an open transaction.
  virtual absl::Status Decide(v1::Transaction* record, bool commit,
                              const std::string& reason, int64_t now) = 0;

  // Phase one, for protocols whose participants register branches: a new
  // branch's id, and a branch's report of its local outcome.
  virtual absl::StatusOr<uint64_t> RegisterBranch(v1::Transaction* record,
                                                  two_phase::NewBranch branch,
                                                  int64_t now) = 0;
  virtual absl::Status ReportBranch(v1::Transaction* record,
                                    const v1::ReportBranchRequest& request,
                                    int64_t now) = 0;

  // A write of the record is durable; `status` is what it carried.
  virtual void OnDurable(LiveTransaction* t, v1::GlobalStatus status,
                         int64_t now, Effects* fx) = 0;

  // Builds the command for an outbox entry, or says it is moot (kDrop) or
  // must wait for a participant (kKeep).
  virtual Release Prepare(const LiveTransaction& t, const Outgoing& o,
                          int64_t now) = 0;

  // A participant's answer to the command in flight (or a stale one).
  virtual void OnResult(LiveTransaction* t, const v1::BranchResult& result,
                        int64_t now, Effects* fx) = 0;

  // The session carrying the command ended unanswered.
  virtual void OnLost(LiveTransaction* t, uint64_t branch_id, int64_t now,
                      Effects* fx) = 0;

  // Participants serving `resources` attached: what waited for them goes.
  virtual void OnAttached(LiveTransaction* t,
                          const std::set<std::string>& resources, int64_t now,
                          Effects* fx) = 0;

  // A participant reported the branch in doubt: its owed command goes now.
  virtual void OnInDoubt(LiveTransaction* t, uint64_t branch_id, int64_t now,
                         Effects* fx) = 0;

  // Loaded after a restart: make the record safe before anyone sees it (an
  // open two-phase transaction is rolled back).
  virtual void Adopt(LiveTransaction* t, int64_t now, Effects* fx) = 0;

  // The schedule resumes an adopted record: what was in flight goes again.
  virtual void Resume(LiveTransaction* t, int64_t now, Effects* fx) = 0;

  // Timed work due at `now`: deadlines, retries, overdue answers, the retry
  // window.
  virtual void OnDue(LiveTransaction* t, int64_t now, Effects* fx) = 0;

  // Sends every owed command now, backoff or not (an operator's retry or
  // resume).
  virtual void Kick(LiveTransaction* t, int64_t now, Effects* fx) = 0;

  // Counts into `by_resource` the owed commands neither in flight nor
  // queued to go, under the resource each is for; returns how many.
  virtual uint64_t AddBacklog(
      const LiveTransaction& t, int64_t now,
      std::map<std::string, uint64_t>* by_resource) const = 0;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_PROTOCOL_DRIVER_H_
