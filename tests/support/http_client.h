#ifndef BATON_TESTS_SUPPORT_HTTP_CLIENT_H_
#define BATON_TESTS_SUPPORT_HTTP_CLIENT_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/message.h"

// Plain HTTP/1.1 to 127.0.0.1, one request per connection, for tests of
// batond's metrics and console ports.
namespace baton::testing {

struct HttpReply {
  int status = 0;  // 0: no answer (the connection failed or was closed).
  std::multimap<std::string, std::string> headers;  // Names in lower case.
  std::string body;

  // The first value of header `lower_case_name`, or "".
  std::string Header(const std::string& lower_case_name) const;
};

HttpReply HttpRequestTo(
    int port, const std::string& method, const std::string& target,
    const std::string& body = "",
    const std::vector<std::pair<std::string, std::string>>& headers = {});

// A signed-in operator of the console at `port`: its cookie and CSRF token
// sent with every call.
class ConsoleSession {
 public:
  explicit ConsoleSession(int port) : port_(port) {}

  // POSTs the token to /api/login as the page does, and keeps the
  // session it opens, if it opens one.
  HttpReply SignIn(const std::string& token);

  HttpReply Get(const std::string& target, bool with_csrf = true) const;
  HttpReply Post(const std::string& target, const std::string& body,
                 bool with_csrf = true) const;

  int port() const { return port_; }

 private:
  int port_;
  std::string cookie_, csrf_;
};

// Parses a console body into `message`, ignoring the fields the console
// adds beside the message's own ("missing", "nodes").
bool ParseJsonBody(const std::string& body, google::protobuf::Message* message);

}  // namespace baton::testing

#endif  // BATON_TESTS_SUPPORT_HTTP_CLIENT_H_
