// baton-bench: measures Baton's throughput and latency. It starts batond
// (or with --nodes, a cluster of them), participant processes and (with
// --baseline) an echo server as real processes on 127.0.0.1, unless
// --coordinator names a running batond.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/port_file.h"
#include "common/signals.h"
#include "common/tls_flags.h"
#include "echo.grpc.pb.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "tools/bench/fleet.h"
#include "tools/bench/null_coordinator.h"
#include "tools/bench/participant_process.h"
#include "tools/bench/postgres_bank.h"
#include "tools/bench/report.h"
#include "tools/bench/workloads.h"

namespace baton::bench {
namespace {

using namespace std::chrono_literals;

class EchoService final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const EchoMessage* request,
                                 EchoMessage* reply) override {
    reply->set_payload(request->payload());
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Serves the unary echo and, for open-loop baselines, the NullCoordinator
// (syncing each call to `sync_file` if one is given).
int ServeEcho(const std::string& port_file, const std::string& sync_file) {
  EchoService service;
  NullCoordinator null_coordinator(sync_file);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  builder.RegisterService(&null_coordinator);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) return 1;
  WritePortFile(port_file, port);
  WaitForStopSignal();
  _exit(0);
}

LoadOptions ToLoadOptions(const Flags& flags) {
  LoadOptions options;
  options.concurrency = flags.concurrency;
  options.duration =
      std::chrono::milliseconds(static_cast<int64_t>(flags.duration_s * 1000));
  options.operations = flags.transactions;
  options.rate = flags.rate;
  return options;
}

std::vector<std::string> Resources(
    const std::vector<ParticipantTarget>& targets) {
  std::vector<std::string> resources;
  for (const ParticipantTarget& target : targets) {
    resources.push_back(target.resource);
  }
  return resources;
}

// Starts the participants `workload` needs; names it and counts its calls in
// `report`.
Operation ChooseWorkload(const Flags& flags, const std::string& workload,
                         const std::string& coordinator, Workloads* workloads,
                         Fleet* fleet, Report* report) {
  report->transport = flags.unary ? "unary" : "pipeline";
  if (workload == "empty") {
    report->workload = "empty";
    report->rpcs_per_transaction = 2;
    return workloads->Empty();
  }
  const char* barrier = flags.leveldb_barrier ? " --leveldb-barrier" : "";
  const char* parallel = flags.parallel ? " --parallel" : "";
  const char* blocking = flags.blocking ? " --blocking" : "";
  const char* marked = flags.mark_started ? " --mark-started" : "";
  workloads->set_parallel_branches(flags.parallel);
  int width = workload == "saga" ? flags.steps : flags.branches;
  int processes = std::min(flags.participants, width);
  if (workload == "tcc") {
    report->workload = fmt::format("tcc --branches {}{}{}{}{}{}",
                                   flags.branches, parallel, blocking, barrier,
                                   marked, flags.postgres ? " --postgres" : "");
    report->rpcs_per_transaction = 2 + 3 * flags.branches;
    std::vector<ParticipantTarget> targets =
        fleet->Participants(coordinator, "tcc", processes);
    if (flags.postgres) {
      return workloads->PostgresTransfer(v1::PROTOCOL_TCC, flags.branches,
                                         targets);
    }
    return workloads->InParticipants(v1::PROTOCOL_TCC, flags.branches, targets);
  }
  if (workload == "saga") {
    report->workload = fmt::format("saga --steps {}{}{}{}", flags.steps,
                                   parallel, barrier, marked);
    report->rpcs_per_transaction = 1;
    return workloads->Saga(
        flags.steps,
        Resources(fleet->Participants(coordinator, "saga", processes)),
        flags.parallel);
  }
  if (flags.postgres || flags.enlist) {
    report->workload =
        fmt::format("2pc --branches {}{}{} {}", flags.branches, parallel,
                    blocking, flags.postgres ? "--postgres" : "--enlist");
    report->rpcs_per_transaction = 2 + 3 * flags.branches;
    std::vector<ParticipantTarget> targets =
        fleet->Participants(coordinator, "xa", processes);
    if (flags.postgres) {
      return workloads->PostgresTransfer(v1::PROTOCOL_TWO_PHASE, flags.branches,
                                         targets);
    }
    return workloads->InParticipants(v1::PROTOCOL_TWO_PHASE, flags.branches,
                                     targets);
  }
  report->workload =
      fmt::format("2pc --branches {}{}", flags.branches, parallel);
  report->rpcs_per_transaction = 2 + 2 * flags.branches;
  return workloads->TwoPhase(
      flags.branches,
      Resources(fleet->Participants(coordinator, "xa", processes)));
}

// The same workload's calls, on the pipeline, against a NullCoordinator at
// `address`. TCC has none: its tries run in participant processes.
std::optional<Operation> AgainstNullCoordinator(const std::string& workload,
                                                const Flags& flags,
                                                Workloads* null_workloads) {
  std::vector<std::string> resources = {"null-0", "null-1"};
  if (workload == "empty") return null_workloads->Empty();
  if (workload == "2pc") {
    return null_workloads->TwoPhase(flags.branches, resources);
  }
  if (workload == "saga") {
    return null_workloads->Saga(flags.steps, resources, flags.parallel);
  }
  return std::nullopt;
}

// Closed loop: the unary echo's best rate at the same concurrency, for the
// efficiency ratio. Open loop: the latency floor at the same rate; on the
// pipeline, the same workload against a coordinator that does nothing,
// else the unary echo at rate x calls per transaction.
void RunBaseline(const Flags& flags, const std::string& workload, Fleet* fleet,
                 Report* report) {
  LoadOptions options = ToLoadOptions(flags);
  options.operations = 0;
  options.duration = std::chrono::milliseconds(std::max<int64_t>(
      2000, static_cast<int64_t>(report->load.seconds * 1000)));
  if (flags.rate > 0 && !flags.unary) {
    // Each floor runs after batond's run, never beside it or the other.
    auto floor = [&](bool synced) -> std::optional<LoadResult> {
      Workloads null_workloads(fleet->EchoServer(synced), /*pipeline=*/true);
      auto operation = AgainstNullCoordinator(workload, flags, &null_workloads);
      if (!operation) return std::nullopt;
      RunLoad({.concurrency = flags.concurrency, .operations = 1000},
              *operation);
      return RunLoad(options, *operation);
    };
    if ((report->baseline_load = floor(false))) {
      report->synced_baseline_load = floor(true);
      report->baseline = "null coordinator";
      return;
    }
  }
  report->baseline = "unary echo";
  if (flags.rate > 0) options.rate = flags.rate * report->rpcs_per_transaction;
  LoadResult r = RunLoad(options, Workloads::Echo(fleet->EchoServer()));
  report->echo_rpcs_per_second = (r.completed - r.errors) / r.seconds;
  if (flags.rate > 0) report->baseline_load = std::move(r);
}

// The server's WAL flushes from its making to PerTransaction, on the
// run's PostgreSQL; nothing without one.
class WalCounter {
 public:
  explicit WalCounter(Fleet* fleet)
      : conninfo_(fleet ? fleet->PostgresDatabase("local") : ""),
        start_(Read()) {}
  std::optional<double> PerTransaction(const LoadResult& load) const {
    std::optional<int64_t> end = Read();
    uint64_t ok = load.completed - load.errors;
    if (!start_ || !end || ok == 0) return std::nullopt;
    return double(*end - *start_) / ok;
  }

