// batonctl as a subprocess against a real batond with seeded transactions:
// one stuck (a participant whose commits keep failing), one committed.
#define BOOST_TEST_MODULE batonctl
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "baton/v1/admin_service.pb.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

struct CtlResult {
  int exit_code;
  std::string out, err;
};

class Seeded {
 public:
  Seeded() {
    token_file_ = (cluster.dir() / "admin.token").string();
    std::ofstream(token_file_) << "s3cret\n";
    coordinator_flags_ = {"--admin-token-file", token_file_,
                          "--retry-window-ms", "300"};
    cluster.StartCoordinator({}, coordinator_flags_);
    cluster.StartBank("bank-a", {"alice=100"},
                      {"BATON_FAILPOINTS=participant_before_commit=error"});
    cluster.StartBank("bank-b", {"bob=100"});
    cluster.StartBank("bank-c", {"carol=100"});
    auto ok = cluster.Transfer("bank-b", "bob", "bank-c", "carol", 10);
    BOOST_REQUIRE_MESSAGE(ok.exit_code == 0, ok.output);
    committed = ok.xid;
    auto stuck_transfer =
        cluster.Transfer("bank-a", "alice", "bank-b", "bob", 5, {"--no-wait"});
    BOOST_REQUIRE_MESSAGE(stuck_transfer.exit_code == 0, stuck_transfer.output);
    stuck = stuck_transfer.xid;
    BOOST_REQUIRE(cluster.WaitForStatus(stuck, v1::GLOBAL_STATUS_COMMIT_STUCK));
  }

