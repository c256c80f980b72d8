#include "protocols/lease_plan.h"

#include <algorithm>

namespace baton {

LeasePlan PlanLeases(const std::string& self,
                     const std::vector<std::string>& live,
                     const std::vector<ShardLease>& leases) {
  std::vector<std::string> nodes = live;
  nodes.push_back(self);
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  const size_t rank =
      std::lower_bound(nodes.begin(), nodes.end(), self) - nodes.begin();
  const size_t shards = leases.size();
  LeasePlan plan;
  plan.share = static_cast<uint32_t>(shards / nodes.size() +
                                     (rank < shards % nodes.size() ? 1 : 0));

  std::vector<uint32_t> held, open;
  for (const ShardLease& lease : leases) {
    if (lease.owner == self) {
      held.push_back(lease.shard);
    } else if (lease.owner.empty() || lease.expired) {
      open.push_back(lease.shard);
    }
  }
  std::sort(held.begin(), held.end());
  std::sort(open.begin(), open.end());
  if (held.size() < plan.share) {
    const size_t wanted = plan.share - held.size();
    plan.take.assign(open.begin(),
                     open.begin() + std::min(wanted, open.size()));
  } else {
    plan.give_back.assign(held.rbegin(),
                          held.rbegin() + (held.size() - plan.share));
  }
  return plan;
}

}  // namespace baton