 private:
  std::optional<int64_t> Read() const {
    if (conninfo_.empty()) return std::nullopt;
    absl::StatusOr<int64_t> flushes = WalFlushes(conninfo_);
    return flushes.ok() ? std::optional(*flushes) : std::nullopt;
  }
  const std::string conninfo_;
  const std::optional<int64_t> start_;
};

// The floor of 2pc --postgres: the same transfers as local transactions,
// after the distributed run, at the same concurrency and for as long.
void RunLocalFloor(const Flags& flags, Fleet* fleet, Report* report) {
  const std::string conninfo = fleet->PostgresDatabase("local");
  RunLocalTransfers(conninfo, {.concurrency = flags.concurrency,
                               .operations = uint64_t(flags.concurrency) * 4});
  WalCounter wal(fleet);
  report->local_load = RunLocalTransfers(conninfo, ToLoadOptions(flags));
  report->local_wal_flushes_per_transaction =
      wal.PerTransaction(*report->local_load);
}

int RunBenchmark(const Flags& flags, const std::string& workload) {
  Fleet fleet(flags);
  std::vector<std::string> nodes = fleet.Coordinators();
  Report report;
  report.concurrency = flags.concurrency;
  report.rate = flags.rate;
  report.nodes = flags.nodes;
  if (flags.coordinator.empty()) report.store = flags.store;
  Workloads workloads(CoordinatorOptions{.nodes = nodes,
                                         .pipeline = !flags.unary,
                                         .routed = flags.nodes > 0,
                                         .tls = flags.tls});
  Operation operation = ChooseWorkload(flags, workload, nodes.front(),
                                       &workloads, &fleet, &report);

  LoadOptions warmup{
      .concurrency = flags.concurrency,
      .operations = static_cast<uint64_t>(flags.concurrency) * 4};
  // The floor's database exists before anything is measured.
  if (flags.postgres) fleet.PostgresDatabase("local");
  RunLoad(warmup, operation);
  std::optional<NodeCounters> before = fleet.Counters(nodes);
  WalCounter wal(flags.postgres ? &fleet : nullptr);
  report.load = RunLoad(ToLoadOptions(flags), operation);
  if (flags.postgres) {
    // Backends that stay connected (the participants' pools) report their
    // WAL counts only once idle for 10 s; the floor's disconnect, so
    // report at once.
    std::this_thread::sleep_for(std::chrono::seconds(11));
  }
  report.wal_flushes_per_transaction = wal.PerTransaction(report.load);
  std::optional<NodeCounters> after = fleet.Counters(nodes);
  uint64_t ok = report.load.completed - report.load.errors;
  if (before && after && ok > 0) {
    report.syncs_per_transaction =
        double(after->store_syncs - before->store_syncs) / ok;
    report.cpu_seconds_per_1000 =
        (after->cpu_seconds - before->cpu_seconds) * 1000 / ok;
    report.coordinator_resident_mb = after->resident_bytes / 1048576.0;
  }
  report.routing_ns_per_call = workloads.RoutingNanosPerCall();
  if (flags.postgres) RunLocalFloor(flags, &fleet, &report);
  if (flags.baseline) RunBaseline(flags, workload, &fleet, &report);
  if (flags.json) {
    PrintJson(report);
  } else {
    PrintTable(report);
  }
  // A floor measured with errors is no floor.
  for (const auto* floor : {&report.baseline_load, &report.synced_baseline_load,
                            &report.local_load}) {
    if (*floor && (*floor)->errors > 0) return 1;
  }
  return report.load.errors == 0 && ok > 0 ? 0 : 1;
}

// A workload's width (branches or steps) and how many processes serve it.
void AddBranchOptions(CLI::App* workload, const std::string& name, int* width,
                      Flags* flags) {
  workload->add_option(name, *width)
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  workload
      ->add_option("--participants", flags->participants,
                   "Participant processes, serving the branches in turn")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
}

void AddBarrierOption(CLI::App* workload, Flags* flags) {
  workload->add_flag("--leveldb-barrier", flags->leveldb_barrier,
                     "Participants guard their hooks with the SDK's synced "
                     "LevelDB barrier (default: a pass-through one)");
  workload->add_flag("--mark-started", flags->mark_started,
                     "The participants' tries or actions do not declare "
                     "themselves local, so their barrier first marks each "
                     "started in a synced write of its own, as for one that "
                     "acts outside its store");
}

void AddBlockingOption(CLI::App* workload, Flags* flags) {
  workload->add_flag("--blocking", flags->blocking,
                     "Participants run phase one with the SDK's blocking "
                     "Try/Enlist, each call on a thread of gRPC's synchronous "
                     "server (default: TryAsync/EnlistAsync on the callback "
                     "server)");
}

void AddParallelOption(CLI::App* workload, const std::string& what,
                       Flags* flags) {
  workload->add_flag("--parallel", flags->parallel,
                     "No order between the " + what +
                         ": all at once (default: one after another)");
}

}  // namespace
}  // namespace baton::bench

