// TLS and mutual TLS on batond's listeners, with certificates made at test
// time: a commit end to end over TLS, a client certificate of the right CA
// accepted and every other one refused (none, another CA's, an expired
// one), a server of an untrusted CA refused by the client, a plaintext
// client refused by a TLS port, a certificate rotated while a participant's
// stream stays up, batonctl over mutual TLS, HTTPS metrics beside a
// plaintext health port, and batond refusing a bad setup at start. Then the
// authorization policy: a participant may serve only the resources its
// certificate (or, without mutual TLS, its token) is granted.
#define BOOST_TEST_MODULE tls
#include <grpcpp/grpcpp.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "baton/client.h"
#include "baton/participant.h"
#include "common/child_process.h"
#include "health.grpc.pb.h"
#include "tests/support/raw_participant.h"
#include "tests/support/recording_resource.h"
#include "tests/support/test_pki.h"

namespace baton {
namespace {

using namespace std::chrono_literals;
using testing::TestPki;

constexpr char kToken[] = "tls-test-admin-token";

// One batond on 127.0.0.1 serving TLS with `server` (and, with `client_ca`,
// mutual TLS), its metrics over HTTPS and its health in plaintext.
class TlsNode {
 public:
  TlsNode(const std::filesystem::path& dir, const TlsFiles& server, bool mutual,
          const std::vector<std::string>& flags = {}) {
    std::vector<std::string> argv = {BinPath("batond"),
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--data-dir",
                                     (dir / "data").string(),
                                     "--port-file",
                                     (dir / "port").string(),
                                     "--metrics-listen",
                                     "127.0.0.1:0",
                                     "--metrics-port-file",
                                     (dir / "metrics-port").string(),
                                     "--health-listen",
                                     "127.0.0.1:0",
                                     "--health-port-file",
                                     (dir / "health-port").string(),
                                     "--tls-cert",
                                     server.cert,
                                     "--tls-key",
                                     server.key,
                                     "--tls-refresh-s",
                                     "1"};
    if (mutual) argv.insert(argv.end(), {"--tls-client-ca", server.ca});
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = ChildProcess::Start(
        "batond", argv, {std::string("BATON_ADMIN_TOKEN=") + kToken}, dir);
    port_ = WaitForPortFile(dir / "port", 20s);
    BOOST_REQUIRE_MESSAGE(port_ != 0, process_->Stderr());
    metrics_port_ = WaitForPortFile(dir / "metrics-port", 20s);
    health_port_ = WaitForPortFile(dir / "health-port", 20s);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0, metrics_port_ = 0, health_port_ = 0;
};

TlsOptions Client(const TlsFiles& files, bool with_cert = true) {
  return {.ca_file = files.ca,
          .cert_file = with_cert ? files.cert : "",
          .key_file = with_cert ? files.key : ""};
}

// A Begin and Commit through a client with `tls`, giving up at once.
absl::Status BeginAndCommit(const std::string& address, TlsOptions tls) {
  auto client = TransactionClient::Connect({.coordinator = address,
                                            .call_timeout = 3s,
                                            .max_attempts = 1,
                                            .tls = std::move(tls)});
  if (!client.ok()) return client.status();
  auto txn = (*client)->Begin("over-tls");
  if (!txn.ok()) return txn.status();
  return (*txn)->Commit();
}

// A participant serving `resource` with `ledger`, attached to `node`.
std::unique_ptr<Participant> AttachedParticipant(const std::string& node,
                                                 const std::string& resource,
                                                 RecordingResource* ledger,
                                                 TlsOptions tls,
                                                 std::string token = "") {
  auto participant = Participant::Create({.coordinator = node,
                                          .service = resource,
                                          .tls = std::move(tls),
                                          .token = std::move(token)});
  BOOST_REQUIRE(participant.ok());
  BOOST_REQUIRE((*participant)->AddXaResource(resource, ledger).ok());
  BOOST_REQUIRE((*participant)->Start().ok());
  BOOST_REQUIRE((*participant)->WaitAttached(20s));
  return std::move(*participant);
}

// A transaction through `client` with a branch of `resource` enlisted at
// `participant`, committed and waited for: the resource was told to commit.
// Returns its xid.
std::string CommitWithBranch(TransactionClient& client,
                             Participant& participant,
                             const std::string& resource,
                             RecordingResource& ledger) {
  auto txn = client.Begin("with-a-branch");
  BOOST_REQUIRE_MESSAGE(txn.ok(), txn.status());
  BOOST_REQUIRE(participant.Enlist((*txn)->xid(), resource, "").ok());
  BOOST_REQUIRE((*txn)->Commit(/*wait=*/true).ok());
  BOOST_TEST((ledger.OutcomeOf((*txn)->xid()) ==
              RecordingResource::Outcome::kCommitted));
  return (*txn)->xid();
}

struct Fixture {
  TempDir dir;
  TestPki pki{dir.path()};
};

BOOST_FIXTURE_TEST_CASE(a_commit_over_tls_reaches_a_participant, Fixture) {
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/false);
  RecordingResource ledger;
  auto participant = AttachedParticipant(node.address(), "ledger", &ledger,
                                         {.ca_file = pki.ca()});
  auto client = TransactionClient::Connect(
      {.coordinator = node.address(), .tls = {.ca_file = pki.ca()}});
  BOOST_REQUIRE(client.ok());
  std::string xid = CommitWithBranch(**client, *participant, "ledger", ledger);
  auto record = (*client)->GetTransaction(xid);
  BOOST_REQUIRE(record.ok());
  BOOST_TEST(record->status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_FIXTURE_TEST_CASE(a_plaintext_client_is_refused_by_a_tls_port, Fixture) {
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/false);
  absl::Status plain = BeginAndCommit(node.address(), {});
  BOOST_TEST(absl::IsUnavailable(plain), plain);
  // Refusing it cost the node nothing.
  BOOST_TEST(BeginAndCommit(node.address(), {.ca_file = pki.ca()}).ok());
}

BOOST_FIXTURE_TEST_CASE(mutual_tls_takes_only_certificates_of_its_ca, Fixture) {
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/true);
  TlsFiles good = pki.Issue("bank", {"URI:spiffe://baton/bank"});
  BOOST_TEST(BeginAndCommit(node.address(), Client(good)).ok());

