#ifndef BATON_COMMON_TLS_H_
#define BATON_COMMON_TLS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace baton {

// PEM files for one end of TLS connections. All paths; empty means absent.
//
// As a server: `cert` and `key` turn TLS on; `ca` then also asks every
// client for a certificate and accepts only one that chains to it (mutual
// TLS). As a client: `ca` or `cert` turns TLS on; the server's certificate
// must chain to `ca`, and `cert`/`key`, if given, are presented for mutual
// TLS.
//
// The files are read again every `refresh`, so a certificate rotated in
// place (as cert-manager does) is used for new connections without a
// restart; connections already up keep the one they started with.
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
  std::chrono::seconds refresh{10};

  bool server_enabled() const { return !cert.empty(); }
  bool client_enabled() const { return !ca.empty() || !cert.empty(); }
};

// Reads every file named and checks that each parses and that the key
// belongs to the certificate, so a bad setup fails at start with a message
// naming the file, not at the first handshake. INVALID_ARGUMENT for a cert
// without a key (or the other way round); FAILED_PRECONDITION for a file
// that cannot be read or parsed.
absl::Status CheckTlsFiles(const TlsFiles& files, std::string_view role);

// Credentials for a gRPC server: plaintext unless `files.server_enabled()`.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const TlsFiles& files);

// Credentials for a gRPC channel: plaintext unless `files.client_enabled()`.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(
    const TlsFiles& files);

// `files` with each empty client field taken from the environment:
// BATON_TLS_CA, BATON_TLS_CERT, BATON_TLS_KEY.
TlsFiles WithTlsEnvironment(TlsFiles files);

// Whether a listen address (HOST:PORT, [V6]:PORT) binds loopback only:
// 127.0.0.0/8, ::1 or localhost. A wildcard or any other host is not.
bool IsLoopbackListen(std::string_view listen);

}  // namespace baton

#endif  // BATON_COMMON_TLS_H_
