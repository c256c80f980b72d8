// batond (and a bank service) under libfaketime, the host's clock stepped
// by hours either way while transactions are open, decided and retrying:
// nothing times out early or late beyond its own duration and a small
// margin, nothing is marked as needing attention falsely, and a due retry
// runs on time. Only CLOCK_REALTIME is faked; the monotonic clock runs on.
#define BOOST_TEST_MODULE clock_step
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/support/bank_cluster.h"
#include "tests/support/raw_participant.h"

namespace baton::testing {
namespace {

using Steady = std::chrono::steady_clock;
constexpr int64_t kHourMs = 60 * 60 * 1000;
// What a loaded 2-core CI machine may add to a duration.
constexpr auto kMargin = 2s;

int64_t RealWallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FindLibFaketime() {
  for (const char* path :
       {"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1"}) {
    if (std::filesystem::exists(path)) return path;
  }
  BOOST_FAIL("libfaketime is missing: run scripts/setup (Debian's faketime)");
  return "";
}

// A host clock the test steps: every process started with env() reads
// CLOCK_REALTIME as the real time plus the offset in one file, reread on
// every reading.
class SteppedClock {
 public:
  explicit SteppedClock(const std::filesystem::path& dir)
      : file_(dir / "faketime") {
    Set("+0");
  }
  std::vector<std::string> env() const {
    return {"LD_PRELOAD=" + FindLibFaketime(),
            "FAKETIME_TIMESTAMP_FILE=" + file_.string(), "FAKETIME_NO_CACHE=1",
            "FAKETIME_DONT_FAKE_MONOTONIC=1"};
  }
  // "+2h", "-2h": offsets from the real time. Written whole, then renamed,
  // so no reader sees half a line.
  void Set(const std::string& offset) {
    auto temp = file_;
    temp += ".new";
    std::ofstream(temp) << offset << "\n";
    std::filesystem::rename(temp, file_);
  }

 private:
  std::filesystem::path file_;
};

// One batond under the stepped clock, a raw participant for resource "r",
// and a client.
struct Fixture {
  explicit Fixture(const std::vector<std::string>& flags = {})
      : clock(cluster.dir()) {
    cluster.StartCoordinator(clock.env(), flags);
    client = OneShotClient(cluster);
    Attach();
  }
  void Attach() {
    participant.reset();
    participant = std::make_unique<RawParticipant>(
        cluster.CoordinatorAddress(),
        RawParticipant::Options{.resources = {"r"}});
    BOOST_REQUIRE(participant->Attached());
  }
  // Waits until batond's clock reads `offset_ms` from the real one, as the
  // begin instant of a probe transaction shows it.
  void WaitForClockOffset(int64_t offset_ms) {
    BOOST_REQUIRE_MESSAGE(
        WaitFor(
            [&] {
              v1::BeginRequest probe;
              probe.set_name("probe");
              auto begun = client->BeginRaw(probe);
              if (!begun.ok()) return false;
              auto t = client->GetTransaction(begun->xid());
              client->Rollback(begun->xid(), "probe", /*wait=*/false)
                  .IgnoreError();
              return t.ok() && std::abs(t->begun_unix_ms() - RealWallMs() -
                                        offset_ms) < 60'000;
            },
            10s),
        "batond's clock never read " << offset_ms << " ms off\n"
                                     << cluster.Logs());
  }
  v1::Transaction Get(const std::string& xid) {
    auto t = client->GetTransaction(xid);
    BOOST_REQUIRE_MESSAGE(t.ok(), t.status());
    return *t;
  }
  std::string Open(std::chrono::milliseconds timeout) {
    v1::BeginRequest request;
    request.set_name("open");
    request.set_timeout_ms(static_cast<uint32_t>(timeout.count()));
    auto begun = client->BeginRaw(request);
    BOOST_REQUIRE_MESSAGE(begun.ok(), begun.status());
    return begun->xid();
  }
  // A committed transaction whose one branch answers "retry" to its first
  // commit; returns its xid and when the retry answer went.
  std::pair<std::string, Steady::time_point> Retrying() {
    auto prepared = BeginWithPreparedBranch(client.get(), "r");
    BOOST_REQUIRE_MESSAGE(prepared.ok(), prepared.status());
    auto decided = client->Commit(prepared->xid, /*wait=*/false);
    BOOST_REQUIRE_MESSAGE(decided.ok(), decided.status());
    auto command = participant->NextCommand();
    BOOST_REQUIRE(command.has_value());
    BOOST_REQUIRE(participant->Answer(*command, v1::COMMAND_OUTCOME_RETRY,
                                      "locked, try later"));
    return {prepared->xid, Steady::now()};
  }