  // No certificate at all.
  absl::Status none = BeginAndCommit(node.address(), Client(good, false));
  BOOST_TEST(absl::IsUnavailable(none), none);
  // One of another CA.
  std::filesystem::create_directory(dir.path() / "other");
  TestPki other(dir.path() / "other", "other-ca");
  TlsFiles stranger = other.Issue("stranger");
  stranger.ca = pki.ca();  // It trusts the server; the server not it.
  absl::Status foreign = BeginAndCommit(node.address(), Client(stranger));
  BOOST_TEST(absl::IsUnavailable(foreign), foreign);
  // One of the right CA that expired.
  TlsFiles expired = pki.Issue("late", {}, /*expired=*/true);
  absl::Status late = BeginAndCommit(node.address(), Client(expired));
  BOOST_TEST(absl::IsUnavailable(late), late);
  // The node stayed healthy through all of it.
  BOOST_TEST(BeginAndCommit(node.address(), Client(good)).ok());
}

BOOST_FIXTURE_TEST_CASE(a_client_refuses_a_server_of_an_untrusted_ca, Fixture) {
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/false);
  std::filesystem::create_directory(dir.path() / "other");
  TestPki other(dir.path() / "other", "other-ca");
  absl::Status s = BeginAndCommit(node.address(), {.ca_file = other.ca()});
  BOOST_TEST(absl::IsUnavailable(s), s);
}

// The server's certificate is replaced in place by one of a second CA.
// A client that trusts only that CA gets in once batond has read the new
// files; the participant's stream, up since before, still carries phase
// two.
BOOST_FIXTURE_TEST_CASE(a_rotated_certificate_is_used_without_a_restart,
                        Fixture) {
  TlsFiles server = pki.Issue("batond");
  TlsNode node(dir.path(), server, /*mutual=*/false);
  std::filesystem::create_directory(dir.path() / "next");
  TestPki next(dir.path() / "next", "next-ca");
  std::string both = (dir.path() / "both.pem").string();
  {
    std::ofstream out(both);
    out << std::ifstream(pki.ca()).rdbuf() << std::ifstream(next.ca()).rdbuf();
  }
  RecordingResource ledger;
  auto participant =
      AttachedParticipant(node.address(), "ledger", &ledger, {.ca_file = both});
  BOOST_TEST(!BeginAndCommit(node.address(), {.ca_file = next.ca()}).ok());

  TlsFiles rotated = next.Issue("batond-next");
  std::filesystem::copy_file(rotated.key, server.key + ".tmp");
  std::filesystem::copy_file(rotated.cert, server.cert + ".tmp");
  std::filesystem::rename(server.key + ".tmp", server.key);
  std::filesystem::rename(server.cert + ".tmp", server.cert);
  BOOST_TEST(WaitFor(
      [&] {
        return BeginAndCommit(node.address(), {.ca_file = next.ca()}).ok();
      },
      15s));

  auto client = TransactionClient::Connect(
      {.coordinator = node.address(), .tls = {.ca_file = both}});
  BOOST_REQUIRE(client.ok());
  CommitWithBranch(**client, *participant, "ledger", ledger);
}

BOOST_FIXTURE_TEST_CASE(batonctl_speaks_mutual_tls, Fixture) {
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/true);
  TlsFiles operator_cert = pki.Issue("operator");
  auto run = [&](std::vector<std::string> tls) {
    std::vector<std::string> argv = {BinPath("batonctl"), "--coordinator",
                                     node.address()};
    argv.insert(argv.end(), tls.begin(), tls.end());
    argv.push_back("stats");
    static int runs = 0;
    auto ctl = ChildProcess::Start("batonctl-" + std::to_string(++runs), argv,
                                   {std::string("BATON_ADMIN_TOKEN=") + kToken},
                                   dir.path());
    int code = ctl->WaitExit(30s);
    return std::pair{code, ctl->Stdout() + ctl->Stderr()};
  };
  auto [ok, out] = run({"--tls-ca", operator_cert.ca, "--tls-cert",
                        operator_cert.cert, "--tls-key", operator_cert.key});
  BOOST_TEST(ok == 0, out);
  BOOST_TEST(out.find("unfinished") != std::string::npos, out);
  auto [refused, why] = run({"--tls-ca", operator_cert.ca});
  BOOST_TEST(refused == 1, why);
  BOOST_TEST(why.find("cannot reach") != std::string::npos, why);
}

