#ifndef BATON_TOOLS_BENCH_REPORT_H_
#define BATON_TOOLS_BENCH_REPORT_H_

#include <optional>
#include <string>

#include "tools/bench/load_driver.h"

namespace baton::bench {

struct Report {
  std::string workload;  // e.g. "2pc --branches 2"
  int concurrency = 0;
  // --nodes: coordinator nodes started as a cluster (0: one, addressed
  // directly).
  int nodes = 0;
  // With --nodes: what one routing decision costs the client (Router), in
  // nanoseconds.
  std::optional<double> routing_ns_per_call;
  double rate = 0;
  LoadResult load;
  // "pipeline" or "unary": how the load generator's calls travel.
  std::string transport;
  std::string store;  // Of the batond it started: "leveldb" or "postgres".
  // TransactionService calls per transaction (stream exchanges not counted).
  int rpcs_per_transaction = 0;
  // From the coordinator's counters over the measured run.
  std::optional<double> syncs_per_transaction;
  std::optional<double> cpu_seconds_per_1000;
  std::optional<double> coordinator_resident_mb;
  // From --baseline: "unary echo" or "null coordinator".
  std::string baseline;
  std::optional<double> echo_rpcs_per_second;
  // From --baseline in open loop: the latency floor at the same rate (the
  // same workload against the null coordinator, or the unary echo at rate x
  // calls per transaction) and, on the pipeline, the floor of a coordinator
  // that syncs every call (the null coordinator with group-committed
  // fdatasyncs).
  std::optional<LoadResult> baseline_load;
  std::optional<LoadResult> synced_baseline_load;
  // 2pc --postgres: the same transfers as one local PostgreSQL transaction
  // each, at the same concurrency, and the server's WAL flushes per
  // transfer in each run.
  std::optional<LoadResult> local_load;
  std::optional<double> wal_flushes_per_transaction;
  std::optional<double> local_wal_flushes_per_transaction;
};

double TransactionsPerSecond(const Report& report);
double SuccessesPerSecond(const LoadResult& load);
// p in [0, 100]; 0 if nothing succeeded.
double PercentileMs(const LoadResult& load, double p);

void PrintTable(const Report& report);
void PrintJson(const Report& report);

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_REPORT_H_
