#include "common/grpc_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "google/rpc/status.pb.h"

namespace baton {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

grpc::Status ToRichGrpcStatus(const absl::Status& status) {
  google::rpc::Status rich;
  status.ForEachPayload(
      [&rich](absl::string_view type_url, const absl::Cord& payload) {
        google::protobuf::Any* any = rich.add_details();
        any->set_type_url(std::string(type_url));
        any->set_value(std::string(payload));
      });
  if (status.ok() || rich.details_size() == 0) return ToGrpcStatus(status);
  rich.set_code(static_cast<int32_t>(status.code()));
  rich.set_message(std::string(status.message()));
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), rich.SerializeAsString());
}

absl::Status FromRichGrpcStatus(const grpc::Status& status) {
  absl::Status out = FromGrpcStatus(status);
  google::rpc::Status rich;
  if (out.ok() || status.error_details().empty() ||
      !rich.ParseFromString(status.error_details())) {
    return out;
  }
  for (const google::protobuf::Any& any : rich.details()) {
    out.SetPayload(any.type_url(), absl::Cord(any.value()));
  }
  return out;
}

}  // namespace baton
