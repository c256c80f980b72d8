// TCC scenarios on real processes: batond, an inventory and a payment
// stock_service, an order_service, and order_client. In every scenario the
// units are conserved: available + held + spent never changes.
#define BOOST_TEST_MODULE tcc_order
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <sstream>

#include "order.grpc.pb.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

constexpr int64_t kStock = 10;    // widgets
constexpr int64_t kFunds = 1000;  // alice's cents

struct Level {
  int64_t available = -1, held = -1, spent = -1;
  bool operator==(const Level&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Level& l) {
  return os << "{available " << l.available << ", held " << l.held << ", spent "
            << l.spent << "}";
}

struct Order {
  int exit_code = -1;
  std::string outcome, xid, output;
};

class Shop {
 public:
  explicit Shop(const std::vector<std::string>& inventory_env = {},
                const std::vector<std::string>& payment_env = {},
                const std::vector<std::string>& coordinator_flags = {},
                const std::vector<std::string>& stock_flags = {})
      : stock_flags_(stock_flags) {
    std::vector<std::string> flags = {"--retry-initial-ms", "50"};
    flags.insert(flags.end(), coordinator_flags.begin(),
                 coordinator_flags.end());
    cluster.StartCoordinator({}, flags);
    StartStock("inventory", "widget=10", inventory_env);
    StartStock("payment", "alice=1000", payment_env);
    cluster.StartService("orders", "order_service",
                         {"--inventory", cluster.BankAddress("inventory"),
                          "--payment", cluster.BankAddress("payment")});
  }

  void StartStock(const std::string& name, const std::string& seed,
                  const std::vector<std::string>& env = {}) {
    std::vector<std::string> flags = {"--resource", name, "--seed", seed};
    flags.insert(flags.end(), stock_flags_.begin(), stock_flags_.end());
    cluster.StartService(name, "stock_service", flags, env);
  }

