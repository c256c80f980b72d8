#include "coordinator/console/console.h"

#include <map>
#include <optional>

#include "absl/synchronization/mutex.h"
#include "baton/v1/admin_service.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "coordinator/authz.h"
#include "coordinator/console/console_api.h"
#include "coordinator/console/console_sessions.h"
#include "coordinator/http_server.h"
#include "fmt/format.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace baton {

// console_assets.cc, generated from console/assets/ at build time.
std::string_view EmbeddedFile(std::string_view name);

namespace {

constexpr char kCookie[] = "baton_console";

void AddSecurityHeaders(HttpResponse* response) {
  response->headers.push_back(
      {"Content-Security-Policy",
       "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'"});
  response->headers.push_back({"X-Content-Type-Options", "nosniff"});
  response->headers.push_back({"X-Frame-Options", "DENY"});
  response->headers.push_back({"Referrer-Policy", "no-referrer"});
}

// The page's own files, or 404.
HttpResponse Asset(std::string_view path) {
  static const std::map<std::string_view,
                        std::pair<std::string_view, std::string_view>>
      kAssets = {
          {"/", {"index.html", "text/html; charset=utf-8"}},
          {"/index.html", {"index.html", "text/html; charset=utf-8"}},
          {"/console.css", {"console.css", "text/css; charset=utf-8"}},
          {"/console.js", {"console.js", "text/javascript; charset=utf-8"}},
      };
  HttpResponse response;
  if (path == "/favicon.ico") {  // Browsers ask; the page has none.
    response.status = 204;
    return response;
  }
  auto it = kAssets.find(path);
  if (it == kAssets.end()) {
    response.status = 404;
    response.body = "not found\n";
    return response;
  }
  response.content_type = std::string(it->second.second);
  response.body = std::string(EmbeddedFile(it->second.first));
  response.headers.push_back({"Cache-Control", "no-cache"});
  return response;
}

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string CookieValue(const std::string& header, std::string_view name) {
  std::string_view rest = header;
  while (!rest.empty()) {
    size_t semicolon = rest.find(';');
    std::string_view pair = rest.substr(0, semicolon);
    rest =
        semicolon == std::string_view::npos ? "" : rest.substr(semicolon + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      return std::string(pair.substr(eq + 1));
    }
  }
  return "";
}

std::string SessionJson(const ConsoleSessions::Session& session) {
  return fmt::format(R"({{"csrf_token":"{}","expires_unix_ms":"{}"}})",
                     session.csrf_token, session.expires_unix_ms);
}

// A state change from a page of another origin is refused even with the
// cookie: browsers send Origin on every cross-origin POST.
// The string `name` of a JSON object body ("" when it has none), or nullopt
// for a body that is not a JSON object.
std::optional<std::string> StringField(const std::string& json,
                                       const std::string& name) {
  google::protobuf::Struct body;
  if (!google::protobuf::util::JsonStringToMessage(json, &body).ok()) {
    return std::nullopt;
  }
  auto field = body.fields().find(name);
  return field == body.fields().end() ? "" : field->second.string_value();
}

bool SameOrigin(const HttpRequest& request) {
  const std::string& origin = request.Header("origin");
  if (origin.empty()) return true;
  return origin ==
         (request.tls ? "https://" : "http://") + request.Header("host");
}

}  // namespace

struct Console::Impl {
  Options options;
  Backend backend;
  std::shared_ptr<console::ConsoleNodes> nodes;
  ConsoleSessions sessions;
  std::unique_ptr<HttpServer> http;

  Impl(const Options& o, Backend b)
      : options(o),
        backend(std::move(b)),
        nodes(std::make_shared<console::ConsoleNodes>(
            backend.self_address,
            std::make_shared<console::NodeStubs>(console::NodeStubs{
                v1::AdminService::NewStub(backend.admin),
                v1::TransactionService::NewStub(backend.transactions)}),
            backend.peer_credentials)),
        sessions(backend.clock, o.session_lifetime_ms, o.max_sessions) {}

  // The cluster as of now, for one request.
  console::Caller CallerFor(const ConsoleSessions::Session& session) {
    console::Caller caller{
        .nodes = nodes, .admin_token = session.admin_token, .actor = "console"};
    std::optional<v1::Topology> topology;
    if (backend.topology) topology = backend.topology();
    if (topology && topology->nodes_size() > 1) caller.topology = topology;
    caller.fleet = std::make_shared<const Fleet>(
        Fleet::From(backend.self_address, topology));
    nodes->KeepOnly(*caller.fleet);
    return caller;
  }

