#ifndef BATON_COMMON_TLS_FLAGS_H_
#define BATON_COMMON_TLS_FLAGS_H_

#include <CLI/CLI.hpp>

#include "common/tls.h"

namespace baton {

// The TLS flags of a tool that calls batond (batonctl, baton-bench):
// --tls-ca, --tls-cert and --tls-key; each left out falls back to
// BATON_TLS_CA, BATON_TLS_CERT or BATON_TLS_KEY (WithTlsEnvironment).
inline void AddTlsClientFlags(CLI::App* app, TlsFiles* files) {
  app->add_option("--tls-ca", files->ca,
                  "PEM CA bundle batond's certificate must chain to; turns "
                  "TLS on (or set BATON_TLS_CA)")
      ->check(CLI::ExistingFile);
  app->add_option("--tls-cert", files->cert,
                  "PEM certificate presented to batond for mutual TLS (or "
                  "set BATON_TLS_CERT)")
      ->check(CLI::ExistingFile);
  app->add_option("--tls-key", files->key,
                  "PEM private key of --tls-cert (or set BATON_TLS_KEY)")
      ->check(CLI::ExistingFile);
}

}  // namespace baton

#endif  // BATON_COMMON_TLS_FLAGS_H_
