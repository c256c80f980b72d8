// The saga JSON loader (ParseSagaJson): any input is either refused with
// INVALID_ARGUMENT or yields a definition the coordinator accepts, and that
// definition survives a round trip through JSON.
#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "baton/saga.h"
#include "protocols/saga.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks whether resources are checked against a known set.
  const std::set<std::string> known = {"flights", "hotels", "cars"};
  const std::set<std::string>* resources = (data[0] & 1) ? &known : nullptr;
  const std::string json(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<baton::v1::SagaDefinition> definition =
      baton::ParseSagaJson(json, resources);
  if (!definition.ok()) {
    Check(absl::IsInvalidArgument(definition.status()));
    return 0;
  }
  Check(baton::saga::ValidateDefinition(*definition).ok());
  std::string again;
  Check(google::protobuf::util::MessageToJsonString(*definition, &again).ok());
  absl::StatusOr<baton::v1::SagaDefinition> reparsed =
      baton::ParseSagaJson(again, resources);
  Check(reparsed.ok());
  Check(reparsed->SerializeAsString() == definition->SerializeAsString());
  return 0;
}
