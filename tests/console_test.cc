// The operators' console's HTTP side against a real batond: signing in, the
// session cookie and the CSRF token, and a stuck transaction found, retried
// and rolled back by hand through the JSON API, with the audit to show.
#define BOOST_TEST_MODULE console
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "baton/v1/admin_service.pb.h"
#include "tests/support/bank_cluster.h"
#include "tests/support/http_client.h"

namespace baton::testing {
namespace {

constexpr char kToken[] = "console-s3cret";

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A batond with its console on a free port and a rollback-stuck transfer:
// bank-d keeps failing its rollback.
class Console {
 public:
  Console() {
    const std::string token_file = (cluster.dir() / "admin.token").string();
    std::ofstream(token_file) << kToken << "\n";
    const std::string port_file = (cluster.dir() / "console.port").string();
    cluster.StartCoordinator(
        {},
        {"--admin-token-file", token_file, "--retry-window-ms", "300",
         "--console-listen", "127.0.0.1:0", "--console-port-file", port_file});
    port = WaitForPortFile(port_file, 20s);
    BOOST_REQUIRE(port > 0);
    session = ConsoleSession(port);
    cluster.StartBank("bank-c", {"carol=100"});
    cluster.StartBank("bank-d", {"dave=50"},
                      {"BATON_FAILPOINTS=participant_before_rollback=error"});
    auto abandoned = cluster.Transfer("bank-d", "dave", "bank-c", "carol", 20,
                                      {"--rollback", "--no-wait"});
    BOOST_REQUIRE_MESSAGE(abandoned.outcome == "rolled-back", abandoned.output);
    stuck = abandoned.xid;
    BOOST_REQUIRE(
        cluster.WaitForStatus(stuck, v1::GLOBAL_STATUS_ROLLBACK_STUCK));
  }

  HttpReply SignIn(const std::string& token) { return session.SignIn(token); }
  // Signs in and keeps the cookie and the CSRF token.
  void SignIn() {
    HttpReply reply = session.SignIn(kToken);
    BOOST_REQUIRE_MESSAGE(reply.status == 200, reply.body);
  }
  HttpReply Get(const std::string& target, bool with_csrf = true) {
    return session.Get(target, with_csrf);
  }
  HttpReply Post(const std::string& target, const std::string& body,
                 bool with_csrf = true) {
    return session.Post(target, body, with_csrf);
  }

