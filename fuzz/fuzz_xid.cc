// xid parsing: ParseXid, RecordKeyOf, ValidateXid and the store's index keys
// agree with each other and with FormatXid on any input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coordinator/request_validation.h"
#include "coordinator/store_keys.h"
#include "coordinator/xid.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  baton::XidParts parts;
  const bool parsed = baton::ParseXid(input, &parts);
  const std::optional<baton::RecordKey> key = baton::RecordKeyOf(input);
  Check(parsed == key.has_value());
  if (parsed) {
    Check(key->epoch == parts.epoch && key->sequence == parts.sequence);
    baton::XidParts again;
    Check(baton::ParseXid(baton::FormatXid(parts), &again));
    Check(again.node == parts.node && again.epoch == parts.epoch &&
          again.sequence == parts.sequence);
  }
  if (baton::ValidateXid(input).ok()) Check(parsed);

  int64_t ms = 0;
  std::string xid;
  if (baton::store_keys::ParseIndexKey(input, &ms, &xid)) {
    const bool unfinished = input.starts_with("u/");
    const std::string rebuilt = unfinished
                                    ? baton::store_keys::UnfinishedKey(ms, xid)
                                    : baton::store_keys::FinishedKey(ms, xid);
    int64_t ms_again = 0;
    std::string xid_again;
    Check(baton::store_keys::ParseIndexKey(rebuilt, &ms_again, &xid_again));
    Check(ms_again == ms && xid_again == xid);
  }
  return 0;
}