// GET /metrics over HTTPS with `tls`'s certificate; the status code, or -1
// if the handshake failed.
int GetMetrics(int port, const TlsFiles& tls, std::string* body) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  asio::io_context io;
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.load_verify_file(tls.ca);
  if (!tls.cert.empty()) {
    context.use_certificate_chain_file(tls.cert);
    context.use_private_key_file(tls.key, asio::ssl::context::pem);
  }
  context.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  beast::error_code ec;
  beast::get_lowest_layer(stream).connect(
      {asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)}, ec);
  if (!ec) stream.handshake(asio::ssl::stream_base::client, ec);
  namespace http = beast::http;
  http::request<http::empty_body> request(http::verb::get, "/metrics", 11);
  request.set(http::field::host, "127.0.0.1");
  if (!ec) http::write(stream, request, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (!ec) http::read(stream, buffer, response, ec);
  if (ec) return -1;
  *body = response.body();
  return response.result_int();
}

BOOST_FIXTURE_TEST_CASE(metrics_over_https_and_health_in_plaintext, Fixture) {
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/true);
  TlsFiles scraper = pki.Issue("prometheus");
  std::string body;
  BOOST_TEST(GetMetrics(node.metrics_port(), scraper, &body) == 200);
  BOOST_TEST(body.find("baton_transactions_unfinished") != std::string::npos);
  TlsFiles anonymous = scraper;
  anonymous.cert.clear();
  BOOST_TEST(GetMetrics(node.metrics_port(), anonymous, &body) == -1);

  // A probe without any certificate reads health on its own port.
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(node.health_port()),
                          grpc::InsecureChannelCredentials()));
  BOOST_TEST(WaitFor(
      [&] {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + 1s);
        grpc::health::v1::HealthCheckRequest request;
        grpc::health::v1::HealthCheckResponse response;
        return health->Check(&context, request, &response).ok() &&
               response.status() ==
                   grpc::health::v1::HealthCheckResponse::SERVING;
      },
      20s));
}