  CtlResult Ctl(std::vector<std::string> args, bool with_token = true,
                std::string coordinator = "") {
    std::vector<std::string> argv = {
        BinPath("batonctl"), "--coordinator",
        coordinator.empty() ? cluster.CoordinatorAddress() : coordinator};
    if (with_token) {
      argv.push_back("--token-file");
      argv.push_back(token_file_);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = ChildProcess::Start("batonctl-" + std::to_string(++runs_), argv,
                                 {}, cluster.dir());
    CtlResult r{p->WaitExit(30s), p->Stdout(), p->Stderr()};
    return r;
  }

  // kill -9 and start again on the same data dir.
  void RestartCoordinator() {
    cluster.coordinator().Signal(SIGKILL);
    cluster.coordinator().WaitExit(10s);
    cluster.StartCoordinator({}, coordinator_flags_);
  }

  v1::Transaction ShowJson(const std::string& xid) {
    CtlResult show = Ctl({"--json", "show", xid});
    BOOST_REQUIRE_MESSAGE(show.exit_code == 0, show.err);
    v1::Transaction t;
    BOOST_REQUIRE(
        google::protobuf::util::JsonStringToMessage(show.out, &t).ok());
    return t;
  }

  BankCluster cluster;
  std::string committed, stuck;

 private:
  std::vector<std::string> coordinator_flags_;
  std::string token_file_;
  int runs_ = 0;
};

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

BOOST_AUTO_TEST_CASE(list_show_participants_and_stats) {
  Seeded s;
  CtlResult list = s.Ctl({"list", "--status", "needs-attention"});
  BOOST_TEST(list.exit_code == 0, list.err);
  BOOST_TEST(Has(list.out, "XID"));
  BOOST_TEST(Has(list.out, s.stuck));
  BOOST_TEST(Has(list.out, "commit-stuck"));
  BOOST_TEST(!Has(list.out, s.committed + " "));

  CtlResult done = s.Ctl({"list", "--status", "committed"});
  BOOST_TEST(Has(done.out, s.committed), done.out);

  CtlResult by_resource = s.Ctl({"list", "--status", "committed", "--status",
                                 "commit-stuck", "--resource", "bank-c"});
  BOOST_TEST(Has(by_resource.out, s.committed));
  BOOST_TEST(!Has(by_resource.out, s.stuck));

  CtlResult page = s.Ctl({"list", "--status", "committed", "--status",
                          "needs-attention", "--limit", "1"});
  BOOST_TEST(Has(page.out, "more: --page-token"), page.out);
  std::string token = page.out.substr(page.out.find("--page-token ") + 13);
  token.erase(token.find('\n'));
  CtlResult next =
      s.Ctl({"list", "--status", "committed", "--status", "needs-attention",
             "--limit", "1", "--page-token", token});
  BOOST_TEST(Has(page.out, s.stuck));                // Unfinished first,
  BOOST_TEST(Has(next.out, s.committed), next.out);  // then finished.
  BOOST_TEST(!Has(next.out, "more:"));

  CtlResult show = s.Ctl({"show", s.stuck});
  BOOST_TEST(show.exit_code == 0, show.err);
  BOOST_TEST(Has(show.out, "commit-stuck"));
  BOOST_TEST(Has(show.out, "bank-a"));
  BOOST_TEST(
      Has(show.out, "failpoint participant_before_commit injected an error"));
  BOOST_TEST(Has(show.out, "ATTEMPTS"));

  CtlResult participants = s.Ctl({"participants"});
  BOOST_TEST(Has(participants.out, "bank-a"));
  BOOST_TEST(Has(participants.out, "bank-c"));
  BOOST_TEST(Has(participants.out, "LAST SEEN"));

  CtlResult stats = s.Ctl({"stats"});
  BOOST_TEST(Has(stats.out, "commit-stuck"), stats.out);
  BOOST_TEST(Has(stats.out, "retry backlog"));
  BOOST_TEST(Has(stats.out, s.stuck));  // The oldest unfinished.
}

BOOST_AUTO_TEST_CASE(json_output_parses) {
  Seeded s;
  CtlResult list = s.Ctl({"--json", "list", "--status", "needs-attention"});
  BOOST_REQUIRE(list.exit_code == 0);
  v1::ListTransactionsResponse parsed;
  BOOST_REQUIRE(
      google::protobuf::util::JsonStringToMessage(list.out, &parsed).ok());
  BOOST_REQUIRE(parsed.transactions_size() == 1);
  BOOST_TEST(parsed.transactions(0).xid() == s.stuck);
  BOOST_TEST(parsed.transactions(0).status() == v1::GLOBAL_STATUS_COMMIT_STUCK);
  BOOST_TEST(parsed.transactions(0).branches(0).attempts() >= 1u);
}

BOOST_AUTO_TEST_CASE(errors_are_one_readable_line) {
  Seeded s;
  CtlResult no_token = s.Ctl({"list"}, /*with_token=*/false);
  BOOST_TEST(no_token.exit_code == 1);
  BOOST_TEST(Has(no_token.err,
                 "batonctl: admin calls need the admin token; "
                 "batonctl found no admin token"),
             no_token.err);
  BOOST_TEST(std::count(no_token.err.begin(), no_token.err.end(), '\n') == 1);

  CtlResult unknown = s.Ctl({"show", "0-99-1"});
  BOOST_TEST(unknown.exit_code == 1);
  BOOST_TEST(Has(unknown.err, "no transaction 0-99-1"));
  BOOST_TEST(std::count(unknown.err.begin(), unknown.err.end(), '\n') == 1);

  CtlResult unreachable = s.Ctl({"stats"}, true, "127.0.0.1:1");
  BOOST_TEST(unreachable.exit_code == 1);
  BOOST_TEST(unreachable.err ==
             "batonctl: cannot reach the coordinator at 127.0.0.1:1 (is batond "
             "running?)\n");
}

BOOST_AUTO_TEST_CASE(force_commit_is_audited_durably_and_never_reverses) {
  Seeded s;
  CtlResult no_reason = s.Ctl({"commit", s.stuck});
  BOOST_TEST(no_reason.exit_code != 0);
  BOOST_TEST(Has(no_reason.err, "--reason"), no_reason.err);

  CtlResult reverse = s.Ctl({"rollback", s.stuck, "--reason", "wrong call"});
  BOOST_TEST(reverse.exit_code == 1);
  BOOST_TEST(Has(reverse.err, "never reversed"), reverse.err);

  CtlResult commit = s.Ctl({"commit", s.stuck, "--reason", "ticket 7"});
  BOOST_TEST(commit.exit_code == 0, commit.err);
  BOOST_TEST(Has(commit.out, s.stuck + ": committed; marked committed by "
                                       "hand: branch 1 (bank-a)"),
             commit.out);
  // Idempotent: a second call changes nothing and adds no audit record.
  BOOST_TEST(s.Ctl({"commit", s.stuck, "--reason", "again"}).exit_code == 0);

  s.RestartCoordinator();
  v1::Transaction t = s.ShowJson(s.stuck);
  BOOST_TEST(t.status() == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(t.branches(0).status() == v1::BRANCH_STATUS_COMMITTED);
  BOOST_REQUIRE(t.audit_size() == 1);
  BOOST_TEST(t.audit(0).action() == "force-commit");
  BOOST_TEST(t.audit(0).reason() == "ticket 7");
  BOOST_TEST(Has(t.audit(0).actor(), "@"));
  CtlResult show = s.Ctl({"show", s.stuck});
  BOOST_TEST(Has(show.out, "ACTION"), show.out);
  BOOST_TEST(Has(show.out, "force-commit"));
  BOOST_TEST(Has(show.out, "ticket 7"));
}

BOOST_AUTO_TEST_CASE(force_rollback_finishes_a_rollback_stuck_transaction) {
  Seeded s;
  s.cluster.StartBank("bank-d", {"dave=50"},
                      {"BATON_FAILPOINTS=participant_before_rollback=error"});
  auto abandoned = s.cluster.Transfer("bank-d", "dave", "bank-c", "carol", 20,
                                      {"--rollback", "--no-wait"});
  BOOST_REQUIRE_MESSAGE(abandoned.outcome == "rolled-back", abandoned.output);
  BOOST_REQUIRE(
      s.cluster.WaitForStatus(abandoned.xid, v1::GLOBAL_STATUS_ROLLBACK_STUCK));
  BOOST_TEST(s.Ctl({"commit", abandoned.xid, "--reason", "x"}).exit_code == 1);

  CtlResult rollback = s.Ctl(
      {"rollback", abandoned.xid, "--reason", "dave's hold released by hand"});
  BOOST_TEST(rollback.exit_code == 0, rollback.err);
  BOOST_TEST(Has(rollback.out,
                 "rolled back; marked rolled back by hand: "
                 "branch 1 (bank-d)"),
             rollback.out);
  v1::Transaction t = s.ShowJson(abandoned.xid);
  BOOST_TEST(t.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
  BOOST_TEST(t.branches(0).status() == v1::BRANCH_STATUS_ROLLED_BACK);
  BOOST_TEST(t.branches(1).status() == v1::BRANCH_STATUS_ROLLED_BACK);
  BOOST_REQUIRE(t.audit_size() == 1);
  BOOST_TEST(t.audit(0).action() == "force-rollback");
  BOOST_TEST(t.audit(0).reason() == "dave's hold released by hand");
  // carol's side rolled back normally: her balance never moved.
  BOOST_TEST(s.cluster.WaitForSettled("bank-c", "carol", 110));
}

BOOST_AUTO_TEST_CASE(pause_holds_commands_until_resume) {
  Seeded s;
  CtlResult pause = s.Ctl({"pause", s.stuck, "--reason", "db maintenance"});
  BOOST_TEST(pause.exit_code == 0, pause.err);
  BOOST_TEST(Has(pause.out, "(paused)"), pause.out);
  BOOST_TEST(Has(s.Ctl({"show", s.stuck}).out, "paused by an operator"));
  BOOST_TEST(s.Ctl({"retry", s.stuck}).exit_code == 1);

  // bank-a comes back healthy; while paused nothing is sent to it, neither
  // on attach nor when it reports the branch in doubt.
  s.cluster.bank("bank-a").Signal(SIGKILL);
  s.cluster.bank("bank-a").WaitExit(10s);
  s.cluster.StartBank("bank-a", {"alice=100"});
  BOOST_TEST(!s.cluster.WaitForSettled("bank-a", "alice", 95, 1500ms));
  BOOST_TEST(s.ShowJson(s.stuck).status() == v1::GLOBAL_STATUS_COMMIT_STUCK);

  CtlResult resume = s.Ctl({"resume", s.stuck});
  BOOST_TEST(resume.exit_code == 0, resume.err);
  BOOST_TEST(s.cluster.WaitForSettled("bank-a", "alice", 95), s.cluster.Logs());
  BOOST_TEST(s.cluster.WaitForSettled("bank-b", "bob", 95));
  BOOST_TEST(s.cluster.WaitForStatus(s.stuck, v1::GLOBAL_STATUS_COMMITTED));
  v1::Transaction t = s.ShowJson(s.stuck);
  BOOST_REQUIRE(t.audit_size() == 2);
  BOOST_TEST(t.audit(0).action() == "pause");
  BOOST_TEST(t.audit(1).action() == "resume");
}

BOOST_AUTO_TEST_CASE(retry_sends_owed_commands_now) {
  Seeded s;
  uint32_t before = s.ShowJson(s.stuck).branches(0).attempts();
  CtlResult retry = s.Ctl({"retry", s.stuck});
  BOOST_TEST(retry.exit_code == 0, retry.err);
  BOOST_TEST(Has(retry.out, "committing"), retry.out);
  // bank-a still fails, so the window runs out again, with more attempts.
  BOOST_TEST(s.cluster.WaitForStatus(s.stuck, v1::GLOBAL_STATUS_COMMIT_STUCK));
  v1::Transaction t = s.ShowJson(s.stuck);
  BOOST_TEST(t.branches(0).attempts() > before);
  BOOST_REQUIRE(t.audit_size() == 1);
  BOOST_TEST(t.audit(0).action() == "retry");
  BOOST_TEST(s.Ctl({"retry", s.committed}).exit_code == 1);
}

BOOST_AUTO_TEST_CASE(forget_needs_force_and_leaves_a_tombstone) {
  Seeded s;
  CtlResult unforced = s.Ctl({"forget", s.committed, "--reason", "cleanup"});
  BOOST_TEST(unforced.exit_code == 2);
  BOOST_TEST(Has(unforced.err, "--force"));
  for (const std::string& xid : {s.committed, s.stuck}) {
    CtlResult forget = s.Ctl({"forget", xid, "--reason", "cleanup", "--force"});
    BOOST_TEST(forget.exit_code == 0, forget.err);
  }
  s.RestartCoordinator();
  for (const std::string& xid : {s.committed, s.stuck}) {
    CtlResult show = s.Ctl({"show", xid});
    BOOST_TEST(show.exit_code == 1);
    BOOST_TEST(Has(show.err, "was forgotten by an operator"), show.err);
    BOOST_TEST(Has(show.err, "cleanup"));
  }
  CtlResult list =
      s.Ctl({"list", "--status", "needs-attention", "--status", "committed"});
  BOOST_TEST(!Has(list.out, s.stuck), list.out);
  BOOST_TEST(!Has(list.out, s.committed));
}

// batonctl with no token, flags or environment but the ones given here, run
// from `cwd`.
CtlResult BareCtl(BankCluster& cluster, const std::vector<std::string>& args,
                  const std::vector<std::string>& env,
                  const std::filesystem::path& cwd) {
  std::vector<std::string> argv = {"/bin/sh",
                                   "-c",
                                   R"(cd "$1" && shift && exec "$@")",
                                   "sh",
                                   cwd.string(),
                                   BinPath("batonctl"),
                                   "--coordinator",
                                   cluster.CoordinatorAddress()};
  argv.insert(argv.end(), args.begin(), args.end());
  static int runs = 0;
  auto p = ChildProcess::Start("bare-batonctl-" + std::to_string(++runs), argv,
                               env, cluster.dir());
  return CtlResult{p->WaitExit(30s), p->Stdout(), p->Stderr()};
}

BOOST_AUTO_TEST_CASE(a_first_run_needs_no_token_setup) {
  BankCluster cluster;
  cluster.StartCoordinator();
  const std::filesystem::path data = cluster.dir() / "coordinator";
  const std::filesystem::path token = data / "admin-token";
  struct stat st;
  BOOST_REQUIRE(stat(token.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
  BOOST_TEST(Has(cluster.coordinator().Stderr(), token.string()));
  cluster.StartBank("bank-a", {"alice=100"});
  cluster.StartBank("bank-b", {"bob=100"});
  auto transfer = cluster.Transfer("bank-a", "alice", "bank-b", "bob", 5);
  BOOST_REQUIRE_MESSAGE(transfer.exit_code == 0, transfer.output);

  // Found by --data-dir, by BATON_DATA_DIR, and from where batond's default
  // ./data would be.
  CtlResult by_flag =
      BareCtl(cluster, {"--data-dir", data.string(), "stats"}, {}, "/");
  BOOST_TEST(by_flag.exit_code == 0, by_flag.err);
  CtlResult by_env = BareCtl(cluster, {"list", "--status", "committed"},
                             {"BATON_DATA_DIR=" + data.string()}, "/");
  BOOST_TEST(by_env.exit_code == 0, by_env.err);
  BOOST_TEST(Has(by_env.out, transfer.xid), by_env.out);
  std::filesystem::create_directories(cluster.dir() / "tour");
  std::filesystem::create_symlink(data, cluster.dir() / "tour" / "data");
  CtlResult from_cwd =
      BareCtl(cluster, {"show", transfer.xid}, {}, cluster.dir() / "tour");
  BOOST_TEST(from_cwd.exit_code == 0, from_cwd.err);
  BOOST_TEST(Has(from_cwd.out, "committed"), from_cwd.out);

  // A restart keeps the token.
  std::string before;
  std::getline(std::ifstream(token), before);
  cluster.coordinator().Signal(SIGKILL);
  cluster.coordinator().WaitExit(10s);
  cluster.StartCoordinator();
  std::string after;
  std::getline(std::ifstream(token), after);
  BOOST_TEST(after == before);
  BOOST_TEST(BareCtl(cluster, {"--data-dir", data.string(), "stats"}, {}, "/")
                 .exit_code == 0);
}

BOOST_AUTO_TEST_CASE(beyond_loopback_only_an_operators_token_opens_admin) {
  BankCluster cluster;
  // Every address of this host: still reached here over loopback.
  cluster.StartCoordinator({}, {"--listen", "0.0.0.0:0", "--insecure"});
  const std::filesystem::path data = cluster.dir() / "coordinator";
  BOOST_TEST(!std::filesystem::exists(data / "admin-token"));
  CtlResult off =
      BareCtl(cluster, {"--data-dir", data.string(), "stats"}, {}, "/");
  BOOST_TEST(off.exit_code == 1);
  BOOST_TEST(Has(off.err, "the admin API is off"), off.err);
  BOOST_TEST(Has(off.err, "--admin-token-file"), off.err);
}

}  // namespace
}  // namespace baton::testing
