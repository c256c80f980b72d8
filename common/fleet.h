#ifndef BATON_COMMON_FLEET_H_
#define BATON_COMMON_FLEET_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/v1/admin_service.pb.h"
#include "baton/v1/topology.pb.h"

// What an admin tool needs to span the nodes of a cluster: who owns which
// shard, and how the nodes' answers merge into one. Pure: the callers
// (batonctl, synchronously; the console, asynchronously) make the calls.
namespace baton {

// One coordinator node an admin tool speaks to.
struct FleetNode {
  uint32_t id = 0;
  std::string address;
  std::vector<uint32_t> shards;  // Owned, ordered.
};

// The nodes of a cluster, as one node's topology names them.
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
  // The node that owns `shard`; null if none is known.
  const FleetNode* OwnerOf(uint32_t shard) const;
  // The node at `entry`, else the first.
  const FleetNode& Entry() const;

 private:
  std::string entry_;
  std::vector<FleetNode> nodes_;
  std::map<uint32_t, size_t> owners_;  // Shard to index in nodes_.
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

// One cluster-wide page of ListTransactions, in two rounds. Each node lists
// from its own token (FirstRound); the merged page takes the first `limit`
// in the cluster's order (Merge). A node whose page was taken only in part
// is asked again for just that part (the asks Merge returns), so its token
// is its own (tokens are opaque) and stands where the merged page stopped.
// A node that fails either round is left out of this page and asked again
// from the same place by the next one. Not thread-safe.
class FleetListing {
 public:
  struct Ask {
    const FleetNode* node;  // Points into the listing's fleet.
    v1::ListTransactionsRequest request;
  };

  // Nullopt if the request's page token is not one Finish wrote.
  static std::optional<FleetListing> Start(
      std::shared_ptr<const Fleet> fleet,
      const v1::ListTransactionsRequest& request);

  const std::vector<Ask>& FirstRound() const { return first_; }
  // Each of FirstRound's answers, by the node's id; a node that failed
  // is not answered.
  void Answered(uint32_t node, const v1::ListTransactionsResponse& response);
  // Merges what was answered; returns the asks of the second round.
  std::vector<Ask> Merge();
  void Reanswered(uint32_t node, const v1::ListTransactionsResponse& response);
  // The merged page, with a token for the next if any node has more.
  v1::ListTransactionsResponse Finish();

 private:
  FleetListing(std::shared_ptr<const Fleet> fleet,
               v1::ListTransactionsRequest request, FleetToken token);

  std::shared_ptr<const Fleet> fleet_;
  v1::ListTransactionsRequest request_;
  uint32_t limit_;
  FleetToken token_;
  std::vector<Ask> first_;
  std::vector<NodePage> pages_;
  std::vector<std::string> next_;  // Each page's node's next token.
  std::vector<v1::Transaction> merged_;
};

// GetStats of each node that answered, by node id, as the cluster's: sums,
// the oldest of the oldest, and each node's store error named by node.
v1::GetStatsResponse MergeStats(
    const std::map<uint32_t, v1::GetStatsResponse>& by_node);

// A participant attaches to every node, so it is listed once; its
// in-flight commands add up, it was attached at its earliest and seen at
// its latest. `attached_to` gets, by instance, the ids of the nodes it is
// attached to ("0,4,8").
v1::ListParticipantsResponse MergeParticipants(
    const std::map<uint32_t, v1::ListParticipantsResponse>& by_node,
    std::map<std::string, std::string>* attached_to);

}  // namespace baton

#endif  // BATON_COMMON_FLEET_H_
