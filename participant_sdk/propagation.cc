#include "baton/propagation.h"

namespace baton {

void InjectXid(grpc::ClientContext* context, const std::string& xid) {
  context->AddMetadata(kXidMetadataKey, xid);
}

std::optional<std::string> ExtractXid(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kXidMetadataKey);
  if (it == metadata.end() || it->second.empty()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

}  // namespace baton