  Order Place(int64_t quantity, int64_t unit_price,
              const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {BinPath("order_client"),
                                     "place",
                                     "--orders",
                                     cluster.BankAddress("orders"),
                                     "--sku",
                                     "widget",
                                     "--account",
                                     "alice",
                                     "--quantity",
                                     std::to_string(quantity),
                                     "--unit-price",
                                     std::to_string(unit_price)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto client = ChildProcess::Start("order-" + std::to_string(++orders_),
                                      argv, {}, cluster.dir());
    Order order;
    order.exit_code = client->WaitExit(60s);
    order.output = client->Stdout();
    std::istringstream words(order.output);
    words >> order.outcome >> order.xid;
    return order;
  }

  Level GetLevel(const std::string& service, const std::string& key) {
    auto stub = samples::order::Units::NewStub(grpc::CreateChannel(
        cluster.BankAddress(service), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    samples::order::LevelRequest request;
    request.set_key(key);
    samples::order::LevelReply reply;
    if (!stub->Level(&context, request, &reply).ok()) return {};
    return {reply.available(), reply.held(), reply.spent()};
  }

  // Waits for both levels, then checks conservation.
  void ExpectLevels(const Level& widget, const Level& alice) {
    BOOST_TEST(
        WaitFor([&] { return GetLevel("inventory", "widget") == widget; }, 20s),
        "widget " << GetLevel("inventory", "widget") << ", want " << widget
                  << "\n"
                  << cluster.Logs());
    BOOST_TEST(
        WaitFor([&] { return GetLevel("payment", "alice") == alice; }, 20s),
        "alice " << GetLevel("payment", "alice") << ", want " << alice);
    BOOST_TEST(widget.available + widget.held + widget.spent == kStock);
    BOOST_TEST(alice.available + alice.held + alice.spent == kFunds);
  }

  void ExpectStatus(const std::string& xid, v1::GlobalStatus status) {
    BOOST_TEST(cluster.WaitForStatus(xid, status),
               xid << " never became " << v1::GlobalStatus_Name(status) << "\n"
                   << cluster.Logs());
  }

  void Restart(const std::string& name, const std::string& seed) {
    BOOST_REQUIRE(cluster.service(name).WaitExit(20s) == 128 + SIGKILL);
    StartStock(name, seed);
  }

  BankCluster cluster;

 private:
  const std::vector<std::string> stock_flags_;
  int orders_ = 0;
};

BOOST_AUTO_TEST_CASE(commit_confirms_every_reservation) {
  Shop shop;
  Order o = shop.Place(3, 25);
  BOOST_TEST(o.exit_code == 0, o.output);
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_COMMITTED);
  shop.ExpectLevels({7, 0, 3}, {925, 0, 75});
}

BOOST_AUTO_TEST_CASE(a_failed_try_cancels_the_reservations_already_made) {
  Shop shop;
  Order o = shop.Place(30, 1);  // Payment reserves 30; inventory has 10.
  BOOST_TEST(o.exit_code == 2, o.output);
  BOOST_TEST(o.output.find("insufficient widget") != std::string::npos,
             o.output);
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  shop.ExpectLevels({10, 0, 0}, {1000, 0, 0});
}

BOOST_AUTO_TEST_CASE(a_timeout_while_a_try_hangs_cancels_everything) {
  // Inventory's try stalls for 2 s; the transaction's timeout is 300 ms.
  Shop shop({"BATON_FAILPOINTS=participant_before_try=delay(2000)"});
  Order o = shop.Place(2, 10, {"--timeout-ms", "300"});
  BOOST_TEST(o.exit_code == 2, o.output);
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  auto txn = shop.cluster.GetTransaction(o.xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->reason() == "timeout");
  shop.ExpectLevels({10, 0, 0}, {1000, 0, 0});
}

BOOST_AUTO_TEST_CASE(a_cancel_before_the_try_blocks_the_late_try) {
  Shop shop({"BATON_FAILPOINTS=participant_before_try=delay(2000)"});
  Order o = shop.Place(2, 10, {"--timeout-ms", "300"});
  // The cancel reached inventory first (an empty cancel); the try that
  // arrived afterwards was refused, so nothing is left held.
  BOOST_TEST(
      o.output.find("cancelled before its try arrived") != std::string::npos,
      o.output);
  auto txn = shop.cluster.GetTransaction(o.xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_REQUIRE(txn->branches_size() == 2);
  BOOST_TEST(txn->branches(1).resource() == "inventory");
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  shop.ExpectLevels({10, 0, 0}, {1000, 0, 0});
}

BOOST_AUTO_TEST_CASE(a_confirm_failing_twice_then_succeeding_applies_once) {
  Shop shop({}, {"BATON_FAILPOINTS=participant_before_commit=2*error"});
  Order o = shop.Place(1, 40);
  BOOST_TEST(o.exit_code == 0, o.output);
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_COMMITTED);
  auto txn = shop.cluster.GetTransaction(o.xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->branches(0).resource() == "payment");
  BOOST_TEST(txn->branches(0).attempts() == 3u);
  shop.ExpectLevels({9, 0, 1}, {960, 0, 40});
}

BOOST_AUTO_TEST_CASE(a_confirm_answering_do_not_retry_needs_attention) {
  Shop shop;
  Order o = shop.Place(1, 5, {"--refuse-payment-confirm"});
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_COMMIT_STUCK);
  auto txn = shop.cluster.GetTransaction(o.xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->reason().find("refused by the service") != std::string::npos);
  BOOST_TEST(txn->branches(0).status() == v1::BRANCH_STATUS_COMMIT_FAILED);
  BOOST_TEST(txn->branches(0).attempts() == 1u);  // No retry loop.
  // Inventory confirmed; the payment reservation waits for an operator.
  shop.ExpectLevels({9, 0, 1}, {995, 5, 0});
}

BOOST_AUTO_TEST_CASE(a_duplicate_confirm_is_a_no_op) {
  // Payment applies its confirm, then dies before acknowledging; batond
  // sends the confirm again to the restarted service.
  Shop shop({}, {"BATON_FAILPOINTS=participant_after_commit=crash"});
  Order o = shop.Place(2, 30);
  BOOST_TEST(o.exit_code == 0, o.output);
  shop.Restart("payment", "alice=1000");
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_COMMITTED);
  shop.ExpectLevels({8, 0, 2}, {940, 0, 60});
}

// Inventory's try completed (its barrier record and hold are on disk) and
// the process died before reporting it: the order fails, and the restarted
// service's cancel, which knows the try completed, gives the units back.
BOOST_AUTO_TEST_CASE(a_participant_killed_after_its_try_cancels_after_restart) {
  Shop shop({"BATON_FAILPOINTS=participant_after_prepare=crash"});
  Order o = shop.Place(2, 10);
  BOOST_TEST(o.exit_code != 0, o.output);
  shop.Restart("inventory", "widget=10");
  auto rolled_back = [&] {
    auto txn = shop.cluster.GetTransaction(o.xid);
    return txn.ok() && txn->status() == v1::GLOBAL_STATUS_ROLLED_BACK;
  };
  BOOST_TEST(o.xid.size() > 0, o.output);
  BOOST_TEST(WaitFor(rolled_back, 30s), shop.cluster.Logs());
  shop.ExpectLevels({10, 0, 0}, {1000, 0, 0});
}

BOOST_AUTO_TEST_CASE(
    a_participant_killed_during_confirm_confirms_after_restart) {
  Shop shop({"BATON_FAILPOINTS=participant_before_commit=crash"});
  Order o = shop.Place(4, 10);
  BOOST_TEST(o.exit_code == 0, o.output);
  shop.Restart("inventory", "widget=10");
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_COMMITTED);
  shop.ExpectLevels({6, 0, 4}, {960, 0, 40});
}

