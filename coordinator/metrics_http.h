#ifndef BATON_COORDINATOR_METRICS_HTTP_H_
#define BATON_COORDINATOR_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls.h"

namespace baton {

// A minimal HTTP/1.1 server for Prometheus: GET /metrics answers with
// whatever `render` returns, in the text exposition format; anything else is
// 404 or 405. One thread serves every connection asynchronously; a client
// that stalls for 5 s is dropped.
//
// With `tls.cert`, it speaks HTTPS only, and with `tls.ca` requires a
// client certificate that chains to it; the files are read again when they
// change (looked at every `tls.refresh`), for the connections that follow.
class MetricsHttpServer {
 public:
  // Listens on "HOST:PORT" (HOST an IP address; port 0 picks a free one).
  // UNAVAILABLE if it cannot bind; INVALID_ARGUMENT for a malformed address;
  // FAILED_PRECONDITION for TLS files OpenSSL refuses.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, const TlsFiles& tls,
      std::function<std::string()> render);

  // Stops serving and joins the thread.
  ~MetricsHttpServer();

  int port() const;

 private:
  struct Impl;
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_METRICS_HTTP_H_
