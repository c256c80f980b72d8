#ifndef BATON_COORDINATOR_LISTENERS_H_
#define BATON_COORDINATOR_LISTENERS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/tls.h"

namespace baton {

// What batond listens on and how it secures it: the transaction and
// participant port, the admin and metrics ports if split off, and a
// plaintext health port for probes.
struct ListenerSecurity {
  // Every listener but health serves TLS with these files when
  // `tls.cert` is set, mutual TLS when `tls.ca` is too (see TlsFiles).
  TlsFiles tls;
  // Roots that peer nodes' certificates must chain to when this node
  // calls them; empty: tls.ca.
  std::string peer_ca;
  // Serve plaintext beyond loopback all the same.
  bool insecure = false;
};

struct Listener {
  std::string what;     // "--listen", for messages.
  std::string address;  // HOST:PORT; empty: not served.
};

// FAILED_PRECONDITION, naming the listener and the flags that fix it, if a
// listener beyond loopback would be plaintext without `insecure`; the TLS
// files' own check (CheckTlsFiles) otherwise. With `insecure`, warns once
// per plaintext listener beyond loopback.
absl::Status CheckListeners(const ListenerSecurity& security,
                            const std::vector<Listener>& listeners);

// The files this node calls its peers with: its own certificate (for their
// mutual TLS) and the roots in peer_ca or tls.ca.
TlsFiles PeerTlsFiles(const ListenerSecurity& security);

}  // namespace baton

#endif  // BATON_COORDINATOR_LISTENERS_H_