BOOST_AUTO_TEST_CASE(two_concurrent_cancels_release_once) {
  // Payment's first cancel stalls for 1.5 s; batond gives up on it after
  // 300 ms and sends a second while the first is still running.
  Shop shop({}, {"BATON_FAILPOINTS=participant_before_rollback=1:delay(1500)"},
            {"--command-timeout-ms", "300"});
  Order o = shop.Place(30, 1);  // Payment reserves 30; inventory fails.
  BOOST_TEST(o.exit_code == 2, o.output);
  shop.ExpectStatus(o.xid, v1::GLOBAL_STATUS_ROLLED_BACK);
  auto txn = shop.cluster.GetTransaction(o.xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->branches(0).resource() == "payment");
  BOOST_TEST(txn->branches(0).attempts() >= 2u);
  // Released once: not 1030 available.
  shop.ExpectLevels({10, 0, 0}, {1000, 0, 0});
}

// Places `orders` orders of 1 widget at 10 at once while payment's barrier
// is armed with `failpoints`, which kill it at one of its synced writes;
// restarts payment. Every order must end committed or rolled back as its
// client was told, none stuck (no acknowledged hook lost), and what is spent
// must be exactly what committed orders bought (none applied twice).
void ConcurrentOrdersSurviveAPaymentKill(
    const std::string& failpoints,
    const std::vector<std::string>& stock_flags = {}) {
  Shop shop({}, {"BATON_FAILPOINTS=" + failpoints}, {}, stock_flags);
  constexpr int kOrders = 8;
  std::vector<std::unique_ptr<ChildProcess>> clients;
  for (int i = 0; i < kOrders; ++i) {
    clients.push_back(ChildProcess::Start(
        "concurrent-order-" + std::to_string(i),
        {BinPath("order_client"), "place", "--orders",
         shop.cluster.BankAddress("orders"), "--sku", "widget", "--account",
         "alice", "--quantity", "1", "--unit-price", "10"},
        {}, shop.cluster.dir()));
  }
  shop.Restart("payment", "alice=1000");
  int committed = 0;
  for (auto& client : clients) {
    BOOST_REQUIRE(client->WaitExit(60s) != -1);
    std::istringstream words(client->Stdout());
    std::string outcome, xid;
    words >> outcome >> xid;
    BOOST_REQUIRE_MESSAGE(outcome == "confirmed" || outcome == "cancelled",
                          client->Stdout() << client->Stderr());
    const v1::GlobalStatus told = outcome == "confirmed"
                                      ? v1::GLOBAL_STATUS_COMMITTED
                                      : v1::GLOBAL_STATUS_ROLLED_BACK;
    shop.ExpectStatus(xid, told);
    if (told == v1::GLOBAL_STATUS_COMMITTED) ++committed;
  }
  BOOST_TEST_MESSAGE(committed << " of " << kOrders << " orders committed");
  shop.ExpectLevels({kStock - committed, 0, committed},
                    {kFunds - 10 * committed, 0, 10 * committed});
}

// Payment's barrier group-commits the hooks of concurrent orders (each
// synced write held 30 ms, so the next group fills); it dies just before
// one: none of that group was acknowledged.
BOOST_AUTO_TEST_CASE(a_participant_killed_before_a_group_sync_loses_nothing) {
  ConcurrentOrdersSurviveAPaymentKill(
      "barrier_before_sync=3:crash,barrier_after_sync=delay(30)");
}

// It dies just after one: the group is on disk, none of it acknowledged, so
// the resent commands are duplicates the barrier must not run again.
BOOST_AUTO_TEST_CASE(a_participant_killed_after_a_group_sync_applies_once) {
  ConcurrentOrdersSurviveAPaymentKill("barrier_after_sync=3:crash");
}

// The same two kills with every try first marked started in a synced write
// of its own, as a try acting outside the ledger is: the group then mixes
// started marks, tries and confirms.
BOOST_AUTO_TEST_CASE(a_kill_before_a_group_sync_with_started_marks) {
  ConcurrentOrdersSurviveAPaymentKill(
      "barrier_before_sync=3:crash,barrier_after_sync=delay(30)",
      {"--mark-tries-started"});
}

BOOST_AUTO_TEST_CASE(a_kill_after_a_group_sync_with_started_marks) {
  ConcurrentOrdersSurviveAPaymentKill("barrier_after_sync=3:crash",
                                      {"--mark-tries-started"});
}

// The same race inside one process, with more cancels, is in
// participant_sdk/leveldb_barrier_test.cc.

}  // namespace
}  // namespace baton::testing
