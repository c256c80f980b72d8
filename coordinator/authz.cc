#include "coordinator/authz.h"

#include <openssl/evp.h>

#include <fstream>
#include <set>
#include <sstream>

#include "coordinator/coordinator_metrics.h"
#include "fmt/format.h"
#include "google/protobuf/util/json_util.h"

namespace baton {
namespace {

bool IsHexDigest(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool NameMatches(std::string_view pattern, std::string_view resource) {
  if (pattern.ends_with('*')) {
    return resource.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == resource;
}

}  // namespace

std::string Peer::Describe() const {
  std::string out;
  for (const std::string& id : identities) {
    out += (out.empty() ? "" : ", ") + id;
  }
  if (!bearer.empty()) out += std::string(out.empty() ? "" : ", ") + "a token";
  return out.empty() ? "an anonymous peer" : out;
}

Peer PeerOf(const grpc::ServerContextBase& context) {
  Peer peer;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::set<std::string> seen;
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const char* property :
         {GRPC_PEER_URI_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME,
          GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
      for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
        std::string id(value.data(), value.size());
        if (seen.insert(id).second) peer.identities.push_back(id);
      }
    }
  }
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    std::string_view value(it->second.data(), it->second.size());
    if (value.starts_with("Bearer ")) peer.bearer = value.substr(7);
  }
  return peer;
}

absl::StatusOr<std::unique_ptr<AuthzPolicy>> AuthzPolicy::Load(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(
        fmt::format("cannot read the authorization policy {}", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  v1::AuthzPolicy policy;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed =
      google::protobuf::util::JsonStringToMessage(text.str(), &policy, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("the authorization policy {} is not valid (its schema is "
                    "proto/baton/v1/authz_policy.proto): {}",
                    path, std::string(parsed.message())));
  }
  auto check_digests = [&](const auto& grants,
                           std::string_view field) -> absl::Status {
    for (int g = 0; g < grants.size(); ++g) {
      for (const std::string& digest : grants[g].token_sha256()) {
        if (!IsHexDigest(digest)) {
          return absl::InvalidArgumentError(fmt::format(
              "the authorization policy {}: {}[{}].tokenSha256 holds '{}', "
              "not 64 lower-case hex digits (sha256sum's output)",
              path, field, g, digest));
        }
      }
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check_digests(policy.participants(), "participants");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = check_digests(policy.callers(), "callers"); !s.ok()) {
    return s;
  }
  return std::make_unique<AuthzPolicy>(std::move(policy));
}

AuthzPolicy::AuthzPolicy(v1::AuthzPolicy policy) : policy_(std::move(policy)) {}

template <typename Grant>
bool AuthzPolicy::Matches(const Peer& peer, const Grant& grant) const {
  for (const std::string& id : grant.identities()) {
    for (const std::string& have : peer.identities) {
      if (id == have) return true;
    }
  }
  if (!peer.bearer.empty()) {
    std::string digest = Sha256Hex(peer.bearer);
    for (const std::string& want : grant.token_sha256()) {
      if (ConstantTimeEquals(digest, want)) return true;
    }
  }
  return false;
}

bool AuthzPolicy::MayServe(const Peer& peer, std::string_view resource) const {
  for (const v1::ParticipantGrant& grant : policy_.participants()) {
    if (!Matches(peer, grant)) continue;
    for (const std::string& pattern : grant.resources()) {
      if (NameMatches(pattern, resource)) return true;
    }
  }
  return false;
}

absl::Status AuthzPolicy::MayCall(const Peer& peer,
                                  std::string_view method) const {
  if (!limits_callers()) return absl::OkStatus();
  for (const v1::CallerGrant& grant : policy_.callers()) {
    if (!Matches(peer, grant)) continue;
    for (const std::string& m : grant.methods()) {
      if (m == "*" || m == method) return absl::OkStatus();
    }
  }
  if (method == "RegisterBranch" || method == "ReportBranch") {
    for (const v1::ParticipantGrant& grant : policy_.participants()) {
      if (Matches(peer, grant)) return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(
      fmt::format("{} may not call {}: no caller grant of the authorization "
                  "policy lists it for this peer",
                  peer.Describe(), method));
}

bool AuthzPolicy::IsAdmin(const Peer& peer) const {
  for (const std::string& id : policy_.admin_identities()) {
    for (const std::string& have : peer.identities) {
      if (id == have) return true;
    }
  }
  return false;
}

std::string_view MethodOf(const google::protobuf::Message& request) {
  std::string_view name = request.GetDescriptor()->name();
  if (name.ends_with("Request")) name.remove_suffix(7);
  return name;
}

absl::Status AuthzPolicy::MayServeAll(
    const Peer& peer, const std::vector<std::string>& resources) const {
  for (const std::string& resource : resources) {
    if (!MayServe(peer, resource)) {
      return absl::PermissionDeniedError(fmt::format(
          "{} may not serve resource '{}': no grant of the authorization "
          "policy gives it to this peer",
          peer.Describe(), resource));
    }
  }
  return absl::OkStatus();
}

void CountRefusal(std::string_view method, std::string_view reason,
                  std::string_view why, LogSummary* log) {
  Metrics()
      .refused_calls.With({std::string(method), std::string(reason)})
      ->Add();
  log->Log(spdlog::level::warn, fmt::format("refused {} ({})", method, reason),
           fmt::format("refused {}: {}", method, why));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < size; ++i)
    hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace baton
