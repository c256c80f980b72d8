#include "tests/support/test_pki.h"

#include <ctime>
#include <fstream>
#include <stdexcept>

#include "common/child_process.h"

namespace baton::testing {

using namespace std::chrono_literals;

TestPki::TestPki(std::filesystem::path dir, const std::string& name)
    : dir_(std::move(dir)) {
  ca_cert_ = (dir_ / (name + ".pem")).string();
  ca_key_ = (dir_ / (name + ".key")).string();
  Run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key_, "-out",
       ca_cert_, "-days", "30", "-subj", "/CN=" + name});
}

TlsFiles TestPki::Issue(const std::string& name,
                        const std::vector<std::string>& sans, bool expired) {
  std::string base = (dir_ / name).string();
  std::string san = "DNS:localhost,IP:127.0.0.1";
  for (const std::string& s : sans) san += "," + s;
  std::ofstream(base + ".ext") << "basicConstraints=CA:FALSE\n"
                               << "keyUsage=digitalSignature,keyEncipherment\n"
                               << "extendedKeyUsage=serverAuth,clientAuth\n"
                               << "subjectAltName=" << san << "\n";
  // Written beside the live files and moved over them, so a server that
  // reads them mid-way sees the old pair or the new one.
  Run({"/usr/bin/openssl", "req", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:P-256", "-nodes", "-keyout", base + ".key.next",
       "-out", base + ".csr", "-subj", "/CN=" + name});
  std::vector<std::string> sign = {"/usr/bin/openssl",
                                   "x509",
                                   "-req",
                                   "-in",
                                   base + ".csr",
                                   "-CA",
                                   ca_cert_,
                                   "-CAkey",
                                   ca_key_,
                                   "-CAcreateserial",
                                   "-out",
                                   base + ".pem.next",
                                   "-days",
                                   "1",
                                   "-extfile",
                                   base + ".ext"};
  if (expired) {
    // Signed as of three days ago, valid for one.
    std::time_t then = std::time(nullptr) - 3 * 24 * 3600;
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S",
                  std::localtime(&then));
    sign.insert(sign.begin(), {"/usr/bin/faketime", stamp});
  }
  Run(sign);
  std::filesystem::rename(base + ".key.next", base + ".key");
  std::filesystem::rename(base + ".pem.next", base + ".pem");
  return TlsFiles{.cert = base + ".pem", .key = base + ".key", .ca = ca_cert_};
}

void TestPki::Run(const std::vector<std::string>& argv) {
  auto process =
      ChildProcess::Start("openssl-" + std::to_string(++runs_), argv, {}, dir_);
  int code = process->WaitExit(30s);
  if (code != 0) {
    throw std::runtime_error("openssl failed (" + std::to_string(code) +
                             "): " + process->Stderr());
  }
}

}  // namespace baton::testing
