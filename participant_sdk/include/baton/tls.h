#ifndef BATON_TLS_H_
#define BATON_TLS_H_

#include <string>

namespace baton {

// TLS to the coordinator, for TransactionClient and Participant. Each
// empty field is taken from the environment (BATON_TLS_CA, BATON_TLS_CERT,
// BATON_TLS_KEY); with all three empty the connection is plaintext.
//
// The files are PEM and are read again every 10 s, so certificates
// rotated in place are used for new connections without a restart.
struct TlsOptions {
  // Roots the coordinator's certificate must chain to. Empty with a
  // certificate set: the system's roots.
  std::string ca_file;
  // This process's certificate chain and key, presented for mutual TLS;
  // with an authorization policy at the coordinator, the certificate's
  // identity is what the policy names.
  std::string cert_file;
  std::string key_file;
};

}  // namespace baton

#endif  // BATON_TLS_H_
