#ifndef BATON_COORDINATOR_HTTP_SERVER_H_
#define BATON_COORDINATOR_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls.h"

namespace baton {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // The target up to '?', not decoded.
  std::string query;   // After '?', not decoded; empty if none.
  std::map<std::string, std::string> headers;  // Names in lower case.
  std::string body;
  bool tls = false;  // Whether it came over HTTPS.

  // The header's value, or "" without one.
  const std::string& Header(const std::string& lower_case_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Answers one request by calling `respond` once, on any thread, now or
// later: a handler may wait for the store without holding the server's
// thread.
using HttpHandler = std::function<void(
    const HttpRequest& request, std::function<void(HttpResponse)> respond)>;

// A small HTTP/1.1 server (Boost.Beast) for batond's metrics and console.
// One thread serves every connection asynchronously; a client that stalls
// for 5 s is dropped, and a request whose head or body is over the limits
// is refused (431, 413) without being read further.
//
// With `tls.cert`, it speaks HTTPS only, and with `tls.ca` requires a
// client certificate that chains to it; the files are read again when they
// change (looked at every `tls.refresh`), for the connections that follow.
class HttpServer {
 public:
  struct Limits {
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 64 * 1024;
  };

  // Listens on "HOST:PORT" (HOST an IP address; port 0 picks a free one).
  // `what` names the server in errors and logs ("metrics", "console").
  // UNAVAILABLE if it cannot bind; INVALID_ARGUMENT for a malformed
  // address; FAILED_PRECONDITION for TLS files OpenSSL refuses.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& what, const std::string& listen, const TlsFiles& tls,
      const Limits& limits, HttpHandler handler);

  // Stops serving and joins the thread; responses not yet written are
  // dropped.
  ~HttpServer();

  int port() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_HTTP_SERVER_H_
