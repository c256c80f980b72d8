#ifndef BATON_COORDINATOR_METRICS_HTTP_H_
#define BATON_COORDINATOR_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls.h"
#include "coordinator/http_server.h"

namespace baton {

// Serves Prometheus on `listen` (see HttpServer for TLS and errors): GET or
// HEAD /metrics answers with whatever `render` returns, in the text
// exposition format; anything else is 404 or 405.
absl::StatusOr<std::unique_ptr<HttpServer>> StartMetricsHttp(
    const std::string& listen, const TlsFiles& tls,
    std::function<std::string()> render);

}  // namespace baton

#endif  // BATON_COORDINATOR_METRICS_HTTP_H_
