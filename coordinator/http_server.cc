#include "coordinator/http_server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
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
// Connections open at once; more are closed as they come, so that a flood
// cannot take the process's file descriptors from the store and gRPC.
constexpr int kMaxConnections = 256;

// The sessions waiting for a handler's answer, and the way answers given on
// other threads are handed back to the server's thread. A session is kept
// alive here, not by the handler's callback, so that a server that stops
// drops what is still waiting while its io_context is still there; answers
// that come after that are dropped.
class AnswerQueue {
 public:
  explicit AnswerQueue(asio::io_context* io) : io_(io) {}

  void Hold(std::shared_ptr<void> session) {
    absl::MutexLock lock(&mu_);
    const void* key = session.get();
    held_.emplace(key, std::move(session));
  }
  void Release(const void* session) {
    std::shared_ptr<void> released;
    absl::MutexLock lock(&mu_);
    auto it = held_.find(session);
    if (it == held_.end()) return;
    released = std::move(it->second);
    held_.erase(it);
  }
  void Post(std::function<void()> write) {
    absl::MutexLock lock(&mu_);
    if (io_ != nullptr) asio::post(*io_, std::move(write));
  }
  // After the server's thread has stopped.
  void Close() {
    std::map<const void*, std::shared_ptr<void>> dropped;
    absl::MutexLock lock(&mu_);
    io_ = nullptr;
    dropped.swap(held_);
  }

 private:
  absl::Mutex mu_;
  asio::io_context* io_ ABSL_GUARDED_BY(mu_);
  std::map<const void*, std::shared_ptr<void>> held_ ABSL_GUARDED_BY(mu_);
};

HttpRequest ToRequest(const http::request<http::string_body>& in, bool tls) {
  HttpRequest out;
  out.method = std::string(in.method_string());
  std::string_view target(in.target().data(), in.target().size());
  size_t question = target.find('?');
  out.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) {
    out.query = std::string(target.substr(question + 1));
  }
  for (const auto& field : in) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(c));
    out.headers[name] = std::string(field.value());
  }
  out.body = in.body();
  out.tls = tls;
  return out;
}

// One connection: (the TLS handshake, then) read a request, answer it,
// repeat while kept alive. One request at a time: the next is read only
// once the answer is written.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `context` (the TLS context `stream` was made with, or null) is kept for
  // as long as the session: a reload does not pull it from under it.
  Session(std::shared_ptr<void> context, Stream stream,
          const HttpHandler* handler, const HttpServer::Limits* limits,
          std::shared_ptr<AnswerQueue> answers,
          std::shared_ptr<std::atomic<int>> open)
      : context_(std::move(context)),
        stream_(std::move(stream)),
        handler_(handler),
        limits_(limits),
        answers_(std::move(answers)),
        open_(std::move(open)) {
    open_->fetch_add(1);
  }
  ~Session() { open_->fetch_sub(1); }

  void Start() {
    if constexpr (kPlain) {
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
  static constexpr bool kPlain = std::is_same_v<Stream, beast::tcp_stream>;

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(limits_->max_header_bytes));
    parser_->body_limit(limits_->max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](
                         beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      HttpResponse refusal;
      refusal.status = ec == http::error::header_limit ? 431 : 413;
      refusal.body = fmt::format(
          "request too large: at most {} bytes of headers and {} of body\n",
          limits_->max_header_bytes, limits_->max_body_bytes);
      Write(std::move(refusal), /*keep_alive=*/false, 11);
      return;
    }
    if (ec) return;  // Closed, timed out or not HTTP: nothing to answer.
    const http::request<http::string_body>& request = parser_->get();
    head_ = request.method() == http::verb::head;
    const bool keep_alive = request.keep_alive();
    const unsigned version = request.version();
    answers_->Hold(this->shared_from_this());
    std::weak_ptr<Session> weak = this->shared_from_this();
    (*handler_)(
        ToRequest(request, !kPlain),
        [weak, queue = answers_, keep_alive, version](HttpResponse response) {
          queue->Post([weak, queue, response = std::move(response), keep_alive,
                       version]() mutable {
            std::shared_ptr<Session> self = weak.lock();
            if (self == nullptr) return;
            queue->Release(self.get());
            self->Write(std::move(response), keep_alive, version);
          });
        });
  }

  void Write(HttpResponse answer, bool keep_alive, unsigned version) {
    if (head_) {
      // The length a GET would get, and no body.
      auto response = std::make_shared<http::response<http::empty_body>>();
      Head(answer, keep_alive, version, response.get());
      response->content_length(answer.body.size());
      Send(std::move(response));
      return;
    }
    auto response = std::make_shared<http::response<http::string_body>>();
    Head(answer, keep_alive, version, response.get());
    response->body() = std::move(answer.body);
    response->prepare_payload();
    Send(std::move(response));
  }

  template <typename Response>
  static void Head(const HttpResponse& answer, bool keep_alive,
                   unsigned version, Response* response) {
    response->version(version);
    response->keep_alive(keep_alive);
    response->result(static_cast<unsigned>(answer.status));
    response->set(http::field::content_type, answer.content_type);
    for (const auto& [name, value] : answer.headers) {
      // Beast writes a value as given: one with a line break would split
      // the response.
      if (value.find_first_of("\r\n") != std::string::npos) continue;
      response->set(name, value);
    }
  }

  template <typename Response>
  void Send(std::shared_ptr<Response> response) {
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
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
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpHandler* const handler_;
  const HttpServer::Limits* const limits_;
  const std::shared_ptr<AnswerQueue> answers_;
  const std::shared_ptr<std::atomic<int>> open_;
  bool head_ = false;
};