// batond's start, refused: exit code and what it said.
std::pair<int, std::string> StartRefused(const TempDir& dir,
                                         std::vector<std::string> flags) {
  std::vector<std::string> argv = {BinPath("batond"), "--data-dir",
                                   (dir.path() / "refused").string()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto batond = ChildProcess::Start("refused", argv, {}, dir.path());
  int code = batond->WaitExit(20s);
  return {code, batond->Stderr()};
}

BOOST_FIXTURE_TEST_CASE(batond_refuses_a_bad_setup_at_start, Fixture) {
  // Plaintext beyond loopback, without --insecure: refused before binding.
  auto [open, open_said] = StartRefused(dir, {"--listen", "0.0.0.0:0"});
  BOOST_TEST(open == 1);
  BOOST_TEST(open_said.find("will not serve --listen 0.0.0.0:0 in plaintext "
                            "beyond loopback") != std::string::npos,
             open_said);
  // A key that is not the certificate's.
  TlsFiles a = pki.Issue("a"), b = pki.Issue("b");
  auto [mismatch, mismatch_said] = StartRefused(
      dir,
      {"--listen", "127.0.0.1:0", "--tls-cert", a.cert, "--tls-key", b.key});
  BOOST_TEST(mismatch == 1);
  BOOST_TEST(mismatch_said.find("does not belong to the certificate") !=
                 std::string::npos,
             mismatch_said);
  // A client CA without a certificate of its own.
  auto [half, half_said] = StartRefused(
      dir, {"--listen", "127.0.0.1:0", "--tls-client-ca", pki.ca()});
  BOOST_TEST(half == 1);
  BOOST_TEST(half_said.find("--tls-client-ca") != std::string::npos, half_said);
}

std::string WritePolicy(const std::filesystem::path& dir,
                        const std::string& json) {
  std::string path = (dir / "policy.json").string();
  std::ofstream(path) << json;
  return path;
}

// The count of a labelled sample in a /metrics text; 0 if absent.
double Sample(const std::string& text, const std::string& series) {
  size_t at = text.find(series + " ");
  return at == std::string::npos ? 0
                                 : std::stod(text.substr(at + series.size()));
}

BOOST_FIXTURE_TEST_CASE(a_certificate_serves_only_the_resources_granted_it,
                        Fixture) {
  std::string policy = WritePolicy(dir.path(), R"({"participants": [
      {"identities": ["spiffe://baton/bank"], "resources": ["bank-*"]}]})");
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/true,
               {"--authz-policy", policy});
  TlsFiles bank = pki.Issue("bank", {"URI:spiffe://baton/bank"});
  TlsFiles shop = pki.Issue("shop", {"URI:spiffe://baton/shop"});

  // Granted: the SDK's participant attaches and gets its phase two.
  RecordingResource ledger;
  auto participant =
      AttachedParticipant(node.address(), "bank-a", &ledger, Client(bank));
  auto client = TransactionClient::Connect(
      {.coordinator = node.address(), .tls = Client(shop)});
  BOOST_REQUIRE(client.ok());
  CommitWithBranch(**client, *participant, "bank-a", ledger);

  // Not granted: another identity for the same resource, and the granted
  // identity for another resource, are refused at the Hello.
  for (const auto& [who, resource] :
       {std::pair{shop, "bank-a"}, std::pair{bank, "payroll"}}) {
    testing::RawParticipant raw(
        node.address(),
        {.resources = {resource}, .instance_id = "raw", .tls = who});
    BOOST_TEST(!raw.Attached(5s));
    grpc::Status s = raw.Finish();
    BOOST_TEST(static_cast<int>(s.error_code()) ==
               static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
    BOOST_TEST(s.error_message().find(std::string("'") + resource + "'") !=
                   std::string::npos,
               s.error_message());
  }
  std::string metrics;
  BOOST_REQUIRE(GetMetrics(node.metrics_port(), bank, &metrics) == 200);
  BOOST_TEST(Sample(metrics,
                    "baton_refused_calls_total{method=\"Attach\",reason="
                    "\"resource_not_granted\"}") == 2);
}

BOOST_FIXTURE_TEST_CASE(a_token_grants_resources_without_mutual_tls, Fixture) {
  // The digest of "ledger-secret" (echo -n ledger-secret | sha256sum).
  std::string policy = WritePolicy(dir.path(), R"({"participants": [
      {"tokenSha256": ["b4a849c63746af549a8833daaa6df615a3ae6f8d0ebf75b1b1f102928e28517a"],
       "resources": ["ledger"]}]})");
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/false,
               {"--authz-policy", policy});
  TlsFiles trust{.ca = pki.ca()};
  testing::RawParticipant good(node.address(), {.resources = {"ledger"},
                                                .instance_id = "good",
                                                .tls = trust,
                                                .token = "ledger-secret"});
  BOOST_TEST(good.Attached(10s));
  testing::RawParticipant bad(node.address(), {.resources = {"ledger"},
                                               .instance_id = "bad",
                                               .tls = trust,
                                               .token = "guessed"});
  BOOST_TEST(!bad.Attached(5s));
  BOOST_TEST(static_cast<int>(bad.Finish().error_code()) ==
             static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  // The SDK's participant, with the token, attaches.
  RecordingResource ledger;
  AttachedParticipant(node.address(), "ledger", &ledger, {.ca_file = pki.ca()},
                      "ledger-secret");
}

