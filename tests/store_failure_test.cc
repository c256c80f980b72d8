// What batond does when its store cannot be trusted: a write that fails (a
// full disk, or an injected failure), a restart whose store is damaged, and
// a start that fails after it began serving. Real processes, real files.
#define BOOST_TEST_MODULE store_failure
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <thread>

#include "coordinator/store_keys.h"
#include "leveldb/db.h"
#include "tests/support/bank_cluster.h"
#include "tests/support/raw_participant.h"

namespace baton::testing {
namespace {

bool Says(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A filesystem that runs out of space: a 16 MiB tmpfs where the test may
// mount one (as root), otherwise a file size limit the kernel enforces on
// batond (RLIMIT_FSIZE, with SIGXFSZ ignored so a write past it fails with
// EFBIG instead of killing the process). A real failed write either way.
class SmallDisk {
 public:
  explicit SmallDisk(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    mounted_ = geteuid() == 0 &&
               mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=16m") == 0;
  }
  ~SmallDisk() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }

  const std::filesystem::path& path() const { return dir_; }

  // Leaves about `bytes` free for batond.
  void Fill(size_t bytes) {
    free_bytes_ = bytes;
    if (!mounted_) return;
    struct statvfs fs {};
    BOOST_REQUIRE(statvfs(dir_.c_str(), &fs) == 0);
    size_t available = static_cast<size_t>(fs.f_bavail) * fs.f_frsize;
    BOOST_REQUIRE(available > bytes);
    std::ofstream filler(dir_ / "filler", std::ios::binary);
    std::string block(64 * 1024, 'f');
    for (size_t left = available - bytes; left > 0;) {
      size_t n = std::min(left, block.size());
      filler.write(block.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
  }

  void Free() {
    std::filesystem::remove(dir_ / "filler");
    free_bytes_ = 0;
  }

  // What batond must run under for the space to be short.
  std::vector<std::string> Launcher() const {
    if (mounted_ || free_bytes_ == 0) return {};
    return {"/bin/bash", "-c",
            "trap '' XFSZ; ulimit -f " + std::to_string(free_bytes_ / 1024) +
                "; exec \"$@\"",
            "small-disk"};
  }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  size_t free_bytes_ = 0;
};

// The decision's write fails (as on a full disk). The SDK retries the
// commit on UNAVAILABLE; a retry must not be answered from what memory
// holds, since the disk never did.
BOOST_AUTO_TEST_CASE(a_failed_write_is_never_confirmed_by_a_retry) {
  BankCluster cluster;
  // Writes: the epoch (1), Begin (2), each leg's register and report (3-6),
  // the commit decision (7).
  cluster.StartCoordinator(
      {"BATON_FAILPOINTS=group_commit_before_sync=7:error"});
  cluster.StartBank("bank-a", {"alice=100"});
  cluster.StartBank("bank-b", {"bob=100"});
  auto t =
      cluster.Transfer("bank-a", "alice", "bank-b", "bob", 30, {"--no-wait"});
  BOOST_TEST(t.outcome == "error", t.output);
  BOOST_REQUIRE(!t.xid.empty() && t.xid != "-");

  // Fail-stop: health says so, and nothing more is acknowledged, not even
  // reads of what memory holds.
  BOOST_TEST(cluster.WaitForHealth(false, 10s), cluster.Logs());
  BOOST_TEST(Says(cluster.coordinator().Stderr(), "the store failed"));
  auto client = OneShotClient(cluster);
  auto read = client->GetTransaction(t.xid);
  BOOST_TEST(absl::IsUnavailable(read.status()), read.status());
  v1::BeginRequest begin;
  begin.set_name("after");
  auto begun = client->BeginRaw(begin);
  BOOST_TEST(absl::IsUnavailable(begun.status()), begun.status());
  BOOST_TEST(Says(std::string(begun.status().message()), "store"),
             begun.status());

  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  cluster.StartCoordinator();
  BOOST_TEST(cluster.WaitForStatus(t.xid, v1::GLOBAL_STATUS_ROLLED_BACK),
             cluster.Logs());
  BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", 100));
  BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", 100));
}

// The disk fills under concurrent transfers, some waiting for phase two and
// some not. After space is freed and batond restarted, every transfer a
// client was told committed is committed, and the money adds up.
BOOST_AUTO_TEST_CASE(a_full_disk_loses_nothing_a_caller_was_told) {
  BankCluster cluster;
  SmallDisk disk(cluster.dir() / "small-disk");
  const std::vector<std::string> on_disk = {
      "--data-dir", (disk.path() / "coordinator").string()};
  disk.Fill(256 * 1024);
  cluster.SetCoordinatorLauncher(disk.Launcher());
  cluster.StartCoordinator({}, on_disk);
  constexpr int64_t kSeed = 1'000'000;
  cluster.StartBank("bank-a", {"alice=" + std::to_string(kSeed)});
  cluster.StartBank("bank-b", {"bob=" + std::to_string(kSeed)});

  std::mutex mu;
  std::vector<BankCluster::TransferResult> results;
  std::atomic<bool> failed{false}, stop{false};
  std::atomic<int> after_failure{0};
  std::vector<std::thread> loops;
  for (int i = 0; i < 4; ++i) {
    loops.emplace_back([&, no_wait = i % 2 == 1] {
      while (!stop) {
        auto t =
            cluster.Transfer("bank-a", "alice", "bank-b", "bob", 1,
                             no_wait ? std::vector<std::string>{"--no-wait"}
                                     : std::vector<std::string>{});
        std::lock_guard<std::mutex> lock(mu);
        results.push_back(t);
        if (failed) ++after_failure;
      }
    });
  }
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (after_failure < 12 && std::chrono::steady_clock::now() < deadline) {
    failed =
        failed || Says(cluster.coordinator().Stderr(), "store write failed");
    WaitFor([&] { return after_failure >= 12; }, 200ms);
  }
  stop = true;
  for (std::thread& t : loops) t.join();
  BOOST_REQUIRE_MESSAGE(failed, "the disk never filled\n" << cluster.Logs());

  disk.Free();
  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  cluster.SetCoordinatorLauncher({});
  cluster.StartCoordinator({}, on_disk);

  int told_committed = 0, committed = 0;
  for (const auto& t : results) {
    if (t.xid.empty() || t.xid == "-") continue;  // Never begun.
    absl::StatusOr<v1::Transaction> txn;
    bool settled = WaitFor(
        [&] {
          txn = cluster.GetTransaction(t.xid);
          return txn.ok() && (txn->status() == v1::GLOBAL_STATUS_COMMITTED ||
                              txn->status() == v1::GLOBAL_STATUS_ROLLED_BACK);
        },
        30s);
    BOOST_TEST_INFO("transfer said: " << t.output);
    BOOST_REQUIRE_MESSAGE(
        settled, "xid " << t.xid << " never settled: " << txn.status() << "\n"
                        << cluster.Logs());
    bool is_committed = txn->status() == v1::GLOBAL_STATUS_COMMITTED;
    committed += is_committed;
    if (t.outcome == "committed") {
      ++told_committed;
      BOOST_TEST(is_committed, t.xid << " was reported committed but is "
                                     << v1::GlobalStatus_Name(txn->status()));
    }
    if (t.outcome == "rolled-back") BOOST_TEST(!is_committed);
  }
  BOOST_TEST(told_committed > 0);
  BOOST_TEST(cluster.WaitForSettled("bank-a", "alice", kSeed - committed, 30s));
  BOOST_TEST(cluster.WaitForSettled("bank-b", "bob", kSeed + committed, 30s));
}

struct Ctl {
  std::string token_file;
  int runs = 0;

  explicit Ctl(const BankCluster& cluster)
      : token_file((cluster.dir() / "admin.token").string()) {
    std::ofstream(token_file) << "s3cret\n";
  }

  std::pair<int, std::string> Run(const BankCluster& cluster,
                                  std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("batonctl"), "--coordinator",
                                     cluster.CoordinatorAddress(),
                                     "--token-file", token_file};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = ChildProcess::Start("batonctl-" + std::to_string(++runs), argv, {},
                                 cluster.dir());
    int code = p->WaitExit(30s);
    return {code, p->Stdout() + p->Stderr()};
  }
};

// Forgetting a transaction that a restart has not loaded yet used to leave
// its index entry behind, and batond then never started again.
BOOST_AUTO_TEST_CASE(forget_while_loading_is_refused_and_restarts_still_work) {
  BankCluster cluster;
  Ctl ctl(cluster);
  const std::vector<std::string> flags = {"--admin-token-file", ctl.token_file,
                                          "--retry-window-ms", "200"};
  cluster.StartCoordinator({}, flags);
  auto client = OneShotClient(cluster);
  v1::BeginRequest begin;
  begin.set_name("stuck");
  auto begun = client->BeginRaw(begin);
  BOOST_REQUIRE(begun.ok());
  const std::string xid = begun->xid();
  v1::RegisterBranchRequest reg;
  reg.set_xid(xid);
  reg.set_resource("nobody-serves-this");
  auto branch = client->RegisterBranch(reg);
  BOOST_REQUIRE(branch.ok());
  BOOST_REQUIRE(
      client->ReportBranch(xid, *branch, v1::PHASE_ONE_OUTCOME_PREPARED, "")
          .ok());
  BOOST_REQUIRE(client->Commit(xid, false).ok());
  BOOST_REQUIRE(cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_COMMIT_STUCK));

  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  const auto go_on = cluster.dir() / "load";
  cluster.LaunchCoordinator({"BATON_FAILPOINTS=before_resume_unfinished="
                             "wait_file(" +
                             go_on.string() + ")"},
                            flags);
  BOOST_REQUIRE(cluster.WaitForHealth(false, 10s));
  auto early = ctl.Run(cluster, {"forget", xid, "--force", "--reason", "x"});
  BOOST_TEST(early.first != 0, early.second);
  BOOST_TEST(Says(early.second, "still being loaded"), early.second);
  std::ofstream(go_on).close();
  BOOST_REQUIRE_MESSAGE(cluster.WaitForHealth(true, 20s), cluster.Logs());
  auto forgot = ctl.Run(cluster, {"forget", xid, "--force", "--reason", "x"});
  BOOST_TEST(forgot.first == 0, forgot.second);

  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  cluster.StartCoordinator({}, flags);
  BOOST_REQUIRE_MESSAGE(cluster.WaitForHealth(true, 20s), cluster.Logs());
  auto gone = cluster.GetTransaction(xid);
  BOOST_TEST(absl::IsNotFound(gone.status()), gone.status());
  BOOST_TEST(Says(std::string(gone.status().message()), "forgotten"));
}

// Writes into batond's (stopped) store directly, as damage would.
void PutRaw(const std::filesystem::path& dir,
            const std::vector<std::pair<std::string, std::string>>& entries) {
  leveldb::DB* raw = nullptr;
  leveldb::Options options;
  options.create_if_missing = true;
  BOOST_REQUIRE(leveldb::DB::Open(options, dir.string(), &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  for (const auto& [key, value] : entries) {
    BOOST_REQUIRE(db->Put(leveldb::WriteOptions(), key, value).ok());
  }
}

// A start that fails after batond began listening (here: a record that
// does not parse, found while loading) must answer the calls it took
// meanwhile and exit with the reason, naming the key.
BOOST_AUTO_TEST_CASE(a_start_that_fails_late_answers_open_calls_and_exits) {
  BankCluster cluster;
  cluster.StartCoordinator();  // Learns the port the restart reuses.
  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  PutRaw(cluster.dir() / "coordinator",
         {{store_keys::UnfinishedKey(0, "0-1-999"), ""},
          {store_keys::RecordKey("0-1-999"), "not a record"}});
  const auto go_on = cluster.dir() / "load";
  cluster.LaunchCoordinator(
      {"BATON_FAILPOINTS=before_resume_unfinished="
       "wait_file(" +
       go_on.string() + ")"});
  BOOST_REQUIRE_MESSAGE(cluster.WaitForHealth(false, 10s), cluster.Logs());

  // Calls that are open when the start fails: a participant stream, and a
  // commit waiting for a phase two that nobody serves.
  RawParticipant participant(cluster.CoordinatorAddress(),
                             {.resources = {"elsewhere"}});
  BOOST_REQUIRE(participant.Attached());
  auto client = OneShotClient(cluster);
  auto prepared = BeginWithPreparedBranch(client.get(), "nobody-serves-this");
  BOOST_REQUIRE_MESSAGE(prepared.ok(), prepared.status());
  absl::StatusOr<v1::GlobalStatus> waited;
  std::thread commit([&] { waited = client->Commit(prepared->xid, true); });
  // The commit is waiting once its decision is in the log.
  BOOST_REQUIRE(WaitFor(
      [&] {
        auto t = client->GetTransaction(prepared->xid);
        return t.ok() && t->status() == v1::GLOBAL_STATUS_COMMITTING;
      },
      10s));
  std::ofstream(go_on).close();

  int code = cluster.coordinator().WaitExit(20s);
  commit.join();
  BOOST_TEST(code == 1, "batond ended with " << code << "\n" << cluster.Logs());
  std::string err = cluster.coordinator().Stderr();
  BOOST_TEST(Says(err, "cannot start"), err);
  BOOST_TEST(Says(err, "t/0-1-999"), err);
  BOOST_TEST(absl::IsUnavailable(waited.status()), waited.status());
  BOOST_TEST(Says(std::string(waited.status().message()), "shutting down"),
             waited.status());
  BOOST_TEST(!participant.Finish().ok());
}

BOOST_AUTO_TEST_CASE(a_corrupt_epoch_is_a_clear_startup_error) {
  BankCluster cluster;
  cluster.StartCoordinator();
  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  PutRaw(cluster.dir() / "coordinator",
         {{store_keys::MetaKey("epoch"), "twelve"}});
  cluster.LaunchCoordinator();
  int code = cluster.coordinator().WaitExit(20s);
  std::string err = cluster.coordinator().Stderr();
  BOOST_TEST(code == 1, "batond ended with " << code << "\n" << err);
  BOOST_TEST(Says(err, "m/epoch"), err);
}

}  // namespace
}  // namespace baton::testing
