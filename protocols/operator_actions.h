#ifndef BATON_PROTOCOLS_OPERATOR_ACTIONS_H_
#define BATON_PROTOCOLS_OPERATOR_ACTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "baton/v1/types.pb.h"

// What an operator may do to a transaction, as pure functions over its
// record. Sagas are routed to their own rules (saga.h: RetryParked,
// FinishByHand; a forced rollback of a saga running forward starts its
// compensation). Each applies its whole change, appends an
// AuditRecord naming what it changed, and returns OK; or refuses with
// FAILED_PRECONDITION (saying why, and what to do instead) and leaves the
// record untouched. Repeating an action whose effect is already in place is
// OK and changes nothing (no second audit record), so a retried admin call
// is harmless.
//
// A durable decision is never reversed: a transaction on the commit side can
// only be committed, one on the rollback side only rolled back, because
// branches may already have applied it and the caller may have been told.
namespace baton::operator_actions {

struct Request {
  std::string reason;
  // Who asked, as the client reported it (e.g. "alice@host").
  std::string actor;
  // ForceCommit of an open transaction with branches that never reported
  // phase one: treat them as prepared (the operator checked they are).
  bool override_unprepared = false;
};

// Open (BEGUN): decides commit if every branch is prepared (with the
// override, never-reported branches count as prepared; a branch whose phase
// one failed always refuses). Needs attention on the commit side: marks every
// unfinished branch committed (the operator resolved them by hand) and
// finishes the transaction. COMMITTING: refused; `retry` speeds it up.
absl::Status ForceCommit(v1::Transaction* txn, const Request& request,
                         int64_t now_ms);

// Open: decides rollback. Needs attention on the rollback side: marks every
// unfinished branch rolled back and finishes. ROLLING_BACK: refused.
absl::Status ForceRollback(v1::Transaction* txn, const Request& request,
                           int64_t now_ms);

// Phase two, including needs attention: makes every branch that answered
// "failed, do not retry" owed again, makes every owed command due now, and
// restarts the retry window; a needs-attention transaction returns to
// committing or rolling back. Refused while paused.
absl::Status RetryNow(v1::Transaction* txn, const Request& request,
                      int64_t now_ms);

// Stops (paused = true) or restarts phase-two commands. Only in phase two
// or needs attention: an open transaction's deadline is not an operator's to
// stop. Resume also makes every owed command due now.
absl::Status SetPaused(v1::Transaction* txn, bool paused,
                       const Request& request, int64_t now_ms);

// OK if the record may be dropped: terminal, or needing attention.
absl::Status CheckForgettable(const v1::Transaction& txn);

// Appends the audit record for `action` (used directly for "forget", whose
// record outlives the transaction in a tombstone). A record keeps at most
// kMaxAuditRecords: past that, the oldest retry, pause or resume makes room
// (forced outcomes and forget happen once and are always kept).
inline constexpr int kMaxAuditRecords = 64;
void AppendAudit(v1::Transaction* txn, const std::string& action,
                 const Request& request, const std::string& detail,
                 int64_t now_ms);

}  // namespace baton::operator_actions

#endif  // BATON_PROTOCOLS_OPERATOR_ACTIONS_H_
