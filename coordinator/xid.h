#ifndef BATON_COORDINATOR_XID_H_
#define BATON_COORDINATOR_XID_H_

#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace baton

#endif  // BATON_COORDINATOR_XID_H_