// The TLS context for new connections, built again when a file changed.
// Used on the server's one thread only.
class TlsContexts {
 public:
  TlsContexts(std::string what, TlsFiles files)
      : what_(std::move(what)), files_(std::move(files)) {}

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
      spdlog::warn("{} TLS files changed but do not load yet: {}", what_,
                   s.ToString());
      return current_;
    }
    stamp_ = stamp;
    current_ = std::move(next);
    spdlog::info("{} TLS certificate reloaded from {}", what_, files_.cert);
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
          "cannot load the {} TLS files ({}, {}{}): {}", what_, files_.cert,
          files_.key, files_.ca.empty() ? "" : ", " + files_.ca, ec.message()));
    }
    *out = std::move(context);
    return absl::OkStatus();
  }

  const std::string what_;
  const TlsFiles files_;
  std::shared_ptr<ssl::context> current_;
  std::filesystem::file_time_type stamp_{};
  std::chrono::steady_clock::time_point last_look_ =
      std::chrono::steady_clock::now();
};

}  // namespace

const std::string& HttpRequest::Header(const std::string& name) const {
  static const std::string kNone;
  auto it = headers.find(name);
  return it == headers.end() ? kNone : it->second;
}

struct HttpServer::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer retry_accept{io};
  std::shared_ptr<std::atomic<int>> open =
      std::make_shared<std::atomic<int>>(0);
  int port = 0;
  std::string what;
  HttpHandler handler;
  Limits limits;
  std::shared_ptr<AnswerQueue> answers = std::make_shared<AnswerQueue>(&io);
  std::unique_ptr<TlsContexts> tls;  // Null: plain HTTP.
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
        return;  // Stopping.
      }
      if (ec) {
        // Out of file descriptors or memory for a moment: try again soon
        // rather than stop serving for good.
        spdlog::warn("{}: cannot accept a connection: {}", what, ec.message());
        retry_accept.expires_after(std::chrono::milliseconds(100));
        retry_accept.async_wait([this](beast::error_code waited) {
          if (!waited) Accept();
        });
        return;
      }
      if (open->load() >= kMaxConnections) {
        socket.close(ec);  // Full: the client may try again.
      } else if (tls == nullptr) {
        std::make_shared<Session<beast::tcp_stream>>(
            nullptr, beast::tcp_stream(std::move(socket)), &handler, &limits,
            answers, open)
            ->Start();
      } else {
        using TlsStream = beast::ssl_stream<beast::tcp_stream>;
        std::shared_ptr<ssl::context> context = tls->Current();
        TlsStream stream(beast::tcp_stream(std::move(socket)), *context);
        std::make_shared<Session<TlsStream>>(std::move(context),
                                             std::move(stream), &handler,
                                             &limits, answers, open)
            ->Start();
      }
      Accept();
    });
  }
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const std::string& what, const std::string& listen, const TlsFiles& tls,
    const Limits& limits, HttpHandler handler) {
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
        "{} address '{}' is not IP:PORT (e.g. 127.0.0.1:9464)", what, listen));
  }
  auto impl = std::make_unique<Impl>();
  impl->what = what;
  impl->handler = std::move(handler);
  impl->limits = limits;
  if (tls.server_enabled()) {
    impl->tls = std::make_unique<TlsContexts>(what, tls);
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
        fmt::format("cannot serve {} on {}: {}", what, listen, ec.message()));
  }
  impl->port = impl->acceptor.local_endpoint(ec).port();
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  impl_->io.stop();
  impl_->thread.join();
  impl_->answers->Close();
}

int HttpServer::port() const { return impl_->port; }

}  // namespace baton
