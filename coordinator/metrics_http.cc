#include "coordinator/metrics_http.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <thread>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr auto kIdleTimeout = std::chrono::seconds(5);

// One connection: (the TLS handshake, then) read a request, answer it,
// repeat while kept alive.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `context` (the TLS context `stream` was made with, or null) is kept for
  // as long as the session: a reload does not pull it from under it.
  Session(std::shared_ptr<void> context, Stream stream,
          const std::function<std::string()>* render)
      : context_(std::move(context)),
        stream_(std::move(stream)),
        render_(render) {}

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      Read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
      stream_.async_handshake(
          ssl::stream_base::server,
          [self = this->shared_from_this()](beast::error_code ec) {
            if (!ec) self->Read();
          });
    }
  }

 private:
  void Read() {
    request_ = {};
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, request_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (!ec) self->Answer();
        });
  }

  void Answer() {
    auto response = std::make_shared<http::response<http::string_body>>();
    response->version(request_.version());
    response->keep_alive(request_.keep_alive());
    if (request_.target() != "/metrics") {
      response->result(http::status::not_found);
      response->body() = "not found: try /metrics\n";
    } else if (request_.method() != http::verb::get &&
               request_.method() != http::verb::head) {
      response->result(http::status::method_not_allowed);
      response->body() = "only GET\n";
    } else {
      response->result(http::status::ok);
      response->set(http::field::content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
      response->body() = (*render_)();
    }
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = this->shared_from_this(), response](
                          beast::error_code ec, size_t) {
                        if (ec || !response->keep_alive()) {
                          beast::get_lowest_layer(self->stream_)
                              .socket()
                              .shutdown(tcp::socket::shutdown_send, ec);
                          return;
                        }
                        self->Read();
                      });
  }

  const std::shared_ptr<void> context_;  // Outlives stream_.
  Stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  const std::function<std::string()>* render_;
};

// The TLS context for new connections, built again when a file changed.
// Used on the server's one thread only.
class TlsContexts {
 public:
  explicit TlsContexts(TlsFiles files) : files_(std::move(files)) {}

  absl::Status Load() {
    stamp_ = Stamp();
    return Build(&current_);
  }

  std::shared_ptr<ssl::context> Current() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_look_ < files_.refresh) return current_;
    last_look_ = now;
    std::filesystem::file_time_type stamp = Stamp();
    if (stamp == stamp_) return current_;
    std::shared_ptr<ssl::context> next;
    if (absl::Status s = Build(&next); !s.ok()) {
      // A rotation caught half way: keep serving what worked, look again.
      spdlog::warn("metrics TLS files changed but do not load yet: {}",
                   s.ToString());
      return current_;
    }
    stamp_ = stamp;
    current_ = std::move(next);
    spdlog::info("metrics TLS certificate reloaded from {}", files_.cert);
    return current_;
  }

 private:
  std::filesystem::file_time_type Stamp() const {
    std::filesystem::file_time_type newest{};
    for (const std::string* path : {&files_.cert, &files_.key, &files_.ca}) {
      std::error_code ec;
      if (path->empty()) continue;
      newest = std::max(newest, std::filesystem::last_write_time(*path, ec));
    }
    return newest;
  }

  absl::Status Build(std::shared_ptr<ssl::context>* out) const {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    beast::error_code ec;
    context->set_options(ssl::context::default_workarounds |
                             ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                             ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                         ec);
    if (!ec) context->use_certificate_chain_file(files_.cert, ec);
    if (!ec) context->use_private_key_file(files_.key, ssl::context::pem, ec);
    if (!ec && !files_.ca.empty()) {
      context->load_verify_file(files_.ca, ec);
      if (!ec) {
        context->set_verify_mode(
            ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
      }
    }
    if (ec) {
      return absl::FailedPreconditionError(fmt::format(
          "cannot load the metrics TLS files ({}, {}{}): {}", files_.cert,
          files_.key, files_.ca.empty() ? "" : ", " + files_.ca, ec.message()));
    }
    *out = std::move(context);
    return absl::OkStatus();
  }

  const TlsFiles files_;
  std::shared_ptr<ssl::context> current_;
  std::filesystem::file_time_type stamp_{};
  std::chrono::steady_clock::time_point last_look_ =
      std::chrono::steady_clock::now();
};

}  // namespace

struct MetricsHttpServer::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::function<std::string()> render;
  std::unique_ptr<TlsContexts> tls;  // Null: plain HTTP.
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // Closed: stopping.
      if (tls == nullptr) {
        std::make_shared<Session<beast::tcp_stream>>(
            nullptr, beast::tcp_stream(std::move(socket)), &render)
            ->Start();
      } else {
        using TlsStream = beast::ssl_stream<beast::tcp_stream>;
        std::shared_ptr<ssl::context> context = tls->Current();
        TlsStream stream(beast::tcp_stream(std::move(socket)), *context);
        std::make_shared<Session<TlsStream>>(std::move(context),
                                             std::move(stream), &render)
            ->Start();
      }
      Accept();
    });
  }
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, const TlsFiles& tls,
    std::function<std::string()> render) {
  size_t colon = listen.rfind(':');
  beast::error_code ec;
  asio::ip::address address = asio::ip::make_address(
      colon == std::string::npos ? "" : listen.substr(0, colon), ec);
  int port = -1;
  if (!ec && colon != std::string::npos) {
    try {
      port = std::stoi(listen.substr(colon + 1));
    } catch (...) {
    }
  }
  if (ec || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(fmt::format(
        "metrics address '{}' is not IP:PORT (e.g. 127.0.0.1:9464)", listen));
  }
  auto impl = std::make_unique<Impl>();
  impl->render = std::move(render);
  if (tls.server_enabled()) {
    impl->tls = std::make_unique<TlsContexts>(tls);
    if (absl::Status s = impl->tls->Load(); !s.ok()) return s;
  }
  tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        fmt::format("cannot serve metrics on {}: {}", listen, ec.message()));
  }
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<MetricsHttpServer>(
      new MetricsHttpServer(std::move(impl)));
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

MetricsHttpServer::~MetricsHttpServer() {
  impl_->io.stop();
  impl_->thread.join();
}

int MetricsHttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace baton
