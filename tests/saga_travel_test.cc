// Sagas on real processes: batond, four travel_service suppliers (flights,
// hotels, cars, payments) and travel_client, which books flight, hotel and
// car (in parallel, or in order) and then payment. Every test checks what
// the suppliers hold at the end and, through their shared journal, the
// order in which steps and compensations ran.
#define BOOST_TEST_MODULE saga_travel
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>

#include "tests/support/bank_cluster.h"
#include "travel.grpc.pb.h"

namespace baton::testing {
namespace {

struct Booking {
  int exit_code = -1;
  std::string word, xid, reason, output;
};

struct JournalLine {
  std::string resource, what, xid;
  int step;
};

class Travel {
 public:
  explicit Travel(const std::vector<std::string>& coordinator_env = {},
                  const std::vector<std::string>& coordinator_flags = {
                      "--retry-window-ms", "60000"}) {
    journal_ = (cluster.dir() / "journal").string();
    cluster.StartCoordinator(coordinator_env, coordinator_flags);
    StartSupplier("flights", "LH-400=10");
    StartSupplier("hotels", "grand=10");
    StartSupplier("cars", "compact=10");
    StartSupplier("payments", "alice=1000");
  }

  void StartSupplier(const std::string& resource, const std::string& seed) {
    cluster.StartService(
        resource, "travel_service",
        {"--resource", resource, "--seed", seed, "--journal", journal_});
  }

