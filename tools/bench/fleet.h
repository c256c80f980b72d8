#ifndef BATON_TOOLS_BENCH_FLEET_H_
#define BATON_TOOLS_BENCH_FLEET_H_

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/tls.h"
#include "tests/support/pg_cluster.h"
#include "tools/bench/workloads.h"

namespace baton::bench {

struct Flags {
  std::string coordinator;
  // Start this many batond nodes as one cluster and route as the SDK does;
  // 0 for one node addressed directly.
  int nodes = 0;
  int concurrency = 16;
  double duration_s = 10;
  uint64_t transactions = 0;
  double rate = 0;
  bool json = false;
  bool baseline = false;
  bool unary = false;
  std::string token_file;
  int branches = 2;
  int steps = 2;
  bool parallel = false;
  bool leveldb_barrier = false;
  // tcc and saga: the participants' hooks do not declare themselves local
  // (TccResource::TryIsLocal), so the barrier marks each try or action
  // started in a synced write of its own, as for one that acts outside it.
  bool mark_started = false;
  // 2pc and tcc: participants move money in their own databases of a
  // throwaway PostgreSQL (PostgresXaResource, or TCC hooks behind a
  // PostgresBarrier), and the same transfers run as local transactions for
  // the floor.
  bool postgres = false;
  // 2pc: each branch's phase one runs in a participant process
  // (Participant::Enlist behind a call to it) instead of the load generator.
  bool enlist = false;
  // Participants serve phase one with the SDK's blocking calls, each on a
  // thread of gRPC's synchronous server (ParticipantFlags::blocking).
  bool blocking = false;
  int participants = 2;
  int64_t retention_s = 60;
  // Where the batond it starts keeps transactions: "leveldb", or
  // "postgres" (a database of the run's throwaway PostgreSQL).
  std::string store = "leveldb";
  std::vector<std::string> batond_args;  // Appended to each started batond's.
  // For calls to a --coordinator batond, from the load generator and the
  // participants it starts; environment applied.
  TlsFiles tls;
};

// What the coordinator nodes counted, summed over them.
struct NodeCounters {
  uint64_t store_syncs = 0;
  double cpu_seconds = 0;
  uint64_t resident_bytes = 0;
};

// The processes of one run, on 127.0.0.1 in a temp dir, stopped when it
// ends. A process that does not start ends the run with a message (exit 1).
// Not thread-safe.
class Fleet {
 public:
  explicit Fleet(const Flags& flags);
  ~Fleet();

  // The coordinator nodes' addresses: --coordinator if given; else one
  // batond, or with --nodes N, N nodes (node i hosting shard i of N, told of
  // the nodes before it) returned once every node lists every shard as
  // serving.
  std::vector<std::string> Coordinators();

  // Starts `n` participant processes serving `protocol` ("xa", "tcc" or
  // "saga") and waits until each is attached (to every node when routed).
  std::vector<ParticipantTarget> Participants(const std::string& coordinator,
                                              const std::string& protocol,
                                              int n);

  // The connection string of `database` on the run's PostgreSQL (started
  // on first use), made with its accounts (postgres_bank.h) on first use.
  std::string PostgresDatabase(const std::string& database);
  // The same, made empty.
  std::string EmptyPostgresDatabase(const std::string& database);

  // An echo server; with `synced`, its NullCoordinator syncs each call to a
  // file in the run's dir.
  std::string EchoServer(bool synced = false);

  // Summed over `nodes` with the admin token; nullopt if one did not answer.
  std::optional<NodeCounters> Counters(
      const std::vector<std::string>& nodes) const;

 private:
  std::string StartNode(int id, const std::vector<std::string>& peers);
  void WaitServing(const std::vector<std::string>& nodes);
  std::string AdminToken() const;

  const Flags& flags_;
  TempDir dir_;
  std::string admin_token_;
  // Declared before processes_, so the participants stop before it.
  std::unique_ptr<testing::PgCluster> postgres_;
  std::set<std::string> postgres_databases_;
  std::vector<std::unique_ptr<ChildProcess>> processes_;
};

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_FLEET_H_
