// batonctl as a subprocess against a real batond with seeded transactions:
// one stuck (a participant whose commits keep failing), one committed.
#define BOOST_TEST_MODULE batonctl
#include <google/protobuf/util/json_util.h>

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
    cluster.StartCoordinator(
        {}, {"--admin-token-file", token_file_, "--retry-window-ms", "300"});
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

  BankCluster cluster;
  std::string committed, stuck;

 private:
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
  BOOST_TEST(no_token.err == "batonctl: admin calls need the admin token\n");

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

}  // namespace
}  // namespace baton::testing