  BankCluster cluster;
  SteppedClock clock;
  std::unique_ptr<TransactionClient> client;
  std::unique_ptr<RawParticipant> participant;
};

// The retry backoff batond runs with in BankCluster: 50 ms doubling to
// 500 ms, +-20%.
constexpr auto kLongestRetry = 600ms;

BOOST_AUTO_TEST_CASE(two_hours_forward_times_out_nothing_and_pages_nobody) {
  Fixture f;
  std::string open = f.Open(10min);
  auto [decided, retry_asked] = f.Retrying();

  f.clock.Set("+2h");
  f.WaitForClockOffset(2 * kHourMs);

  // The retry came when its backoff said, not two hours early or late.
  auto retry = f.participant->NextCommand();
  BOOST_REQUIRE(retry.has_value());
  BOOST_TEST(retry->attempt() == 2u);
  BOOST_TEST((Steady::now() - retry_asked < kLongestRetry + kMargin));

  v1::Transaction still_open = f.Get(open);
  BOOST_TEST(still_open.status() == v1::GLOBAL_STATUS_BEGUN);
  BOOST_TEST(still_open.reason() == "");
  BOOST_TEST(f.Get(decided).status() == v1::GLOBAL_STATUS_COMMITTING);
  // Answers show instants on the host's clock as it reads now.
  BOOST_TEST(still_open.begun_unix_ms() > RealWallMs() + 2 * kHourMs - 60'000);
  BOOST_TEST(still_open.deadline_unix_ms() - still_open.begun_unix_ms() ==
             10 * 60 * 1000);

  BOOST_REQUIRE(f.participant->Answer(*retry, v1::COMMAND_OUTCOME_DONE));
  BOOST_TEST(f.cluster.WaitForStatus(decided, v1::GLOBAL_STATUS_COMMITTED));
  auto committed = f.client->Commit(open, /*wait=*/true);
  BOOST_TEST(committed.ok(), committed.status());
  BOOST_TEST(f.cluster.coordinator().Stderr().find("needs attention") ==
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(two_hours_back_stalls_no_retry_and_no_timeout) {
  // Retries 1.5 s (+-20%) apart, so the step lands while one is pending.
  Fixture f({"--retry-initial-ms", "1500", "--retry-max-ms", "1500"});
  constexpr auto kRetry = 1800ms;
  auto begun = Steady::now();
  std::string open = f.Open(3s);
  auto [decided, retry_asked] = f.Retrying();

  f.clock.Set("-2h");
  f.WaitForClockOffset(-2 * kHourMs);
  BOOST_REQUIRE(f.participant->NextCommand(0ms) == std::nullopt);

  auto retry = f.participant->NextCommand(kRetry + kMargin);
  BOOST_REQUIRE(retry.has_value());
  BOOST_TEST(retry->attempt() == 2u);
  BOOST_TEST((Steady::now() - retry_asked < kRetry + kMargin));

  // Rolled back at its own three seconds: neither sooner nor hours later.
  BOOST_REQUIRE(f.cluster.WaitForStatus(open, v1::GLOBAL_STATUS_ROLLED_BACK,
                                        3s + kMargin));
  auto took = Steady::now() - begun;
  BOOST_TEST((took >= 3s));
  BOOST_TEST((took < 3s + kMargin));
  BOOST_TEST(f.Get(open).reason() == "timeout");
  BOOST_TEST(f.Get(decided).status() == v1::GLOBAL_STATUS_COMMITTING);

  // Stepped forward again, the retries go on as they were.
  f.clock.Set("+0");
  f.WaitForClockOffset(0);
  BOOST_REQUIRE(f.participant->Answer(*retry, v1::COMMAND_OUTCOME_RETRY));
  auto third = f.participant->NextCommand(kRetry + kMargin);
  BOOST_REQUIRE(third.has_value());
  BOOST_TEST(third->attempt() == 3u);
}

// batond keeps its timeline's offset, so a record written before a
// two-hour step forward does not look two hours old after a restart: its
// retry window goes on where it was (nobody is paged), its instants still
// show on the host's clock, and the commit goes through when the
// participant is back.
BOOST_AUTO_TEST_CASE(a_restart_after_a_step_pages_nobody_at_once) {
  Fixture f;
  auto [decided, retry_asked] = f.Retrying();
  f.clock.Set("+2h");
  f.WaitForClockOffset(2 * kHourMs);
  BOOST_REQUIRE(WaitFor(
      [&] {
        return f.cluster.coordinator().Stderr().find("clock offset +7") !=
               std::string::npos;
      },
      10s));
  f.cluster.coordinator().Signal(SIGKILL);
  f.cluster.coordinator().WaitExit(10s);
  f.cluster.StartCoordinator(f.clock.env());
  BOOST_REQUIRE(f.cluster.WaitForHealth(/*serving=*/true));

  v1::Transaction after = f.Get(decided);
  BOOST_TEST(after.status() == v1::GLOBAL_STATUS_COMMITTING);
  // Not held to the restart grace: the window was never taken as spent.
  BOOST_TEST(after.retry_window_start_unix_ms() == 0);
  BOOST_TEST(std::abs(after.decided_unix_ms() - RealWallMs() - 2 * kHourMs) <
             60'000);

  f.Attach();
  auto resent = f.participant->NextCommand(kLongestRetry + kMargin);
  BOOST_REQUIRE(resent.has_value());
  BOOST_REQUIRE(f.participant->Answer(*resent, v1::COMMAND_OUTCOME_DONE));
  BOOST_TEST(f.cluster.WaitForStatus(decided, v1::GLOBAL_STATUS_COMMITTED));
  BOOST_TEST(f.cluster.Logs().find("needs attention") == std::string::npos,
             f.cluster.Logs());
}

// The SDK under the same clock: stepped back two hours, a bank service
// still reconnects to a restarted coordinator within its backoff, and a
// transfer goes through.
BOOST_AUTO_TEST_CASE(the_sdk_reconnects_on_time_after_a_step_back) {
  BankCluster cluster;
  SteppedClock clock(cluster.dir());
  cluster.StartCoordinator(clock.env());
  cluster.StartBank("bank-a", {"alice=100"}, clock.env());
  cluster.StartBank("bank-b", {"bob=100"}, clock.env());
  auto first = cluster.Transfer("bank-a", "alice", "bank-b", "bob", 10);
  BOOST_REQUIRE_MESSAGE(first.outcome == "committed", first.output);

  clock.Set("-2h");
  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  cluster.StartCoordinator(clock.env());
  BOOST_REQUIRE(cluster.WaitForHealth(/*serving=*/true));
  auto start = Steady::now();
  auto again = cluster.Transfer("bank-a", "alice", "bank-b", "bob", 10);
  BOOST_TEST(again.outcome == "committed", again.output << cluster.Logs());
  BOOST_TEST((Steady::now() - start < 10s));
  BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", 80));
  BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", 120));
}

}  // namespace
}  // namespace baton::testing