  void Handle(const HttpRequest& request, console::Respond respond) {
    auto secured = [respond = std::move(respond)](HttpResponse response) {
      AddSecurityHeaders(&response);
      respond(std::move(response));
    };
    if (!request.path.starts_with("/api/")) {
      if (request.method != "GET" && request.method != "HEAD") {
        return secured(console::JsonError(405, "only GET"));
      }
      return secured(Asset(request.path));
    }
    const bool read = request.method == "GET";
    if (!read && !SameOrigin(request)) {
      return secured(
          console::JsonError(403, "a request from another site's page"));
    }
    if (request.path == "/api/login") {
      if (request.method != "POST" ||
          !request.Header("content-type").starts_with("application/json")) {
        return secured(console::JsonError(
            405, R"(sign in with a POST of {"token": "..."} as JSON)"));
      }
      return secured(Login(request));
    }
    std::optional<ConsoleSessions::Session> session =
        sessions.Find(CookieValue(request.Header("cookie"), kCookie));
    if (!session) {
      return secured(console::JsonError(401, "sign in first"));
    }
    // Reads need the CSRF token too: browsers send the cookie to every
    // port of this host, so the cookie alone must open nothing.
    if (!ConstantTimeEquals(request.Header("x-csrf-token"),
                            session->csrf_token)) {
      return secured(
          read ? console::JsonError(401, "sign in again")
               : console::JsonError(
                     403, "missing or wrong CSRF token: reload the console"));
    }
    Route(request, *session, std::move(secured));
  }

  HttpResponse Login(const HttpRequest& request) {
    std::optional<std::string> given = StringField(request.body, "token");
    if (!given) {
      return console::JsonError(400, R"(sign in with {"token": "..."})");
    }
    std::string token = std::move(*given);
    if (backend.admin_token.empty()) {
      return console::JsonError(
          403,
          "the admin API is off, so the console is too: batond needs an "
          "admin token (--admin-token-file or BATON_ADMIN_TOKEN)");
    }
    if (!ConstantTimeEquals(token, backend.admin_token)) {
      if (backend.log != nullptr) {
        CountRefusal("console", token.empty() ? "no_token" : "wrong_token",
                     "a console sign-in without the admin token", backend.log);
      }
      return console::JsonError(401, "that is not the admin token");
    }
    absl::StatusOr<ConsoleSessions::Session> session =
        sessions.Open(std::move(token));
    if (!session.ok()) {
      return console::JsonError(500, std::string(session.status().message()));
    }
    HttpResponse response = console::Json(200, SessionJson(*session));
    response.headers.push_back(
        {"Set-Cookie",
         fmt::format("{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                     kCookie, session->id, options.session_lifetime_ms / 1000,
                     request.tls ? "; Secure" : "")});
    return response;
  }

  void Route(const HttpRequest& request,
             const ConsoleSessions::Session& session,
             console::Respond respond) {
    const std::string& path = request.path;
    const bool get = request.method == "GET";
    if (path == "/api/session" && get) {
      return respond(console::Json(200, SessionJson(session)));
    }
    if (path == "/api/logout" && !get) {
      sessions.Close(session.id);
      HttpResponse response = console::Json(200, "{}");
      response.headers.push_back(
          {"Set-Cookie", fmt::format("{}=; Path=/; HttpOnly; SameSite=Strict; "
                                     "Max-Age=0",
                                     kCookie)});
      return respond(std::move(response));
    }
    console::Caller caller = CallerFor(session);
    if (path == "/api/overview" && get) {
      return console::Overview(caller, std::move(respond));
    }
    if (path == "/api/participants" && get) {
      return console::Participants(caller, std::move(respond));
    }
    if (path == "/api/transactions" && get) {
      return console::ListTransactions(
          caller, console::ParseQuery(request.query), backend.clock->WallMs(),
          std::move(respond));
    }
    constexpr std::string_view kOne = "/api/transactions/";
    if (path.starts_with(kOne)) {
      std::string_view rest = std::string_view(path).substr(kOne.size());
      size_t slash = rest.find('/');
      std::string xid = console::PercentDecode(rest.substr(0, slash),
                                               /*plus_is_space=*/false);
      if (slash == std::string_view::npos && get) {
        return console::ShowTransaction(caller, xid, std::move(respond));
      }
      if (slash != std::string_view::npos && request.method == "POST") {
        return console::Act(caller, xid, rest.substr(slash + 1),
                            StringField(request.body, "reason").value_or(""),
                            std::move(respond));
      }
    }
    respond(
        console::JsonError(404, fmt::format("no {} {}", request.method, path)));
  }
};

absl::StatusOr<std::unique_ptr<Console>> Console::Start(const Options& options,
                                                        Backend backend) {
  auto impl = std::make_unique<Impl>(options, std::move(backend));
  Impl* raw = impl.get();
  absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start(
      "console", options.listen, options.tls, HttpServer::Limits{},
      [raw](const HttpRequest& request, console::Respond respond) {
        raw->Handle(request, std::move(respond));
      });
  if (!http.ok()) return http.status();
  impl->http = std::move(*http);
  return std::unique_ptr<Console>(new Console(std::move(impl)));
}

Console::Console(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Console::~Console() { impl_->http.reset(); }

int Console::port() const { return impl_->http->port(); }

}  // namespace baton
