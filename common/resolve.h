#ifndef BATON_COMMON_RESOLVE_H_
#define BATON_COMMON_RESOLVE_H_

#include <string>
#include <vector>

namespace baton {

// Every address `host_port` ("host:port") resolves to, as "ip:port"
// ("[ip]:port" for IPv6), in the resolver's order without repeats: how one DNS
// name for every pod (a headless Service) becomes a list of peers. Empty if the
// name does not resolve or has no port. Blocks on the resolver: call it off the
// hot path.
std::vector<std::string> ResolveAll(const std::string& host_port);

}  // namespace baton

#endif  // BATON_COMMON_RESOLVE_H_