// Callers limited by the policy: the shop may begin, commit and read; the
// bank, granted only as a participant, may make its own phase-one calls
// but begin nothing; on the SDK's Pipeline and in unary calls alike.
BOOST_FIXTURE_TEST_CASE(callers_make_only_the_calls_granted_them, Fixture) {
  std::string policy = WritePolicy(dir.path(), R"({
      "participants": [{"identities": ["spiffe://baton/bank"],
                        "resources": ["bank-a"]}],
      "callers": [{"identities": ["spiffe://baton/shop"],
                   "methods": ["Begin", "Commit", "GetTransaction"]}]})");
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/true,
               {"--authz-policy", policy});
  TlsFiles bank = pki.Issue("bank", {"URI:spiffe://baton/bank"});
  TlsFiles shop = pki.Issue("shop", {"URI:spiffe://baton/shop"});
  RecordingResource ledger;
  auto participant =
      AttachedParticipant(node.address(), "bank-a", &ledger, Client(bank));
  for (bool pipeline : {true, false}) {
    BOOST_TEST_CONTEXT("pipeline " << pipeline) {
      auto as_shop = TransactionClient::Connect({.coordinator = node.address(),
                                                 .max_attempts = 1,
                                                 .pipeline = pipeline,
                                                 .tls = Client(shop)});
      auto as_bank = TransactionClient::Connect({.coordinator = node.address(),
                                                 .max_attempts = 1,
                                                 .pipeline = pipeline,
                                                 .tls = Client(bank)});
      BOOST_REQUIRE(as_shop.ok());
      BOOST_REQUIRE(as_bank.ok());
      // The participant's RegisterBranch and ReportBranch go through.
      CommitWithBranch(**as_shop, *participant, "bank-a", ledger);
      auto begun = (*as_bank)->Begin("not granted");
      BOOST_TEST(absl::IsPermissionDenied(begun.status()), begun.status());
      BOOST_TEST(begun.status().message().find("may not call Begin") !=
                 std::string::npos);
      auto other = (*as_shop)->Begin("rolled back");
      BOOST_REQUIRE(other.ok());
      auto rollback =
          (*as_shop)->Rollback((*other)->xid(), "not granted", false);
      BOOST_TEST(absl::IsPermissionDenied(rollback.status()),
                 rollback.status());
      BOOST_TEST((*other)->Commit().ok());  // Leaves nothing open.
    }
  }
}

// An operator's certificate named among the admin identities needs no
// admin token; another certificate without the token gets nothing.
BOOST_FIXTURE_TEST_CASE(an_admin_identity_needs_no_token, Fixture) {
  std::string policy =
      WritePolicy(dir.path(), R"({"adminIdentities": ["spiffe://baton/ops"]})");
  TlsNode node(dir.path(), pki.Issue("batond"), /*mutual=*/true,
               {"--authz-policy", policy});
  TlsFiles ops = pki.Issue("ops", {"URI:spiffe://baton/ops"});
  TlsFiles shop = pki.Issue("shop", {"URI:spiffe://baton/shop"});
  auto stats = [&](const TlsFiles& who) {
    auto ctl = ChildProcess::Start(
        "batonctl-" + who.cert.substr(who.cert.rfind('/') + 1),
        {BinPath("batonctl"), "--coordinator", node.address(), "--tls-ca",
         who.ca, "--tls-cert", who.cert, "--tls-key", who.key, "stats"},
        {}, dir.path());
    int code = ctl->WaitExit(30s);
    return std::pair{code, ctl->Stdout() + ctl->Stderr()};
  };
  auto [ok, out] = stats(ops);
  BOOST_TEST(ok == 0, out);
  auto [refused, why] = stats(shop);
  BOOST_TEST(refused == 1, why);
  BOOST_TEST(why.find("admin calls need the admin token") != std::string::npos,
             why);
}

BOOST_FIXTURE_TEST_CASE(a_policy_that_does_not_parse_stops_the_start, Fixture) {
  std::string policy =
      WritePolicy(dir.path(), R"({"participants": [{"identity": ["typo"]}]})");
  auto [code, said] =
      StartRefused(dir, {"--listen", "127.0.0.1:0", "--authz-policy", policy});
  BOOST_TEST(code == 1);
  BOOST_TEST(said.find("authz_policy.proto") != std::string::npos, said);
  BOOST_TEST(said.find("identity") != std::string::npos, said);
}

}  // namespace
}  // namespace baton
