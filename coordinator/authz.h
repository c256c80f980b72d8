#ifndef BATON_COORDINATOR_AUTHZ_H_
#define BATON_COORDINATOR_AUTHZ_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/v1/authz_policy.pb.h"
#include "common/log_summary.h"

namespace baton {

// Who is calling, as far as batond can tell: the identities its client
// certificate names (URI and DNS subject alternative names; none without
// mutual TLS), and the bearer token it sent, if any.
struct Peer {
  std::vector<std::string> identities;
  std::string bearer;

  // Identities and token (redacted) for a log line.
  std::string Describe() const;
};

// The peer of a call or stream.
Peer PeerOf(const grpc::ServerContextBase& context);

// The --authz-policy file (proto/baton/v1/authz_policy.proto is its
// schema), loaded once at start. Immutable, so thread-safe.
class AuthzPolicy {
 public:
  // INVALID_ARGUMENT naming the field for a file that does not parse, or a
  // digest that is not 64 hex digits; FAILED_PRECONDITION if it cannot be
  // read.
  static absl::StatusOr<std::unique_ptr<AuthzPolicy>> Load(
      const std::string& path);
  explicit AuthzPolicy(v1::AuthzPolicy policy);

  bool MayServe(const Peer& peer, std::string_view resource) const;
  // Whether calls are limited at all (the policy has caller grants).
  bool limits_callers() const { return policy_.callers_size() > 0; }
  // OK, or PERMISSION_DENIED naming the method and the caller.
  absl::Status MayCall(const Peer& peer, std::string_view method) const;
  // Whether `peer`'s certificate names an admin identity.
  bool IsAdmin(const Peer& peer) const;
  // OK, or PERMISSION_DENIED naming the first resource `peer` may not
  // serve and who the peer is.
  absl::Status MayServeAll(const Peer& peer,
                           const std::vector<std::string>& resources) const;

 private:
  template <typename Grant>
  bool Matches(const Peer& peer, const Grant& grant) const;

  const v1::AuthzPolicy policy_;
};

// Counts a refusal in baton_refused_calls_total{method, reason} and logs
// `why` through `log` (one line, then a count per interval per reason), so
// a flood of refused calls cannot flood the log. `why` must not hold a
// secret.
void CountRefusal(std::string_view method, std::string_view reason,
                  std::string_view why, LogSummary* log);

// A TransactionService request's method name: "Begin" for BeginRequest.
std::string_view MethodOf(const google::protobuf::Message& request);

// Whether two strings are equal, in time that depends on their lengths
// only: for secrets.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace baton

#endif  // BATON_COORDINATOR_AUTHZ_H_