int main(int argc, char** argv) {
  using baton::bench::AddBarrierOption;
  using baton::bench::AddBlockingOption;
  using baton::bench::AddBranchOptions;
  using baton::bench::AddParallelOption;
  using baton::bench::Flags;
  Flags flags;
  CLI::App app{
      "baton-bench: throughput and latency of Baton workloads.\n"
      "Starts batond and participants itself unless --coordinator is given."};
  app.fallthrough();
  app.require_subcommand(1);
  auto* coordinator =
      app.add_option("--coordinator", flags.coordinator,
                     "Use this running batond instead of starting one");
  app.add_option("--nodes", flags.nodes,
                 "Start this many batond nodes as one cluster (node i owns "
                 "shard i) and send each call where the SDK would: a new "
                 "transaction to its idempotency key's shard, the rest to "
                 "their xid's shard")
      ->check(CLI::Range(1, 16))
      ->excludes(coordinator);
  app.add_option("--concurrency", flags.concurrency,
                 "Transactions in flight (closed loop)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  auto* duration =
      app.add_option("--duration", flags.duration_s, "Seconds to measure")
          ->capture_default_str();
  app.add_option("--transactions", flags.transactions,
                 "Measure this many transactions instead of a duration")
      ->excludes(duration);
  app.add_option("--rate", flags.rate,
                 "Open loop: start this many transactions per second")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", flags.json, "Print one JSON object");
  baton::AddTlsClientFlags(&app, &flags.tls);
  app.add_option("--token-file", flags.token_file,
                 "Admin token of the --coordinator batond (for its counters)");
  app.add_flag("--baseline", flags.baseline,
               "Also measure a unary echo RPC and print the efficiency ratio "
               "(with --rate: the latency floors, the same calls against a "
               "coordinator that does nothing, and one that only syncs)");
  app.add_flag("--unary", flags.unary,
               "Send the load generator's calls to batond as one RPC each "
               "instead of on the SDK's pipeline stream");
  app.add_option("--retention-s", flags.retention_s,
                 "Finished-transaction retention of the batond it starts")
      ->capture_default_str();
  app.add_option("--store", flags.store,
                 "Store of the batond it starts: leveldb, or postgres (in a "
                 "throwaway PostgreSQL the run starts, as the tests do; with "
                 "--nodes, the nodes share it and lease its shards)")
      ->capture_default_str()
      ->check(CLI::IsMember({"leveldb", "postgres"}))
      ->excludes(coordinator);
  app.add_option("--batond-arg", flags.batond_args,
                 "An extra flag for the batond it starts (repeat for more), "
                 "e.g. --batond-arg=--shards=2")
      ->allow_extra_args(false);

  app.add_subcommand("empty", "Begin and commit, no branches");
  CLI::App* two_phase =
      app.add_subcommand("2pc", "2PC with N prepared branches");
  AddBranchOptions(two_phase, "--branches", &flags.branches, &flags);
  AddParallelOption(two_phase, "branches", &flags);
  AddBlockingOption(two_phase, &flags);
  two_phase->add_flag(
      "--postgres", flags.postgres,
      "Start a throwaway PostgreSQL; each participant moves money in its own "
      "database with the SDK's PostgresXaResource, and the same transfers "
      "then run as local transactions for the floor (local_tps)");
  two_phase->add_flag(
      "--enlist", flags.enlist,
      "Each branch's phase one runs in a participant process, behind a call "
      "to it (Participant::Enlist), as a service's does and as TCC's tries "
      "do (default: the load generator registers and reports the branches)");
  CLI::App* tcc = app.add_subcommand(
      "tcc", "TCC with N branches, each tried in a participant process");
  AddBranchOptions(tcc, "--branches", &flags.branches, &flags);
  AddParallelOption(tcc, "branches", &flags);
  AddBlockingOption(tcc, &flags);
  AddBarrierOption(tcc, &flags);
  tcc->add_flag("--postgres", flags.postgres,
                "Start a throwaway PostgreSQL; each participant moves money "
                "in its own database with TCC hooks behind the SDK's "
                "PostgresBarrier, and the same transfers then run as local "
                "transactions for the floor (local_tps)");
  CLI::App* saga =
      app.add_subcommand("saga", "A saga of N steps, submitted in one call");
  AddBranchOptions(saga, "--steps", &flags.steps, &flags);
  AddBarrierOption(saga, &flags);
  AddParallelOption(saga, "steps", &flags);

  baton::bench::ParticipantFlags participant_flags;
  std::string port_file;
  CLI::App* participant = app.add_subcommand("participant")->group("");
  participant->add_option("--resource", participant_flags.resource)->required();
  participant->add_option("--protocol", participant_flags.protocol)
      ->check(CLI::IsMember({"xa", "tcc", "saga"}));
  participant->add_option("--barrier-dir", participant_flags.barrier_dir);
  participant->add_option("--postgres", participant_flags.postgres);
  participant->add_flag("--routed", participant_flags.routed);
  participant->add_flag("--enlist", participant_flags.enlist);
  participant->add_flag("--blocking", participant_flags.blocking);
  participant->add_flag("--mark-started", participant_flags.mark_started);
  participant->add_option("--ready-file", participant_flags.ready_file)
      ->required();
  CLI::App* echo = app.add_subcommand("echo-server")->group("");
  echo->add_option("--port-file", port_file)->required();
  std::string sync_file;
  echo->add_option("--sync-file", sync_file);
  CLI11_PARSE(app, argc, argv);
  if (flags.postgres && flags.leveldb_barrier) {
    std::cerr << "baton-bench: tcc --postgres keeps its barrier in "
                 "PostgreSQL; drop --leveldb-barrier\n";
    return 2;
  }
  if (flags.postgres && flags.enlist) {
    std::cerr << "baton-bench: 2pc --postgres already enlists in the "
                 "participants; drop --enlist\n";
    return 2;
  }
  if (flags.blocking && *two_phase && !flags.postgres && !flags.enlist) {
    std::cerr << "baton-bench: 2pc --blocking needs --enlist or --postgres "
                 "(otherwise baton-bench itself runs phase one)\n";
    return 2;
  }
  if (flags.postgres && flags.rate > 0) {
    // The local floor runs closed loop only.
    std::cerr << "baton-bench: --postgres measures in closed loop; drop "
                 "--rate\n";
    return 2;
  }
  flags.tls = baton::WithTlsEnvironment(flags.tls);

  // As in batond: Debian's abseil checks every mutex for deadlock cycles,
  // which costs the load generator and the participants ~5% for nothing.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  baton::BlockStopSignals();
  baton::SetupLogging("baton-bench", "warn");
  if (*participant) {
    participant_flags.coordinator = flags.coordinator;
    return baton::bench::ServeParticipant(participant_flags);
  }
  if (*echo) return baton::bench::ServeEcho(port_file, sync_file);
  std::string workload = app.get_subcommands().front()->get_name();
  return baton::bench::RunBenchmark(flags, workload);
}
