#ifndef BATON_TESTS_SUPPORT_HTTP_CLIENT_H_
#define BATON_TESTS_SUPPORT_HTTP_CLIENT_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

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

}  // namespace baton::testing

#endif  // BATON_TESTS_SUPPORT_HTTP_CLIENT_H_
