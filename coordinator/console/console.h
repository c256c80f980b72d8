#ifndef BATON_COORDINATOR_CONSOLE_CONSOLE_H_
#define BATON_COORDINATOR_CONSOLE_CONSOLE_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "baton/v1/topology.pb.h"
#include "common/clock.h"
#include "common/log_summary.h"
#include "common/tls.h"

namespace baton {

// The operators' console: a web page and its JSON API (docs/OPERATIONS.md,
// "The console"), served over HTTP, or HTTPS with batond's TLS files. An
// operator signs in with the admin token; the session is an HttpOnly,
// SameSite=Strict cookie that expires, and every API call must carry the
// session's CSRF token. Every call the console makes goes through batond's
// own AdminService and TransactionService, carrying the operator's token,
// so the console follows the same rules and leaves the same audit records
// as batonctl: this node's in-process, other nodes' at the addresses its
// topology names. Lists and counts span every node; a call about one
// transaction goes to its shard's owner.
class Console {
 public:
  struct Options {
    std::string listen;  // IP:PORT; port 0 picks a free one.
    TlsFiles tls;        // Without a certificate: plain HTTP.
    int64_t session_lifetime_ms = 8 * 3600 * 1000;
    size_t max_sessions = 256;
  };
  struct Backend {
    // This node's services.
    std::shared_ptr<grpc::ChannelInterface> admin;
    std::shared_ptr<grpc::ChannelInterface> transactions;
    // Where the topology names this node.
    std::string self_address;
    // The cluster as this node sees it; null for a lone node.
    std::function<v1::Topology()> topology;
    // For calls to other nodes; null: plaintext.
    std::shared_ptr<grpc::ChannelCredentials> peer_credentials;
    // What sign-in compares with; empty: nobody can sign in.
    std::string admin_token;
    Clock* clock = nullptr;  // Must outlive the console.
    LogSummary* log = nullptr;
  };

  // Serves until destroyed. Errors as HttpServer::Start's.
  static absl::StatusOr<std::unique_ptr<Console>> Start(const Options& options,
                                                        Backend backend);
  ~Console();

  int port() const;

 private:
  struct Impl;
  explicit Console(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_CONSOLE_CONSOLE_H_
