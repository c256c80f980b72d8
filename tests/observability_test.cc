// Prometheus metrics scraped over HTTP from a real batond, and AdminService
// moved to its own listen address.
#define BOOST_TEST_MODULE observability
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "baton/v1/admin_service.grpc.pb.h"
#include "tests/support/bank_cluster.h"
#include "tests/support/http_client.h"

namespace baton::testing {
namespace {

// GET http://127.0.0.1:port/target; returns the status code and body.
std::pair<int, std::string> HttpGet(int port, const std::string& target) {
  HttpReply reply = HttpRequestTo(port, "GET", target);
  return {reply.status, reply.body};
}

struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> type

  double Get(const std::string& series) const {
    auto it = samples.find(series);
    BOOST_TEST_REQUIRE((it != samples.end()), "no series " << series);
    return it->second;
  }
};

Exposition Parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    BOOST_TEST_REQUIRE(!line.empty());
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      e.types[name] = type;
      continue;
    }
    if (line[0] == '#') {
      BOOST_TEST(line.rfind("# HELP baton_", 0) == 0, line);
      continue;
    }
    size_t space = line.rfind(' ');
    BOOST_TEST_REQUIRE(space != std::string::npos, line);
    std::string series = line.substr(0, space);
    BOOST_TEST(series.rfind("baton_", 0) == 0, line);
    e.samples[series] = std::stod(line.substr(space + 1));
  }
  return e;
}

// Prometheus' rules: counters end in _total, durations are in seconds, and
// a histogram's +Inf bucket holds every observation (its _count).
void CheckConventions(const Exposition& e) {
  for (const auto& [name, type] : e.types) {
    if (type == "counter") BOOST_TEST(name.ends_with("_total"), name);
    if (name.find("duration") != std::string::npos) {
      BOOST_TEST(name.ends_with("_seconds"), name);
    }
  }
  int histograms = 0;
  for (const auto& [series, value] : e.samples) {
    size_t inf = series.find("le=\"+Inf\"");
    if (inf == std::string::npos) continue;
    std::string count = series;
    count.replace(count.find("_bucket"), 7, "_count");
    count.erase(count.find("le=\"+Inf\""), 9);
    if (count.ends_with(",}")) count.erase(count.size() - 2, 1);
    if (count.ends_with("{}")) count.erase(count.size() - 2);
    BOOST_TEST(value == e.Get(count), series);
    ++histograms;
  }
  BOOST_TEST(histograms > 0);
}

// Starts the coordinator with metrics on a free port, and returns it.
int StartWithMetrics(BankCluster& cluster) {
  std::string port_file = (cluster.dir() / "metrics.port").string();
  cluster.StartCoordinator({}, {"--metrics-listen", "127.0.0.1:0",
                                "--metrics-port-file", port_file});
  int port = WaitForPortFile(port_file, 20s);
  BOOST_REQUIRE(port > 0);
  return port;
}

BOOST_AUTO_TEST_CASE(metrics_endpoint_reports_transactions_store_and_gauges) {
  BankCluster cluster;
  const int port = StartWithMetrics(cluster);
  cluster.StartBank("bank-a", {"alice=100"});
  cluster.StartBank("bank-b", {"bob=100"});
  BOOST_REQUIRE(
      cluster.Transfer("bank-a", "alice", "bank-b", "bob", 10).outcome ==
      "committed");
  BOOST_REQUIRE(
      cluster.Transfer("bank-a", "alice", "bank-b", "bob", 7, {"--rollback"})
          .outcome == "rolled-back");
  BOOST_REQUIRE(cluster.WaitForSettled("bank-a", "alice", 90));
  BOOST_REQUIRE(cluster.WaitForSettled("bank-b", "bob", 110));

  auto [code, body] = HttpGet(port, "/metrics");
  BOOST_REQUIRE(code == 200);
  Exposition e = Parse(body);
  CheckConventions(e);
  BOOST_TEST(e.Get("baton_transactions_begun_total{protocol=\"2pc\"}") == 2);
  BOOST_TEST(e.Get("baton_transactions_finished_total{protocol=\"2pc\","
                   "outcome=\"committed\"}") == 1);
  BOOST_TEST(e.Get("baton_transactions_finished_total{protocol=\"2pc\","
                   "outcome=\"rolled_back\"}") == 1);
  BOOST_TEST(e.Get("baton_phase_two_attempts_total{resource=\"bank-a\","
                   "action=\"commit\"}") == 1);
  BOOST_TEST(e.Get("baton_phase_two_attempts_total{resource=\"bank-b\","
                   "action=\"rollback\"}") == 1);
  BOOST_TEST(e.Get("baton_transaction_duration_seconds_count{protocol=\"2pc\","
                   "outcome=\"committed\"}") == 1);
  BOOST_TEST(e.Get("baton_request_duration_seconds_count{method=\"Begin\"}") ==
             2);
  BOOST_TEST(e.Get("baton_request_duration_seconds_bucket{method=\"Commit\","
                   "le=\"+Inf\"}") == 1);
  BOOST_TEST(e.Get("baton_store_sync_duration_seconds_count") > 0);
  BOOST_TEST(e.Get("baton_store_write_batches_sum") >=
             e.Get("baton_store_write_batches_count"));
  // The SDK sends its calls on the Pipeline stream.
  BOOST_TEST(e.Get("baton_pipeline_message_calls_sum{direction=\"in\"}") >= 4);
  BOOST_TEST(e.Get("baton_pipeline_message_calls_sum{direction=\"out\"}") ==
             e.Get("baton_pipeline_message_calls_sum{direction=\"in\"}"));
  BOOST_TEST(e.Get("baton_participants_attached") == 2);
  // The gauges about unfinished work say which shard it is on.
  BOOST_TEST(e.Get("baton_transactions_needs_attention{shard=\"0\"}") == 0);
  BOOST_TEST(e.Get("baton_retry_backlog{shard=\"0\"}") == 0);
  BOOST_TEST(e.Get("baton_oldest_unfinished_age_seconds") == 0);
  BOOST_TEST(e.types.at("baton_request_duration_seconds") == "histogram");
  BOOST_TEST(e.types.at("baton_retry_backlog") == "gauge");
  BOOST_TEST(e.Get("baton_resource_participants{resource=\"bank-a\"}") == 1);
  BOOST_TEST(e.types.at("baton_owed_commands") == "gauge");
  BOOST_TEST(e.types.at("baton_store_write_failures_total") == "counter");

  BOOST_TEST(HttpGet(port, "/").first == 404);
}

