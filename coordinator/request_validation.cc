#include "coordinator/request_validation.h"

#include <string_view>

#include "common/limits.h"
#include "coordinator/xid.h"
#include "fmt/format.h"
#include "protocols/saga.h"

namespace baton {
namespace {

absl::Status Invalid(std::string message) {
  return absl::InvalidArgumentError(std::move(message));
}

absl::Status CheckSize(std::string_view field, const std::string& value,
                       size_t max, bool required) {
  if (required && value.empty()) {
    return Invalid(fmt::format("{} is required", field));
  }
  if (value.size() > max) {
    return Invalid(fmt::format("{} is {} bytes; the limit is {}", field,
                               value.size(), max));
  }
  return absl::OkStatus();
}

absl::Status CheckWait(uint32_t wait_timeout_ms) {
  if (wait_timeout_ms > limits::kMaxTimeoutMs) {
    return Invalid(fmt::format("wait_timeout_ms is {}; the limit is {}",
                               wait_timeout_ms, limits::kMaxTimeoutMs));
  }
  return absl::OkStatus();
}

#define BATON_RETURN_IF_ERROR(expr)                    \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

}  // namespace

absl::Status ValidateXid(const std::string& xid) {
  if (xid.empty()) return Invalid("xid is required");
  XidParts parts;
  if (!ParseXid(xid, &parts)) {
    return Invalid(fmt::format(
        "xid '{}' is malformed: expected NODE-EPOCH-SEQUENCE, e.g. 0-3-17",
        xid.substr(0, 80)));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::BeginRequest& r) {
  BATON_RETURN_IF_ERROR(
      CheckSize("name", r.name(), limits::kMaxNameBytes, true));
  BATON_RETURN_IF_ERROR(CheckSize("request_id", r.request_id(),
                                  limits::kMaxRequestIdBytes, false));
  if (r.timeout_ms() > limits::kMaxTimeoutMs) {
    return Invalid(fmt::format("timeout_ms is {}; the limit is {} (24 hours)",
                               r.timeout_ms(), limits::kMaxTimeoutMs));
  }
  if (!v1::Protocol_IsValid(r.protocol())) {
    return Invalid(fmt::format("protocol {} is unknown", r.protocol()));
  }
  if (r.protocol() == v1::PROTOCOL_SAGA) {
    return Invalid(
        "a saga is not begun step by step: submit it whole with "
        "SubmitSaga");
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::SubmitSagaRequest& r) {
  BATON_RETURN_IF_ERROR(
      CheckSize("name", r.name(), limits::kMaxNameBytes, true));
  BATON_RETURN_IF_ERROR(CheckSize("request_id", r.request_id(),
                                  limits::kMaxRequestIdBytes, false));
  if (r.timeout_ms() > limits::kMaxTimeoutMs) {
    return Invalid(fmt::format("timeout_ms is {}; the limit is {} (24 hours)",
                               r.timeout_ms(), limits::kMaxTimeoutMs));
  }
  BATON_RETURN_IF_ERROR(CheckWait(r.wait_timeout_ms()));
  return saga::ValidateDefinition(r.definition());
}

absl::Status Validate(const v1::CommitRequest& r) {
  BATON_RETURN_IF_ERROR(ValidateXid(r.xid()));
  return CheckWait(r.wait_timeout_ms());
}

absl::Status Validate(const v1::RollbackRequest& r) {
  BATON_RETURN_IF_ERROR(ValidateXid(r.xid()));
  BATON_RETURN_IF_ERROR(
      CheckSize("reason", r.reason(), limits::kMaxReasonBytes, false));
  return CheckWait(r.wait_timeout_ms());
}

absl::Status ValidateReceiveLimit(std::string_view field, uint32_t bytes) {
  if (bytes != 0 && bytes < limits::kMinPeerReceiveBytes) {
    return Invalid(fmt::format(
        "{} is {}; it must be 0 (4 MiB) or at least {}, so that any one "
        "command or answer fits",
        field, bytes, limits::kMinPeerReceiveBytes));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::GetTransactionRequest& r) {
  return ValidateXid(r.xid());
}

absl::Status Validate(const v1::RegisterBranchRequest& r) {
  BATON_RETURN_IF_ERROR(ValidateXid(r.xid()));
  BATON_RETURN_IF_ERROR(
      CheckSize("resource", r.resource(), limits::kMaxResourceBytes, true));
  BATON_RETURN_IF_ERROR(CheckSize("application_data", r.application_data(),
                                  limits::kMaxApplicationDataBytes, false));
  BATON_RETURN_IF_ERROR(CheckSize("request_id", r.request_id(),
                                  limits::kMaxRequestIdBytes, false));
  BATON_RETURN_IF_ERROR(CheckSize("instance_id", r.instance_id(),
                                  limits::kMaxResourceBytes, false));
  if (!v1::BranchType_IsValid(r.type())) {
    return Invalid(fmt::format("branch type {} is unknown", r.type()));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::ReportBranchRequest& r) {
  BATON_RETURN_IF_ERROR(ValidateXid(r.xid()));
  if (r.branch_id() == 0) return Invalid("branch_id is required");
  if (r.outcome() != v1::PHASE_ONE_OUTCOME_PREPARED &&
      r.outcome() != v1::PHASE_ONE_OUTCOME_FAILED) {
    return Invalid("outcome must be PREPARED or FAILED");
  }
  return CheckSize("error", r.error(), limits::kMaxReasonBytes, false);
}

absl::Status Validate(const v1::Hello& h) {
  BATON_RETURN_IF_ERROR(
      CheckSize("hello.service", h.service(), limits::kMaxResourceBytes, true));
  BATON_RETURN_IF_ERROR(CheckSize("hello.instance_id", h.instance_id(),
                                  limits::kMaxResourceBytes, true));
  if (h.resources().empty()) return Invalid("hello.resources is empty");
  if (static_cast<size_t>(h.resources_size()) >
      limits::kMaxResourcesPerParticipant) {
    return Invalid(fmt::format("hello names {} resources; the limit is {}",
                               h.resources_size(),
                               limits::kMaxResourcesPerParticipant));
  }
  for (const std::string& resource : h.resources()) {
    BATON_RETURN_IF_ERROR(CheckSize("hello.resources[]", resource,
                                    limits::kMaxResourceBytes, true));
  }
  return ValidateReceiveLimit("hello.max_message_bytes", h.max_message_bytes());
}

absl::Status Validate(const v1::BranchResult& r) {
  BATON_RETURN_IF_ERROR(ValidateXid(r.xid()));
  if (r.branch_id() == 0) return Invalid("result.branch_id is required");
  if (r.action() != v1::BRANCH_ACTION_COMMIT &&
      r.action() != v1::BRANCH_ACTION_ROLLBACK) {
    return Invalid("result.action must be COMMIT or ROLLBACK");
  }
  if (r.outcome() != v1::COMMAND_OUTCOME_DONE &&
      r.outcome() != v1::COMMAND_OUTCOME_RETRY &&
      r.outcome() != v1::COMMAND_OUTCOME_FAILED) {
    return Invalid("result.outcome must be DONE, RETRY or FAILED");
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::InDoubt& d) {
  constexpr int kMaxInDoubt = 10000;
  if (d.branches_size() > kMaxInDoubt) {
    return Invalid(fmt::format("in_doubt lists {} branches; the limit is {}",
                               d.branches_size(), kMaxInDoubt));
  }
  for (const v1::InDoubtBranch& b : d.branches()) {
    BATON_RETURN_IF_ERROR(ValidateXid(b.xid()));
    if (b.branch_id() == 0) return Invalid("in_doubt branch_id is required");
    BATON_RETURN_IF_ERROR(CheckSize("in_doubt resource", b.resource(),
                                    limits::kMaxResourceBytes, true));
  }
  return absl::OkStatus();
}

}  // namespace baton
