#ifndef BATON_TESTS_SUPPORT_BANK_CLUSTER_H_
#define BATON_TESTS_SUPPORT_BANK_CLUSTER_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "baton/client.h"
#include "common/child_process.h"

namespace baton::testing {

using namespace std::chrono_literals;

// A real deployment of the bank sample on 127.0.0.1: one batond (or a
// cluster of batond nodes) and any number of bank_service processes, each
// with its own data dir under one temp dir, plus bank_client runs. Ports are
// ephemeral; a restarted batond reuses its first port so participants find
// it again.
class BankCluster {
 public:
  struct Balance {
    int64_t balance = 0;
    int64_t held = 0;
    int64_t open_holds = 0;
  };
  struct TransferResult {
    int exit_code = -1;
    std::string outcome;  // "committed", "rolled-back" or "error".
    std::string xid;
    std::string output;
  };

  BankCluster();
  ~BankCluster();

  // Before the first start: run `nodes` batond nodes as one cluster, node i
  // hosting shard i of `nodes` and told of every other node started before
  // it. CoordinatorAddress() then lists them all, comma-separated, which the
  // SDK and the bank sample take as seeds.
  void SetCoordinatorNodes(int nodes);
  int coordinator_nodes() const { return static_cast<int>(nodes_.size()); }
  // Before the first start of a cluster: its shard count, if not one per
  // node (the leased mode serves any count on any nodes).
  void SetClusterShards(int shards) { cluster_shards_ = shards; }
  int cluster_shards() const {
    return cluster_shards_ > 0 ? cluster_shards_ : coordinator_nodes();
  }
  // Flags every batond start gets, restarts included (say, its store's).
  void SetCoordinatorFlags(std::vector<std::string> flags) {
    coordinator_flags_ = std::move(flags);
  }

  // Starts batond (of a cluster, every node not running) with extra environment
  // (e.g. BATON_FAILPOINTS=...) and flags; waits until each listens, and on the
  // first start of a cluster, until every node sees every shard.
  void StartCoordinator(const std::vector<std::string>& env = {},
                        const std::vector<std::string>& flags = {});
  // The same, but returns at once: the address stays the previous one (a
  // restart listens on the same port), and nothing waits for recovery.
  void LaunchCoordinator(const std::vector<std::string>& env = {},
                         const std::vector<std::string>& flags = {});
  ChildProcess& coordinator(int node = 0) { return *nodes_[node].process; }
  std::string CoordinatorAddress() const;
  std::string NodeAddress(int node) const;
  // Later coordinator starts run under this command (e.g. {"faketime",
  // "+2h"}), batond's argv following it; empty runs batond directly.
  void SetCoordinatorLauncher(std::vector<std::string> launcher) {
    coordinator_launcher_ = std::move(launcher);
  }
  // Waits until the coordinator's health service says SERVING (or, with
  // `serving` false, NOT_SERVING). Returns false on timeout.
  bool WaitForHealth(bool serving, std::chrono::milliseconds timeout = 20s);

  // Starts (or restarts, on the same port and data dir) a service process
  // named `name` from `binary`, which must take --listen, --coordinator,
  // --data-dir and --port-file; `args` follow those.
  void StartService(const std::string& name, const std::string& binary,
                    const std::vector<std::string>& args,
                    const std::vector<std::string>& env = {});
  ChildProcess& service(const std::string& name) {
    return *banks_[name].process;
  }

  // Starts a bank_service for `resource` seeded with `seed` (ACCOUNT=N,...)
  // on first start; waits until it serves its API. A restart keeps the port.
  void StartBank(const std::string& resource,
                 const std::vector<std::string>& seed,
                 const std::vector<std::string>& env = {});
  std::string BankAddress(const std::string& resource) {
    return "127.0.0.1:" + std::to_string(banks_[resource].port);
  }
  ChildProcess& bank(const std::string& resource) {
    return *banks_[resource].process;
  }

  // Runs bank_client transfer and waits for it. Transfers and balances may
  // run from many threads at once; nothing else may meanwhile.
  TransferResult Transfer(const std::string& from_resource,
                          const std::string& from_account,
                          const std::string& to_resource,
                          const std::string& to_account, int64_t amount,
                          const std::vector<std::string>& extra_flags = {});

  absl::StatusOr<Balance> GetBalance(const std::string& resource,
                                     const std::string& account);
  // Waits until the account shows exactly `balance` with nothing held and no
  // open holds at its service. Returns false on timeout.
  bool WaitForSettled(const std::string& resource, const std::string& account,
                      int64_t balance, std::chrono::milliseconds timeout = 20s);

  absl::StatusOr<v1::Transaction> GetTransaction(const std::string& xid);
  // Waits until the coordinator reports `status` for xid.
  bool WaitForStatus(const std::string& xid, v1::GlobalStatus status,
                     std::chrono::milliseconds timeout = 20s);
  TransactionClient& client() { return *client_; }

  const std::filesystem::path& dir() const { return dir_.path(); }
  // Every process's stderr, for failure messages.
  std::string Logs() const;

 private:
  struct Bank {
    std::unique_ptr<ChildProcess> process;
    int port = 0;
    int starts = 0;
  };
  struct Node {
    std::unique_ptr<ChildProcess> process;
    int port = 0;
    bool launched = false;  // By the current (Launch|Start)Coordinator.
  };

  std::filesystem::path PortFile(int node) const;
  std::vector<std::string> NodeFlags(int node) const;
  bool NodesAgree();

  TempDir dir_;
  std::vector<Node> nodes_ = std::vector<Node>(1);
  std::vector<std::string> coordinator_launcher_;
  int coordinator_starts_ = 0;
  int cluster_shards_ = 0;  // 0: one per node.
  std::vector<std::string> coordinator_flags_;
  std::map<std::string, Bank> banks_;
  std::unique_ptr<TransactionClient> client_;
  std::atomic<int> transfers_{0};
};

// A client of `cluster`'s coordinator that gives up at the first
// UNAVAILABLE, so a test sees that answer itself.
std::unique_ptr<TransactionClient> OneShotClient(const BankCluster& cluster);

// A transaction opened on `client` with one branch on `resource` (carrying
// `data` as its application data) reported prepared. Safe from any thread
// (it makes no test assertions).
struct PreparedBranch {
  std::string xid;
  uint64_t branch_id = 0;
};
absl::StatusOr<PreparedBranch> BeginWithPreparedBranch(
    TransactionClient* client, const std::string& resource,
    const std::string& data = "");

}  // namespace baton::testing

#endif  // BATON_TESTS_SUPPORT_BANK_CLUSTER_H_
