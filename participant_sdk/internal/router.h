#ifndef BATON_PARTICIPANT_SDK_INTERNAL_ROUTER_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_ROUTER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/topology.pb.h"
#include "common/tls.h"

namespace baton::internal {

// Which coordinator node a call goes to. Starts from seed addresses and
// learns the topology (TopologyService) from the first node that answers:
//  - a call about an xid goes to the owner of the xid's shard;
//  - a new transaction goes to the owner of the shard its idempotency key
//    belongs to (KeyShard, the rule topology.proto states), which is the
//    one shard that can tell whether the key already started something;
//  - until it knows a topology (or talks to a coordinator that has none),
//    everything goes to the first seed.
// A refusal (WrongShard) or an unreachable node makes it look again, at most
// once per `refresh_every`; so does a map older than `max_age`, on the next
// call that finds no other refresh under way (a shard that stopped
// draining, a node that came back).
//
// Thread-safe. Refresh blocks on the network; the rest does not.
class Router {
 public:
  Router(std::vector<std::string> seeds, std::chrono::milliseconds timeout,
         TlsFiles tls = {},
         std::chrono::milliseconds refresh_every = std::chrono::seconds(1),
         std::chrono::milliseconds max_age = std::chrono::seconds(5));

  std::string ForXid(std::string_view xid);
  // The owner of `xid`'s shard if the router knows it: unlike ForXid, no
  // seed in its place.
  std::optional<std::string> OwnerOf(std::string_view xid);
  // Every node's address; the first seed until a topology names nodes.
  std::vector<std::string> Addresses();
  std::string ForKey(std::string_view key);
  // Whether the shard `key` belongs to is serving as far as the router
  // knows: a fresh key may be drawn again until one is.
  bool ServingForKey(std::string_view key);
  // Whether it knows more than one node.
  bool clustered() const;

  // A node refused a call about another shard's xid: remember the owner it
  // named, then look again.
  void Learn(const v1::WrongShard& refusal);
  // The node at `address` did not answer: its shards take no new
  // transaction from this router for `max_age`, even if a peer that has
  // not noticed yet still calls them serving, unless a refusal or another
  // failure says more first.
  void Unreachable(const std::string& address);
  // Asks the seeds, then the known nodes, for the topology; keeps the first
  // answer. Skipped if the last try was less than refresh_every ago, unless
  // `force`.
  void Refresh(bool force = false);

 private:
  struct Shard {
    std::string owner;  // Address; empty if no node announced it.
    bool serving = false;
  };
  // The shard `key` belongs to; null before a topology names any.
  const Shard* ShardForKeyLocked(std::string_view key) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void EnsureLoaded();
  // Keeps `topology` as the map, `dialed` being the node that sent it.
  void AdoptLocked(const v1::Topology& topology, const std::string& dialed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> seeds_;
  const std::chrono::milliseconds timeout_;
  const TlsFiles tls_;
  const std::chrono::milliseconds refresh_every_;
  const std::chrono::milliseconds max_age_;

  mutable absl::Mutex mu_;
  std::map<uint32_t, std::string> nodes_ ABSL_GUARDED_BY(mu_);  // By id.
  std::map<uint32_t, Shard> shards_ ABSL_GUARDED_BY(mu_);       // By id.
  std::vector<uint32_t> key_shards_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_refresh_ ABSL_GUARDED_BY(mu_);
  // Nodes that did not answer a call, until when they count as down.
  std::map<std::string, std::chrono::steady_clock::time_point> unreachable_
      ABSL_GUARDED_BY(mu_);
  bool tried_ ABSL_GUARDED_BY(mu_) = false;

  // The body of Refresh.
  void RefreshLocked(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(refresh_mu_);
  absl::Mutex refresh_mu_;  // One refresh at a time.
};

// The addresses a client or participant starts from: `seeds` if any, else
// `coordinator` split at commas (one address, or several nodes').
std::vector<std::string> SeedList(const std::string& coordinator,
                                  const std::vector<std::string>& seeds);

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_ROUTER_H_