  BankCluster cluster;
  int port = 0;
  ConsoleSession session{0};
  std::string stuck;
};

BOOST_AUTO_TEST_CASE(signing_in_needs_the_token_and_gives_a_strict_cookie) {
  Console c;
  HttpReply not_json =
      HttpRequestTo(c.port, "POST", "/api/login",
                    std::string(R"({"token": ")") + kToken + "\"}",
                    {{"Content-Type", "text/plain"}});
  BOOST_TEST(not_json.status == 405);
  BOOST_TEST(not_json.Header("set-cookie").empty());
  HttpReply wrong = c.SignIn("guess");
  BOOST_TEST(wrong.status == 401);
  BOOST_TEST(wrong.Header("set-cookie").empty());
  BOOST_TEST(Has(wrong.body, "not the admin token"), wrong.body);

  HttpReply right = c.SignIn(kToken);
  BOOST_TEST(right.status == 200, right.body);
  const std::string cookie = right.Header("set-cookie");
  BOOST_TEST(cookie.starts_with("baton_console="), cookie);
  BOOST_TEST(Has(cookie, "HttpOnly"), cookie);
  BOOST_TEST(Has(cookie, "SameSite=Strict"), cookie);
  BOOST_TEST(Has(cookie, "Max-Age="), cookie);
  BOOST_TEST(!Has(right.body, kToken), "the token is never sent back");
}

BOOST_AUTO_TEST_CASE(without_a_session_or_csrf_token_nothing_changes) {
  Console c;
  for (const char* target : {"/api/overview", "/api/transactions",
                             "/api/participants", "/api/session"}) {
    HttpReply anonymous = HttpRequestTo(c.port, "GET", target);
    BOOST_TEST(anonymous.status == 401, target);
  }
  HttpReply forged =
      HttpRequestTo(c.port, "POST", "/api/transactions/" + c.stuck + "/retry",
                    "{}", {{"Cookie", "baton_console=0123456789abcdef"}});
  BOOST_TEST(forged.status == 401);

  c.SignIn();
  // The cookie alone reads nothing either: browsers send it to every port
  // of the host.
  BOOST_TEST(c.Get("/api/overview", /*with_csrf=*/false).status == 401);
  BOOST_TEST(c.Get("/api/session", /*with_csrf=*/false).status == 401);
  HttpReply no_csrf = c.Post("/api/transactions/" + c.stuck + "/force-rollback",
                             R"({"reason": "x"})", /*with_csrf=*/false);
  BOOST_TEST(no_csrf.status == 403);
  BOOST_TEST(Has(no_csrf.body, "CSRF"), no_csrf.body);
  HttpReply other_site = HttpRequestTo(c.port, "POST", "/api/logout", "{}",
                                       {{"Origin", "https://evil.example"}});
  BOOST_TEST(other_site.status == 403);  // Refused for its origin alone.
  absl::StatusOr<v1::Transaction> t = c.cluster.GetTransaction(c.stuck);
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t->status() == v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  BOOST_TEST(t->audit_size() == 0);

  BOOST_TEST(c.Post("/api/logout", "{}").status == 200);
  BOOST_TEST(c.Get("/api/overview").status == 401);
}

BOOST_AUTO_TEST_CASE(a_stuck_transaction_is_found_retried_and_rolled_back) {
  Console c;
  c.SignIn();
  HttpReply overview = c.Get("/api/overview");
  BOOST_REQUIRE_MESSAGE(overview.status == 200, overview.body);
  BOOST_TEST(Has(overview.body, "GLOBAL_STATUS_ROLLBACK_STUCK"), overview.body);
  BOOST_TEST(Has(overview.body, R"("rate":[)"), overview.body);

  HttpReply list = c.Get("/api/transactions?status=needs-attention");
  BOOST_REQUIRE_MESSAGE(list.status == 200, list.body);
  v1::ListTransactionsResponse listed;
  BOOST_REQUIRE(ParseJsonBody(list.body, &listed));
  BOOST_REQUIRE(listed.transactions_size() == 1);
  BOOST_TEST(listed.transactions(0).xid() == c.stuck);
  BOOST_TEST(Has(list.body, R"("missing":[])"), list.body);
  BOOST_TEST(c.Get("/api/transactions?status=sideways").status == 400);
  HttpReply typo = c.Get("/api/transactions?statuss=commit-stuck");
  BOOST_TEST(typo.status == 400);
  BOOST_TEST(Has(typo.body, "statuss"), typo.body);

  HttpReply shown = c.Get("/api/transactions/" + c.stuck);
  BOOST_REQUIRE_MESSAGE(shown.status == 200, shown.body);
  v1::Transaction t;
  BOOST_REQUIRE(ParseJsonBody(shown.body, &t));
  BOOST_TEST(t.status() == v1::GLOBAL_STATUS_ROLLBACK_STUCK);
  bool failing = false;
  for (const v1::Branch& b : t.branches()) {
    failing = failing || (b.resource() == "bank-d" && !b.last_error().empty());
  }
  BOOST_TEST(failing, shown.body);

  HttpReply retry = c.Post("/api/transactions/" + c.stuck + "/retry", "{}");
  BOOST_TEST(retry.status == 200, retry.body);
  HttpReply unexplained =
      c.Post("/api/transactions/" + c.stuck + "/force-rollback", "{}");
  BOOST_TEST(unexplained.status == 400, unexplained.body);
  HttpReply rollback =
      c.Post("/api/transactions/" + c.stuck + "/force-rollback",
             R"({"reason": "dave's hold released by hand"})");
  BOOST_TEST(rollback.status == 200, rollback.body);

  absl::StatusOr<v1::Transaction> after = c.cluster.GetTransaction(c.stuck);
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(after->status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_REQUIRE(after->audit_size() == 2);
  BOOST_TEST(after->audit(0).action() == "retry");
  BOOST_TEST(after->audit(1).action() == "force-rollback");
  BOOST_TEST(after->audit(1).reason() == "dave's hold released by hand");
  BOOST_TEST(after->audit(1).actor() == "console");
  BOOST_TEST(
      c.Post("/api/transactions/" + c.stuck + "/sideways", "{}").status == 404);
  BOOST_TEST(c.Get("/api/participants").status == 200);
}

BOOST_AUTO_TEST_CASE(the_page_is_embedded_and_served_with_security_headers) {
  Console c;
  HttpReply page = HttpRequestTo(c.port, "GET", "/");
  BOOST_TEST(page.status == 200);
  BOOST_TEST(Has(page.Header("content-type"), "text/html"));
  BOOST_TEST(Has(page.body, "/console.js"), page.body);
  BOOST_TEST(Has(page.Header("content-security-policy"), "default-src 'self'"));
  BOOST_TEST(page.Header("x-frame-options") == "DENY");
  HttpReply script = HttpRequestTo(c.port, "GET", "/console.js");
  BOOST_TEST(script.status == 200);
  BOOST_TEST(script.body.size() > 1000u);
  BOOST_TEST(HttpRequestTo(c.port, "GET", "/console.css").status == 200);
  BOOST_TEST(HttpRequestTo(c.port, "GET", "/etc/passwd").status == 404);
}

}  // namespace
}  // namespace baton::testing
