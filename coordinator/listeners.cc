#include "coordinator/listeners.h"

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace baton {

absl::Status CheckListeners(const ListenerSecurity& security,
                            const std::vector<Listener>& listeners) {
  if (!security.tls.ca.empty() && security.tls.cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls-client-ca asks clients for certificates, which needs TLS: "
        "give --tls-cert and --tls-key too");
  }
  if (absl::Status s = CheckTlsFiles(security.tls, "batond"); !s.ok()) {
    return s;
  }
  if (security.tls.server_enabled()) return absl::OkStatus();
  for (const Listener& l : listeners) {
    if (l.address.empty() || IsLoopbackListen(l.address)) continue;
    if (!security.insecure) {
      return absl::FailedPreconditionError(fmt::format(
          "batond will not serve {} {} in plaintext beyond loopback: give "
          "--tls-cert and --tls-key (and --tls-client-ca for mutual TLS), "
          "or --insecure if the network is secured some other way",
          l.what, l.address));
    }
    spdlog::warn(
        "{} {} is plaintext beyond loopback (--insecure): anyone who can "
        "reach it can read and forge what it carries",
        l.what, l.address);
  }
  return absl::OkStatus();
}

TlsFiles PeerTlsFiles(const ListenerSecurity& security) {
  TlsFiles peer = security.tls;
  if (!security.peer_ca.empty()) peer.ca = security.peer_ca;
  if (!peer.server_enabled()) peer = TlsFiles{};
  return peer;
}

}  // namespace baton
