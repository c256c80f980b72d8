#ifndef BATON_TESTS_SUPPORT_TEST_PKI_H_
#define BATON_TESTS_SUPPORT_TEST_PKI_H_

#include <filesystem>
#include <string>
#include <vector>

#include "common/tls.h"

namespace baton::testing {

// A certificate authority and certificates it signs, made with the openssl
// command (P-256 keys) in `dir` at test time, so no key is ever committed.
// Not thread-safe. Throws std::runtime_error if openssl fails.
class TestPki {
 public:
  // Makes a CA named `name` (its files are `name`.pem and `name`.key).
  TestPki(std::filesystem::path dir, const std::string& name = "test-ca");

  const std::string& ca() const { return ca_cert_; }

  // A certificate for `name`, valid for 127.0.0.1 and localhost plus
  // `sans` (openssl's form: "URI:spiffe://baton/bank", "DNS:bank"), for
  // server and client use. With `expired`, its validity ended yesterday.
  // The files are `name`.pem and `name`.key; issuing the same name again
  // replaces them in place, as a rotation does.
  TlsFiles Issue(const std::string& name,
                 const std::vector<std::string>& sans = {},
                 bool expired = false);

 private:
  void Run(const std::vector<std::string>& argv);

  std::filesystem::path dir_;
  std::string ca_cert_, ca_key_;
  int runs_ = 0;
};

}  // namespace baton::testing

#endif  // BATON_TESTS_SUPPORT_TEST_PKI_H_