  Booking Book(std::vector<std::string> flags) {
    std::vector<std::string> argv = {BinPath("travel_client"),
                                     "--coordinator",
                                     cluster.CoordinatorAddress(),
                                     "book",
                                     "--backoff-ms",
                                     "50"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto p = ChildProcess::Start("travel-client-" + std::to_string(++runs_),
                                 argv, {}, cluster.dir());
    Booking b;
    b.exit_code = p->WaitExit(60s);
    b.output = p->Stdout() + p->Stderr();
    std::istringstream line(p->Stdout());
    line >> b.word >> b.xid;
    std::getline(line, b.reason);
    if (!b.reason.empty()) b.reason.erase(0, 1);
    return b;
  }

  // available and booked units of `key` at the supplier.
  std::pair<int64_t, int64_t> Level(const std::string& resource,
                                    const std::string& key) {
    auto stub = travel::Travel::NewStub(grpc::CreateChannel(
        cluster.BankAddress(resource), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    travel::LevelRequest request;
    request.set_key(key);
    travel::LevelReply reply;
    BOOST_REQUIRE(stub->Level(&context, request, &reply).ok());
    return {reply.available(), reply.booked()};
  }

  // Nothing booked anywhere: every compensation ran.
  void ExpectNothingBooked() {
    BOOST_TEST(
        (Level("flights", "LH-400") == std::pair<int64_t, int64_t>{10, 0}));
    BOOST_TEST(
        (Level("hotels", "grand") == std::pair<int64_t, int64_t>{10, 0}));
    BOOST_TEST(
        (Level("cars", "compact") == std::pair<int64_t, int64_t>{10, 0}));
    BOOST_TEST(
        (Level("payments", "alice") == std::pair<int64_t, int64_t>{1000, 0}));
  }

  void ExpectBookedOnce() {
    BOOST_TEST(
        (Level("flights", "LH-400") == std::pair<int64_t, int64_t>{9, 1}));
    BOOST_TEST((Level("hotels", "grand") == std::pair<int64_t, int64_t>{9, 1}));
    BOOST_TEST((Level("cars", "compact") == std::pair<int64_t, int64_t>{9, 1}));
    BOOST_TEST(
        (Level("payments", "alice") == std::pair<int64_t, int64_t>{900, 100}));
  }

  // The journal as "resource what" strings, in order, for one saga.
  std::vector<std::string> Journal(const std::string& xid) {
    std::ifstream in(journal_);
    std::vector<std::string> out;
    JournalLine l;
    std::string key;
    while (in >> l.resource >> l.what >> l.xid >> l.step >> key) {
      if (l.xid == xid) out.push_back(l.resource + " " + l.what);
    }
    return out;
  }

  v1::Transaction Record(const std::string& xid) {
    auto t = cluster.GetTransaction(xid);
    BOOST_REQUIRE(t.ok());
    return *t;
  }

  // Runs batonctl with the admin token kAdminToken; exit code and stdout.
  std::pair<int, std::string> Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("batonctl"), "--coordinator",
                                     cluster.CoordinatorAddress()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = ChildProcess::Start("batonctl-" + std::to_string(++runs_), argv,
                                 {kAdminTokenEnv}, cluster.dir());
    int code = p->WaitExit(30s);
    return {code, p->Stdout() + p->Stderr()};
  }

  static constexpr const char* kAdminTokenEnv = "BATON_ADMIN_TOKEN=ops-token";

  BankCluster cluster;

 private:
  std::string journal_;
  int runs_ = 0;
};

size_t IndexOf(const std::vector<std::string>& lines, const std::string& line) {
  auto it = std::find(lines.begin(), lines.end(), line);
  BOOST_TEST_REQUIRE((it != lines.end()), "no '" << line << "'");
  return it - lines.begin();
}

BOOST_AUTO_TEST_CASE(all_steps_succeed) {
  Travel t;
  Booking b = t.Book({});
  BOOST_TEST_REQUIRE(b.exit_code == 0, b.output);
  BOOST_TEST(b.word == "committed");
  t.ExpectBookedOnce();
  std::vector<std::string> journal = t.Journal(b.xid);
  BOOST_REQUIRE(journal.size() == 4u);
  BOOST_TEST(journal.back() == "payments act");  // After all three.
  v1::Transaction r = t.Record(b.xid);
  BOOST_TEST(r.protocol() == v1::PROTOCOL_SAGA);
  BOOST_TEST(r.status() == v1::GLOBAL_STATUS_COMMITTED);
  for (const v1::StepProgress& step : r.saga().steps()) {
    BOOST_TEST(step.status() == v1::STEP_STATUS_SUCCEEDED);
    BOOST_TEST(step.attempts() == 1u);
  }
}

BOOST_AUTO_TEST_CASE(last_step_fails_so_compensations_run_in_reverse_order) {
  Travel t;
  Booking b = t.Book({"--ordered", "--knob", "payment:act_fail=1"});
  BOOST_TEST_REQUIRE(b.exit_code == 2, b.output);
  BOOST_TEST(b.reason ==
             "step 'payment' failed: payments refused to book alice");
  t.ExpectNothingBooked();
  std::vector<std::string> expected = {
      "flights act",         "hotels act",      "cars act",
      "payments compensate", "cars compensate", "hotels compensate",
      "flights compensate"};
  BOOST_TEST(t.Journal(b.xid) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_parallel_step_fails_while_its_siblings_are_in_flight) {
  Travel t;
  Booking b =
      t.Book({"--knob", "car:act_fail=1", "--knob", "flight:act_delay_ms=700",
              "--knob", "hotel:act_delay_ms=700"});
  BOOST_TEST_REQUIRE(b.exit_code == 2, b.output);
  BOOST_TEST(b.reason.find("step 'car' failed") == 0u, b.reason);
  t.ExpectNothingBooked();
  std::vector<std::string> journal = t.Journal(b.xid);
  // The siblings finished their actions and were compensated after them;
  // payment never ran.
  BOOST_TEST(IndexOf(journal, "flights act") <
             IndexOf(journal, "flights compensate"));
  BOOST_TEST(IndexOf(journal, "hotels act") <
             IndexOf(journal, "hotels compensate"));
  BOOST_TEST(std::count(journal.begin(), journal.end(), "payments act") == 0);
  v1::Transaction r = t.Record(b.xid);
  BOOST_TEST(r.saga().steps(3).status() == v1::STEP_STATUS_SKIPPED);
}

BOOST_AUTO_TEST_CASE(a_retryable_failure_that_later_succeeds) {
  Travel t;
  Booking b = t.Book({"--knob", "car:act_retries=2", "--max-attempts", "3"});
  BOOST_TEST_REQUIRE(b.exit_code == 0, b.output);
  t.ExpectBookedOnce();
  BOOST_TEST(t.Record(b.xid).saga().steps(2).attempts() == 3u);
}

BOOST_AUTO_TEST_CASE(a_retry_budget_exhausted) {
  Travel t;
  Booking b = t.Book({"--knob", "car:act_retries=5", "--max-attempts", "3"});
  BOOST_TEST_REQUIRE(b.exit_code == 2, b.output);
  BOOST_TEST(b.reason.find("step 'car' exhausted 3 attempts") == 0u, b.reason);
  t.ExpectNothingBooked();
  BOOST_TEST(t.Record(b.xid).saga().steps(2).attempts() == 3u);
}

BOOST_AUTO_TEST_CASE(a_compensation_fails_for_a_while_then_succeeds) {
  Travel t;
  Booking b = t.Book({"--ordered", "--knob", "payment:act_fail=1", "--knob",
                      "hotel:compensate_retries=3"});
  BOOST_TEST_REQUIRE(b.exit_code == 2, b.output);
  t.ExpectNothingBooked();
  v1::Transaction r = t.Record(b.xid);
  BOOST_TEST(r.saga().steps(1).compensation_attempts() == 4u);
  BOOST_TEST(r.saga().steps(1).status() == v1::STEP_STATUS_COMPENSATED);
  // flight waited for hotel's compensation.
  std::vector<std::string> journal = t.Journal(b.xid);
  BOOST_TEST(IndexOf(journal, "hotels compensate") <
             IndexOf(journal, "flights compensate"));
}

BOOST_AUTO_TEST_CASE(forward_recovery_retries_past_the_budget) {
  Travel t;
  Booking b = t.Book(
      {"--forward", "--knob", "car:act_retries=3", "--max-attempts", "1"});
  BOOST_TEST_REQUIRE(b.exit_code == 0, b.output);
  t.ExpectBookedOnce();
  BOOST_TEST(t.Record(b.xid).saga().steps(2).attempts() == 4u);
}

BOOST_AUTO_TEST_CASE(a_saga_past_its_timeout_compensates) {
  Travel t;
  Booking b =
      t.Book({"--timeout-ms", "400", "--knob", "flight:act_delay_ms=1500"});
  BOOST_TEST_REQUIRE(b.exit_code == 2, b.output);
  BOOST_TEST(b.reason == "timeout");
  t.ExpectNothingBooked();
  std::vector<std::string> journal = t.Journal(b.xid);
  BOOST_TEST(std::count(journal.begin(), journal.end(), "payments act") == 0);
}

BOOST_AUTO_TEST_CASE(batond_killed_in_the_middle_and_restarted) {
  Travel t;
  Booking b = t.Book({"--ordered", "--no-wait", "--knob",
                      "hotel:act_delay_ms=1000", "--step-timeout-ms", "5000"});
  BOOST_TEST_REQUIRE(b.exit_code == 3, b.output);
  BOOST_REQUIRE(WaitFor(
      [&] {
        auto journal = t.Journal(b.xid);
        return !journal.empty() && journal[0] == "flights act";
      },
      20s));
  t.cluster.coordinator().Signal(SIGKILL);
  t.cluster.coordinator().WaitExit(10s);
  t.cluster.StartCoordinator({}, {"--retry-window-ms", "60000"});
  BOOST_TEST_REQUIRE(
      t.cluster.WaitForStatus(b.xid, v1::GLOBAL_STATUS_COMMITTED, 30s),
      t.cluster.Logs());
  // Each step applied exactly once, whatever was repeated around the crash.
  t.ExpectBookedOnce();
  std::vector<std::string> expected = {"flights act", "hotels act", "cars act",
                                       "payments act"};
  BOOST_TEST(t.Journal(b.xid) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_duplicate_submit_with_the_same_key_is_one_saga) {
  Travel t;
  Booking first = t.Book({"--request-id", "trip-42"});
  BOOST_TEST_REQUIRE(first.exit_code == 0, first.output);
  Booking again = t.Book({"--request-id", "trip-42"});
  BOOST_TEST(again.exit_code == 0, again.output);
  BOOST_TEST(again.xid == first.xid);
  t.ExpectBookedOnce();

  Booking other = t.Book({"--request-id", "trip-42", "--trip", "other"});
  BOOST_TEST(other.exit_code == 1);
  BOOST_TEST(other.output.find("already started") != std::string::npos,
             other.output);
}

BOOST_AUTO_TEST_CASE(a_bad_definition_file_gets_a_clear_error) {
  Travel t;
  std::string file = (t.cluster.dir() / "cycle.json").string();
  std::ofstream(file) << R"({"steps": [
      {"name": "a", "action": {"resource": "flights"}, "dependsOn": ["b"]},
      {"name": "b", "action": {"resource": "hotels"}, "dependsOn": ["a"]}]})";
  Booking b = t.Book({"--definition", file});
  BOOST_TEST(b.exit_code == 1);
  BOOST_TEST(b.output.find("cycle") != std::string::npos, b.output);
}

// A compensation that never succeeds parks the saga as rollback-stuck once
// the retry window passes. batonctl finds it by a step's resource, shows
// its steps, and an operator finishes it by hand (to release the hotel and
// the flight with the suppliers).
// Finishing by hand calls nobody: what was not compensated stays booked.
BOOST_AUTO_TEST_CASE(an_operator_finishes_a_rollback_stuck_saga) {
  Travel t({Travel::kAdminTokenEnv}, {"--retry-window-ms", "500"});
  Booking b = t.Book({"--ordered", "--no-wait", "--knob", "payment:act_fail=1",
                      "--knob", "hotel:compensate_retries=1000000"});
  BOOST_TEST_REQUIRE(b.exit_code == 3, b.output);
  BOOST_TEST_REQUIRE(
      t.cluster.WaitForStatus(b.xid, v1::GLOBAL_STATUS_ROLLBACK_STUCK, 30s),
      t.cluster.Logs());

  auto [listed, list] =
      t.Ctl({"list", "--status", "needs-attention", "--resource", "hotels"});
  BOOST_TEST(listed == 0, list);
  BOOST_TEST(list.find(b.xid) != std::string::npos, list);
  BOOST_TEST(list.find("4 steps") != std::string::npos, list);

  auto [shown, show] = t.Ctl({"show", b.xid});
  BOOST_TEST(shown == 0, show);
  for (const char* expected :
       {"STEP", "AFTER", "hotel", "flight", "compensated", "cannot release"}) {
    BOOST_TEST(show.find(expected) != std::string::npos, "no '" << expected
                                                                << "' in\n"
                                                                << show);
  }

  auto [forced, out] = t.Ctl(
      {"rollback", b.xid, "--reason", "hotel released by phone, ticket 7"});
  BOOST_TEST(forced == 0, out);
  v1::Transaction r = t.Record(b.xid);
  BOOST_TEST(r.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_REQUIRE(r.audit_size() == 1);
  BOOST_TEST(r.audit(0).action() == "force-rollback");
  BOOST_TEST(r.audit(0).detail().find("'flight', 'hotel'") != std::string::npos,
             r.audit(0).detail());
  for (const v1::StepProgress& step : r.saga().steps()) {
    BOOST_TEST(step.status() == v1::STEP_STATUS_COMPENSATED);
  }
  BOOST_TEST(
      (t.Level("payments", "alice") == std::pair<int64_t, int64_t>{1000, 0}));
  BOOST_TEST(
      (t.Level("cars", "compact") == std::pair<int64_t, int64_t>{10, 0}));
  BOOST_TEST((t.Level("hotels", "grand") == std::pair<int64_t, int64_t>{9, 1}));
  BOOST_TEST(
      (t.Level("flights", "LH-400") == std::pair<int64_t, int64_t>{9, 1}));
}

}  // namespace
}  // namespace baton::testing
