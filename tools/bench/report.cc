#include "tools/bench/report.h"

#include <cmath>
#include <cstdio>

#include "fmt/format.h"

namespace baton::bench {
namespace {

std::optional<double> Efficiency(const Report& r) {
  if (!r.echo_rpcs_per_second || *r.echo_rpcs_per_second <= 0) {
    return std::nullopt;
  }
  return TransactionsPerSecond(r) * r.rpcs_per_transaction /
         *r.echo_rpcs_per_second;
}

std::string OrNull(const std::optional<double>& v, const char* format) {
  return v ? fmt::format(fmt::runtime(format), *v) : "null";
}

void PrintFloor(const std::string& what, const LoadResult& e) {
  fmt::print(
      "baseline      {}: p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f} ms{}\n",
      what, PercentileMs(e, 50), PercentileMs(e, 90), PercentileMs(e, 99),
      PercentileMs(e, 100),
      e.errors ? fmt::format(" ({} errors)", e.errors) : "");
}

std::optional<double> P99(const std::optional<LoadResult>& load) {
  if (!load) return std::nullopt;
  return PercentileMs(*load, 99);
}

}  // namespace

double SuccessesPerSecond(const LoadResult& load) {
  uint64_t ok = load.completed - load.errors;
  return load.seconds > 0 ? ok / load.seconds : 0;
}

double TransactionsPerSecond(const Report& r) {
  return SuccessesPerSecond(r.load);
}

double PercentileMs(const LoadResult& load, double p) {
  if (load.latencies_us.empty()) return 0;
  size_t n = load.latencies_us.size();
  size_t index = std::min(
      n - 1, static_cast<size_t>(std::ceil(p / 100 * n)) - (p > 0 ? 1 : 0));
  return load.latencies_us[index] / 1000.0;
}

void PrintTable(const Report& r) {
  const LoadResult& l = r.load;
  fmt::print("workload      {}\n", r.workload);
  if (!r.store.empty()) fmt::print("store         {}\n", r.store);
  fmt::print("load          {}\n",
             r.rate > 0
                 ? fmt::format("open loop at {:.0f}/s", r.rate)
                 : fmt::format("closed loop, concurrency {}", r.concurrency));
  if (r.nodes > 0) {
    fmt::print("nodes         {}, routed as the SDK routes{}\n", r.nodes,
               r.routing_ns_per_call
                   ? fmt::format(" ({:.0f} ns per routing decision)",
                                 *r.routing_ns_per_call)
                   : "");
  }
  fmt::print("transport     {}\n",
             r.transport == "unary" ? "unary (one RPC per call)"
                                    : "pipeline (calls batched on one stream)");
  fmt::print("transactions  {} in {:.2f} s\n", l.completed, l.seconds);
  fmt::print("tps           {:.0f}\n", TransactionsPerSecond(r));
  fmt::print("latency ms    p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f}\n",
             PercentileMs(l, 50), PercentileMs(l, 90), PercentileMs(l, 99),
             PercentileMs(l, 100));
  fmt::print("errors        {}{}\n", l.errors,
             l.errors ? " (first: " + l.first_error + ")" : "");
  if (r.syncs_per_transaction) {
    fmt::print("syncs/txn     {:.3f}\n", *r.syncs_per_transaction);
  }
  if (r.cpu_seconds_per_1000) {
    fmt::print("batond CPU    {:.3f} s per 1000 transactions\n",
               *r.cpu_seconds_per_1000);
  }
  if (r.coordinator_resident_mb) {
    fmt::print("batond RSS    {:.1f} MiB\n", *r.coordinator_resident_mb);
  }
  if (r.local_load) {
    double local = SuccessesPerSecond(*r.local_load);
    fmt::print(
        "local floor   {:.0f} tps as one local PostgreSQL transaction each "
        "(p99 {:.2f} ms, {} errors); distributed at {:.2f} of it\n",
        local, PercentileMs(*r.local_load, 99), r.local_load->errors,
        local > 0 ? TransactionsPerSecond(r) / local : 0);
  }
  if (r.wal_flushes_per_transaction && r.local_wal_flushes_per_transaction) {
    fmt::print("WAL flushes   {:.2f} per transfer distributed, {:.2f} local\n",
               *r.wal_flushes_per_transaction,
               *r.local_wal_flushes_per_transaction);
  }
  if (r.baseline_load) {
    PrintFloor(r.baseline == "unary echo"
                   ? fmt::format("echo at {:.0f} RPC/s",
                                 r.rate * r.rpcs_per_transaction)
                   : fmt::format("null coordinator at {:.0f}/s", r.rate),
               *r.baseline_load);
    if (r.synced_baseline_load) {
      PrintFloor("  same, syncing each call", *r.synced_baseline_load);
    }
    return;
  }
  if (auto e = Efficiency(r)) {
    fmt::print(
        "baseline      echo {:.0f} RPC/s; efficiency {:.2f} "
        "(tps x {} calls / echo RPC/s)\n",
        *r.echo_rpcs_per_second, *e, r.rpcs_per_transaction);
  }
}

void PrintJson(const Report& r) {
  const LoadResult& l = r.load;
  fmt::print(
      "{{\"workload\":\"{}\",\"transport\":\"{}\",\"store\":\"{}\","
      "\"concurrency\":{},"
      "\"rate\":{},\"nodes\":{},\"routing_ns_per_call\":{},"
      "\"transactions\":{},\"seconds\":{:.3f},\"tps\":{:.1f},"
      "\"p50_ms\":{:.3f},\"p90_ms\":{:.3f},\"p99_ms\":{:.3f},\"max_ms\":{:.3f},"
      "\"errors\":{},\"syncs_per_transaction\":{},"
      "\"cpu_seconds_per_1000\":{},\"coordinator_resident_mb\":{},"
      "\"rpcs_per_transaction\":{},\"echo_rpcs_per_second\":{},"
      "\"efficiency\":{},\"baseline\":{},\"baseline_p99_ms\":{},"
      "\"synced_baseline_p99_ms\":{},\"local_tps\":{},\"local_p99_ms\":{},"
      "\"wal_flushes_per_transaction\":{},"
      "\"local_wal_flushes_per_transaction\":{}}}\n",
      r.workload, r.transport, r.store, r.concurrency, r.rate, r.nodes,
      OrNull(r.routing_ns_per_call, "{:.1f}"), l.completed, l.seconds,
      TransactionsPerSecond(r), PercentileMs(l, 50), PercentileMs(l, 90),
      PercentileMs(l, 99), PercentileMs(l, 100), l.errors,
      OrNull(r.syncs_per_transaction, "{:.4f}"),
      OrNull(r.cpu_seconds_per_1000, "{:.4f}"),
      OrNull(r.coordinator_resident_mb, "{:.1f}"), r.rpcs_per_transaction,
      OrNull(r.echo_rpcs_per_second, "{:.1f}"),
      OrNull(r.baseline_load ? std::nullopt : Efficiency(r), "{:.3f}"),
      r.baseline.empty() ? "null" : "\"" + r.baseline + "\"",
      OrNull(P99(r.baseline_load), "{:.3f}"),
      OrNull(P99(r.synced_baseline_load), "{:.3f}"),
      OrNull(r.local_load ? std::optional(SuccessesPerSecond(*r.local_load))
                          : std::nullopt,
             "{:.1f}"),
      OrNull(P99(r.local_load), "{:.3f}"),
      OrNull(r.wal_flushes_per_transaction, "{:.3f}"),
      OrNull(r.local_wal_flushes_per_transaction, "{:.3f}"));
}

}  // namespace baton::bench
