#ifndef BATON_COORDINATOR_XID_H_
#define BATON_COORDINATOR_XID_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace baton {

// A global transaction id: "SHARD-EPOCH-SEQUENCE" in decimal. The shard owns
// the transaction (the field is still called `node`: with one shard per
// process it is the node's id), the epoch is bumped and synced at every
// start, and the sequence counts within an epoch, so ids never repeat
// across restarts.
struct XidParts {
  uint32_t node = 0;
  uint64_t epoch = 0;
  uint64_t sequence = 0;
};

std::string FormatXid(const XidParts& parts);

// False unless `xid` is exactly three decimal numbers joined by '-'.
bool ParseXid(std::string_view xid, XidParts* parts);

// A live record's name within its shard: its xid's epoch and sequence (the
// shard's own id is the third field). Per-transaction indexes (a table's
// records, its recovery schedule) key by it rather than by the xid string:
// no allocation per entry, and it orders records by when they began.
struct RecordKey {
  uint64_t epoch = 0;
  uint64_t sequence = 0;

  friend auto operator<=>(const RecordKey&, const RecordKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const RecordKey& key) {
    return H::combine(std::move(h), key.epoch, key.sequence);
  }
};

// The key of `xid`; nullopt if it is not a well-formed xid.
std::optional<RecordKey> RecordKeyOf(std::string_view xid);

}  // namespace baton

#endif  // BATON_COORDINATOR_XID_H_
