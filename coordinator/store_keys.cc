#include "coordinator/store_keys.h"

#include "fmt/format.h"

namespace baton::store_keys {
namespace {

constexpr size_t kTimeDigits = 16;

std::string IndexKey(std::string_view prefix, int64_t ms,
                     std::string_view xid) {
  return fmt::format("{}{:016x}/{}", prefix, static_cast<uint64_t>(ms), xid);
}

}  // namespace

std::string BranchKey(std::string_view xid, uint64_t branch_id) {
  return fmt::format("{}{}/{:016x}", kBranchPrefix, xid, branch_id);
}

std::string BranchPrefix(std::string_view xid) {
  return fmt::format("{}{}/", kBranchPrefix, xid);
}

std::string DefinitionKey(std::string_view xid) {
  return fmt::format("{}{}", kDefinitionPrefix, xid);
}

std::string RecordKey(std::string_view xid) {
  return fmt::format("{}{}", kRecordPrefix, xid);
}

std::string UnfinishedKey(int64_t due_ms, std::string_view xid) {
  return IndexKey(kUnfinishedPrefix, due_ms, xid);
}

std::string FinishedKey(int64_t finished_ms, std::string_view xid) {
  return IndexKey(kFinishedPrefix, finished_ms, xid);
}

std::string MetaKey(std::string_view name) {
  return fmt::format("{}{}", kMetaPrefix, name);
}

bool ParseIndexKey(std::string_view key, int64_t* ms, std::string* xid) {
  constexpr size_t kPrefix = 2;
  if (key.size() < kPrefix + kTimeDigits + 2 ||
      (key.substr(0, kPrefix) != kUnfinishedPrefix &&
       key.substr(0, kPrefix) != kFinishedPrefix) ||
      key[kPrefix + kTimeDigits] != '/') {
    return false;
  }
  uint64_t value = 0;
  for (char c : key.substr(kPrefix, kTimeDigits)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    value = value * 16 + digit;
  }
  *ms = static_cast<int64_t>(value);
  *xid = std::string(key.substr(kPrefix + kTimeDigits + 1));
  return true;
}

}  // namespace baton::store_keys
