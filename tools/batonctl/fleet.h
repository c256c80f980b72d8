#ifndef BATON_TOOLS_BATONCTL_FLEET_H_
#define BATON_TOOLS_BATONCTL_FLEET_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/v1/admin_service.pb.h"
#include "baton/v1/topology.pb.h"

namespace baton::ctl {

// The coordinator nodes batonctl speaks to: the one --coordinator names
// and, when its topology names others, all of them.
struct FleetNode {
  uint32_t id = 0;
  std::string address;
  std::vector<uint32_t> shards;  // Owned, ordered.
};

class Fleet {
 public:
  // From `entry`'s topology; with none (a lone node, or one from before
  // topologies), `entry` alone. A lone node is dialled at `entry`, not at
  // the address it advertises.
  static Fleet From(const std::string& entry,
                    const std::optional<v1::Topology>& topology);

  const std::vector<FleetNode>& nodes() const { return nodes_; }
  bool clustered() const { return nodes_.size() > 1; }
  // The shard `xid` names (its first field; 0 if it names none).
  static uint32_t ShardOf(std::string_view xid);
  // Where a call about `xid` goes: its shard's owner, else `entry`.
  std::string AddressFor(std::string_view xid) const;
  // Where a call about `shard` goes: its owner, else `entry`.
  std::string AddressForShard(uint32_t shard) const;

 private:
  std::string entry_;
  std::vector<FleetNode> nodes_;
  std::map<uint32_t, std::string> owners_;  // Shard to address.
};

// A page of ListTransactions across nodes. Its token holds each node's own
// token: "N|<node>=<token>;..." with "~" for a node listed to its end. A
// node missing from it (one that joined since) starts from the beginning.
struct FleetToken {
  std::map<uint32_t, std::string> next;  // By node; "" from the start.
  std::map<uint32_t, bool> done;         // By node.
};
std::string EncodeFleetToken(const FleetToken& token);
// False if `text` is not a token EncodeFleetToken wrote ("" is the start).
bool DecodeFleetToken(const std::string& text, FleetToken* token);

// One node's page, as it answered.
struct NodePage {
  uint32_t node = 0;
  std::vector<v1::Transaction> transactions;
};

// The order of a cluster-wide listing, the same as one node's: unfinished
// transactions shard by shard (each node's in its own order), then the
// finished ones by finish time. Returns how many of each page's head
// (by index in `pages`) the first `limit` of the merged listing take, and
// appends those, in order, to `out`.
std::vector<size_t> MergePages(const std::vector<NodePage>& pages,
                               uint32_t limit,
                               std::vector<v1::Transaction>* out);

}  // namespace baton::ctl

#endif  // BATON_TOOLS_BATONCTL_FLEET_H_
