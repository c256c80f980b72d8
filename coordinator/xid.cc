#include "coordinator/xid.h"

#include <charconv>
#include <limits>

#include "absl/strings/str_cat.h"

namespace baton {
namespace {

// Parses a decimal number that ends at `end` or at '-'.
template <typename T>
bool ParseField(std::string_view* rest, T* value, bool last) {
  const char* begin = rest->data();
  const char* end = begin + rest->size();
  auto [ptr, ec] = std::from_chars(begin, end, *value);
  if (ec != std::errc() || ptr == begin) return false;
  if (last) return ptr == end;
  if (ptr == end || *ptr != '-') return false;
  rest->remove_prefix(ptr - begin + 1);
  return true;
}

}  // namespace

// Once per transaction: StrCat parses no format string.
std::string FormatXid(const XidParts& parts) {
  return absl::StrCat(parts.node, "-", parts.epoch, "-", parts.sequence);
}

bool ParseXid(std::string_view xid, XidParts* parts) {
  if (xid.size() > 64) return false;
  return ParseField(&xid, &parts->node, false) &&
         ParseField(&xid, &parts->epoch, false) &&
         ParseField(&xid, &parts->sequence, true);
}

std::optional<RecordKey> RecordKeyOf(std::string_view xid) {
  XidParts parts;
  if (!ParseXid(xid, &parts)) return std::nullopt;
  return RecordKey{parts.epoch, parts.sequence};
}

}  // namespace baton
