#include "common/tls.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "fmt/format.h"

namespace baton {
namespace {

using grpc::experimental::FileWatcherCertificateProvider;

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "no PEM data";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return text;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

absl::Status Open(const std::string& path, std::string_view what, File* out) {
  out->reset(std::fopen(path.c_str(), "r"));
  if (*out == nullptr) {
    return absl::FailedPreconditionError(
        fmt::format("cannot read the {} {}", what, path));
  }
  return absl::OkStatus();
}

// The first certificate of a PEM file (a chain's leaf, or a CA bundle's
// first root), checked to parse.
absl::Status ReadCertificate(const std::string& path, std::string_view what,
                             X509** cert) {
  File f;
  if (absl::Status s = Open(path, what, &f); !s.ok()) return s;
  *cert = PEM_read_X509(f.get(), nullptr, nullptr, nullptr);
  if (*cert == nullptr) {
    return absl::FailedPreconditionError(fmt::format(
        "the {} {} holds no PEM certificate: {}", what, path, OpenSslError()));
  }
  return absl::OkStatus();
}

unsigned RefreshSeconds(const TlsFiles& files) {
  return static_cast<unsigned>(std::max<int64_t>(1, files.refresh.count()));
}

std::shared_ptr<FileWatcherCertificateProvider> Provider(
    const TlsFiles& files) {
  return std::make_shared<FileWatcherCertificateProvider>(
      files.key, files.cert, files.ca, RefreshSeconds(files));
}

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& files, std::string_view role) {
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: a TLS certificate needs its key and a key its certificate "
        "(give both files, or neither)",
        role));
  }
  if (!files.cert.empty()) {
    X509* cert = nullptr;
    if (absl::Status s = ReadCertificate(files.cert, "certificate", &cert);
        !s.ok()) {
      return s;
    }
    std::unique_ptr<X509, decltype(&X509_free)> owned(cert, X509_free);
    File f;
    if (absl::Status s = Open(files.key, "private key", &f); !s.ok()) return s;
    EVP_PKEY* key = PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr);
    if (key == nullptr) {
      return absl::FailedPreconditionError(
          fmt::format("the private key {} holds no PEM key: {}", files.key,
                      OpenSslError()));
    }
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> owned_key(
        key, EVP_PKEY_free);
    if (X509_check_private_key(cert, key) != 1) {
      ERR_clear_error();
      return absl::FailedPreconditionError(
          fmt::format("the private key {} does not belong to the certificate "
                      "{}",
                      files.key, files.cert));
    }
  }
  if (!files.ca.empty()) {
    X509* ca = nullptr;
    if (absl::Status s = ReadCertificate(files.ca, "CA bundle", &ca); !s.ok()) {
      return s;
    }
    X509_free(ca);
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const TlsFiles& files) {
  if (!files.server_enabled()) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions options(Provider(files));
  options.watch_identity_key_cert_pairs();
  if (!files.ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(
    const TlsFiles& files) {
  if (!files.client_enabled()) return grpc::InsecureChannelCredentials();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(Provider(files));
  if (!files.ca.empty()) options.watch_root_certs();
  if (!files.cert.empty()) options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(options);
}

TlsFiles WithTlsEnvironment(TlsFiles files) {
  auto fill = [](std::string* field, const char* name) {
    const char* value = std::getenv(name);
    if (field->empty() && value != nullptr) *field = value;
  };
  fill(&files.ca, "BATON_TLS_CA");
  fill(&files.cert, "BATON_TLS_CERT");
  fill(&files.key, "BATON_TLS_KEY");
  return files;
}

bool IsLoopbackListen(std::string_view listen) {
  std::string_view host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

}  // namespace baton