// The metric families the chart's dashboard and alerting rules name: every
// baton_ word in them, histogram series folded into their family.
std::set<std::string> NamedMetrics() {
  std::set<std::string> names;
  for (const char* file : {BATON_CHART_DIR "/dashboards/baton.json",
                           BATON_CHART_DIR "/templates/prometheusrule.yaml"}) {
    std::ifstream in(file);
    BOOST_TEST_REQUIRE(in.good(), "cannot read " << file);
    std::stringstream text;
    text << in.rdbuf();
    static const std::regex metric("baton_[a-z_]+");
    std::string body = text.str();
    for (auto it = std::sregex_iterator(body.begin(), body.end(), metric);
         it != std::sregex_iterator(); ++it) {
      std::string name = it->str();
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) {
          name.resize(name.size() - std::strlen(suffix));
        }
      }
      names.insert(name);
    }
  }
  return names;
}

BOOST_AUTO_TEST_CASE(every_metric_the_dashboard_and_alerts_name_exists) {
  BankCluster cluster;
  const int port = StartWithMetrics(cluster);
  auto [code, body] = HttpGet(port, "/metrics");
  BOOST_REQUIRE(code == 200);
  Exposition e = Parse(body);
  std::set<std::string> named = NamedMetrics();
  BOOST_TEST(named.size() >= 12u);
  for (const std::string& name : named) {
    BOOST_TEST(e.types.contains(name), name << " is not in /metrics");
  }
}

// What BatonResourceWithoutParticipant watches: commands owed to a
// resource, and whether anything serving it is attached.
BOOST_AUTO_TEST_CASE(owed_commands_of_a_resource_nobody_serves_show) {
  BankCluster cluster;
  const int port = StartWithMetrics(cluster);
  cluster.StartBank("bank-a", {"alice=100"},
                    {"BATON_FAILPOINTS=participant_before_commit=error"});
  cluster.StartBank("bank-b", {"bob=100"});
  auto transfer =
      cluster.Transfer("bank-a", "alice", "bank-b", "bob", 5, {"--no-wait"});
  BOOST_REQUIRE_MESSAGE(transfer.exit_code == 0, transfer.output);
  auto scrape = [&] { return Parse(HttpGet(port, "/metrics").second); };
  // bank-a keeps refusing its commit: owed, and served.
  BOOST_REQUIRE(WaitFor(
      [&] {
        Exposition e = scrape();
        return e.samples.contains("baton_owed_commands{resource=\"bank-a\"}");
      },
      20s));
  cluster.bank("bank-a").Signal(SIGKILL);
  cluster.bank("bank-a").WaitExit(10s);
  BOOST_TEST(WaitFor(
      [&] {
        Exposition e = scrape();
        return !e.samples.contains(
                   "baton_resource_participants{resource=\"bank-a\"}") &&
               e.samples.contains("baton_owed_commands{resource=\"bank-a\"}") &&
               e.samples.contains(
                   "baton_resource_participants{resource=\"bank-b\"}");
      },
      20s));
}

BOOST_AUTO_TEST_CASE(admin_service_can_live_on_its_own_address) {
  BankCluster cluster;
  std::string token = (cluster.dir() / "token").string();
  std::ofstream(token) << "t0ken\n";
  std::string admin_port_file = (cluster.dir() / "admin.port").string();
  cluster.StartCoordinator(
      {}, {"--admin-token-file", token, "--admin-listen", "127.0.0.1:0",
           "--admin-port-file", admin_port_file});
  int admin_port = WaitForPortFile(admin_port_file, 20s);
  BOOST_REQUIRE(admin_port > 0);
  auto stats = [&](const std::string& address) {
    auto stub = v1::AdminService::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer t0ken");
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::GetStatsResponse response;
    return stub->GetStats(&context, {}, &response);
  };
  // Callers and participants reach the main port only; admin is not there.
  BOOST_TEST(stats(cluster.CoordinatorAddress()).error_code() ==
             grpc::StatusCode::UNIMPLEMENTED);
  BOOST_TEST(stats("127.0.0.1:" + std::to_string(admin_port)).ok());
}

}  // namespace
}  // namespace baton::testing
