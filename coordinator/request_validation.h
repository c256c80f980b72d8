#ifndef BATON_COORDINATOR_REQUEST_VALIDATION_H_
#define BATON_COORDINATOR_REQUEST_VALIDATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "baton/v1/participant_service.pb.h"
#include "baton/v1/transaction_service.pb.h"

// Syntax checks of incoming requests: required fields, sizes, enum ranges
// and xid format. Each returns INVALID_ARGUMENT naming the field and the
// limit, so a person can fix the call; state checks happen later.
namespace baton {

absl::Status ValidateXid(const std::string& xid);
// A receive limit a peer states for a stream (0 for the default): it must
// leave room for any one command or answer.
absl::Status ValidateReceiveLimit(std::string_view field, uint32_t bytes);
absl::Status Validate(const v1::BeginRequest& request);
absl::Status Validate(const v1::SubmitSagaRequest& request);
absl::Status Validate(const v1::CommitRequest& request);
absl::Status Validate(const v1::RollbackRequest& request);
absl::Status Validate(const v1::GetTransactionRequest& request);
absl::Status Validate(const v1::RegisterBranchRequest& request);
absl::Status Validate(const v1::ReportBranchRequest& request);
absl::Status Validate(const v1::Hello& hello);
absl::Status Validate(const v1::BranchResult& result);
absl::Status Validate(const v1::InDoubt& in_doubt);

}  // namespace baton

#endif  // BATON_COORDINATOR_REQUEST_VALIDATION_H_
