#ifndef BATON_PROTOCOLS_TCC_H_
#define BATON_PROTOCOLS_TCC_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/v1/types.pb.h"
#include "protocols/two_phase.h"

// TCC on the two-phase machine. A TCC branch registers before its try runs;
// a successful try is a prepared branch, confirm is commit and cancel is
// rollback. The differences are in who gets what:
//   - cancel goes to every branch whose try may have run: succeeded, failed
//     or never reported (a try's external effects may exist even when it
//     failed, so its cancel must run);
//   - a hook's "failed, do not retry" parks the transaction as needing
//     attention instead of retrying forever.
// Both follow from two_phase's rules; these functions name them for TCC and
// add the action context.
namespace baton::tcc {

using ActionValues = std::map<std::string, std::string>;

// The branch data of a TCC branch: its serialized ActionContext.
std::string EncodeActionContext(const ActionValues& values);
// INVALID_ARGUMENT if `data` is not an ActionContext.
absl::StatusOr<ActionValues> DecodeActionContext(std::string_view data);

// Registers a TCC branch carrying `values` in an open TCC transaction.
absl::StatusOr<uint64_t> RegisterBranch(v1::Transaction* txn,
                                        const std::string& resource,
                                        const ActionValues& values,
                                        const std::string& instance_id,
                                        int64_t now_ms);

// Records a try's outcome (two_phase::ReportPhaseOne).
absl::Status ReportTry(v1::Transaction* txn, uint64_t branch_id, bool succeeded,
                       std::string_view error, int64_t now_ms);

// Confirm everything if every try succeeded, else cancel everything
// (two_phase::DecideCommit); cancel everything (two_phase::DecideRollback).
absl::Status DecideConfirm(v1::Transaction* txn, int64_t now_ms);
absl::Status DecideCancel(v1::Transaction* txn, std::string_view reason,
                          int64_t now_ms);

}  // namespace baton::tcc

#endif  // BATON_PROTOCOLS_TCC_H_
