#include "coordinator/metrics_http.h"

namespace baton {

absl::StatusOr<std::unique_ptr<HttpServer>> StartMetricsHttp(
    const std::string& listen, const TlsFiles& tls,
    std::function<std::string()> render) {
  return HttpServer::Start(
      "metrics", listen, tls, HttpServer::Limits{},
      [render = std::move(render)](
          const HttpRequest& request,
          const std::function<void(HttpResponse)>& respond) {
        HttpResponse response;
        if (request.path != "/metrics") {
          response.status = 404;
          response.body = "not found: try /metrics\n";
        } else if (request.method != "GET" && request.method != "HEAD") {
          response.status = 405;
          response.body = "only GET\n";
        } else {
          response.content_type = "text/plain; version=0.0.4; charset=utf-8";
          response.body = render();
        }
        respond(std::move(response));
      });
}

}  // namespace baton
