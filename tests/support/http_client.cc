#include "tests/support/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace baton::testing {

std::string HttpReply::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpReply HttpRequestTo(
    int port, const std::string& method, const std::string& target,
    const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(10));
  beast::error_code ec;
  stream.connect(
      boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                     static_cast<uint16_t>(port)),
      ec);
  HttpReply reply;
  if (ec) return reply;
  http::request<http::string_body> request(http::string_to_verb(method), target,
                                           11);
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request, ec);
  if (ec) return reply;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, ec);
  if (ec) return reply;
  reply.status = response.result_int();
  for (const auto& field : response) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(c));
    reply.headers.emplace(name, std::string(field.value()));
  }
  reply.body = response.body();
  return reply;
}

HttpReply ConsoleSession::SignIn(const std::string& token) {
  HttpReply reply = HttpRequestTo(port_, "POST", "/api/login",
                                  R"({"token": ")" + token + R"("})",
                                  {{"Content-Type", "application/json"}});
  google::protobuf::Struct session;
  if (reply.status != 200 || !ParseJsonBody(reply.body, &session)) {
    return reply;
  }
  const std::string cookie = reply.Header("set-cookie");
  cookie_ = cookie.substr(0, cookie.find(';'));
  auto csrf = session.fields().find("csrf_token");
  if (csrf != session.fields().end()) csrf_ = csrf->second.string_value();
  return reply;
}

HttpReply ConsoleSession::Get(const std::string& target, bool with_csrf) const {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Cookie", cookie_}};
  if (with_csrf) headers.push_back({"X-CSRF-Token", csrf_});
  return HttpRequestTo(port_, "GET", target, "", headers);
}

HttpReply ConsoleSession::Post(const std::string& target,
                               const std::string& body, bool with_csrf) const {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Cookie", cookie_}, {"Content-Type", "application/json"}};
  if (with_csrf) headers.push_back({"X-CSRF-Token", csrf_});
  return HttpRequestTo(port_, "POST", target, body, headers);
}

bool ParseJsonBody(const std::string& body,
                   google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(body, message, options)
      .ok();
}

}  // namespace baton::testing
