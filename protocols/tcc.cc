#include "protocols/tcc.h"

namespace baton::tcc {

std::string EncodeActionContext(const ActionValues& values) {
  v1::ActionContext context;
  for (const auto& [key, value] : values)
    (*context.mutable_values())[key] = value;
  return context.SerializeAsString();
}

absl::StatusOr<ActionValues> DecodeActionContext(std::string_view data) {
  v1::ActionContext context;
  if (!context.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return absl::InvalidArgumentError("branch data is not an ActionContext");
  }
  return ActionValues(context.values().begin(), context.values().end());
}

absl::StatusOr<uint64_t> RegisterBranch(v1::Transaction* txn,
                                        const std::string& resource,
                                        const ActionValues& values,
                                        const std::string& instance_id,
                                        int64_t now_ms) {
  return two_phase::RegisterBranch(
      txn,
      {.resource = resource,
       .type = v1::BRANCH_TYPE_TCC,
       .application_data = EncodeActionContext(values),
       .instance_id = instance_id},
      now_ms);
}

absl::Status ReportTry(v1::Transaction* txn, uint64_t branch_id, bool succeeded,
                       std::string_view error, int64_t now_ms) {
  return two_phase::ReportPhaseOne(
      txn, branch_id,
      succeeded ? v1::PHASE_ONE_OUTCOME_PREPARED : v1::PHASE_ONE_OUTCOME_FAILED,
      error, now_ms);
}

absl::Status DecideConfirm(v1::Transaction* txn, int64_t now_ms) {
  return two_phase::DecideCommit(txn, now_ms);
}

absl::Status DecideCancel(v1::Transaction* txn, std::string_view reason,
                          int64_t now_ms) {
  return two_phase::DecideRollback(txn, reason, now_ms);
}

}  // namespace baton::tcc
