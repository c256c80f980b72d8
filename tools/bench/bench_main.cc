// baton-bench: measures Baton's throughput and latency. It starts batond,
// participant processes and (with --baseline) an echo server as real
// processes on 127.0.0.1, unless --coordinator names a running batond.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <optional>

#include "absl/synchronization/mutex.h"
#include "baton/v1/admin_service.grpc.pb.h"
#include "common/child_process.h"
#include "common/logging.h"
#include "common/port_file.h"
#include "common/signals.h"
#include "echo.grpc.pb.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "tools/bench/null_coordinator.h"
#include "tools/bench/participant_process.h"
#include "tools/bench/report.h"
#include "tools/bench/workloads.h"

namespace baton::bench {
namespace {

using namespace std::chrono_literals;

struct Flags {
  std::string coordinator;
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
  int participants = 2;
  int64_t retention_s = 60;
  std::vector<std::string> batond_args;  // Appended to the started batond's.
};

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

// The processes a run needs, stopped when it ends.
class Fleet {
 public:
  explicit Fleet(const Flags& flags) : flags_(flags) {}

  // Returns the coordinator address, starting batond unless one was given.
  std::string Coordinator() {
    if (!flags_.coordinator.empty()) return flags_.coordinator;
    auto port_file = dir_.path() / "batond.port";
    auto token_file = dir_.path() / "admin.token";
    std::ofstream(token_file) << "bench-" << getpid() << "\n";
    admin_token_ = fmt::format("bench-{}", getpid());
    std::vector<std::string> args = {BinPath("batond"),
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--data-dir",
                                     (dir_.path() / "data").string(),
                                     "--port-file",
                                     port_file.string(),
                                     "--log-level",
                                     "warn",
                                     "--finished-retention-s",
                                     std::to_string(flags_.retention_s),
                                     "--admin-token-file",
                                     token_file.string()};
    args.insert(args.end(), flags_.batond_args.begin(),
                flags_.batond_args.end());
    processes_.push_back(ChildProcess::Start("batond", args, {}, dir_.path()));
    int port = WaitForPortFile(port_file, 30s);
    if (port == 0) Die("batond did not start: " + processes_.back()->Stderr());
    return fmt::format("127.0.0.1:{}", port);
  }

  // The token for admin calls: the one given, or the started batond's.
  std::string AdminToken() const {
    if (flags_.token_file.empty()) return admin_token_;
    std::ifstream in(flags_.token_file);
    std::string token;
    std::getline(in, token);
    return token;
  }

  // Starts `n` participant processes serving `protocol` ("xa", "tcc" or
  // "saga") and waits until each is attached.
  std::vector<ParticipantTarget> Participants(const std::string& coordinator,
                                              const std::string& protocol,
                                              int n) {
    std::vector<ParticipantTarget> targets;
    for (int i = 0; i < n; ++i) {
      std::string resource = fmt::format("bench-{}", i);
      auto ready = dir_.path() / (resource + ".ready");
      std::vector<std::string> argv = {
          BinPath("baton-bench"), "participant", "--coordinator", coordinator,
          "--resource",           resource,      "--protocol",    protocol,
          "--ready-file",         ready.string()};
      if (flags_.leveldb_barrier) {
        argv.push_back("--barrier-dir");
        argv.push_back((dir_.path() / (resource + ".barrier")).string());
      }
      processes_.push_back(
          ChildProcess::Start(resource, argv, {}, dir_.path()));
      int port = WaitForPortFile(ready, 30s);
      if (port == 0) {
        Die(resource + " did not attach: " + processes_.back()->Stderr());
      }
      targets.push_back({resource, protocol == "tcc"
                                       ? fmt::format("127.0.0.1:{}", port)
                                       : std::string()});
    }
    return targets;
  }

  // With `synced`, its NullCoordinator syncs each call to a file beside
  // batond's data.
  std::string EchoServer(bool synced = false) {
    std::string name = synced ? "synced-echo" : "echo";
    auto port_file = dir_.path() / (name + ".port");
    std::vector<std::string> argv = {BinPath("baton-bench"), "echo-server",
                                     "--port-file", port_file.string()};
    if (synced) {
      argv.push_back("--sync-file");
      argv.push_back((dir_.path() / "null-coordinator.log").string());
    }
    processes_.push_back(ChildProcess::Start(name, argv, {}, dir_.path()));
    int port = WaitForPortFile(port_file, 30s);
    if (port == 0) Die("echo server did not start");
    return fmt::format("127.0.0.1:{}", port);
  }

 private:
  [[noreturn]] static void Die(const std::string& why) {
    fmt::print(stderr, "baton-bench: {}\n", why);
    std::exit(1);
  }

  const Flags& flags_;
  TempDir dir_;
  std::string admin_token_;
  std::vector<std::unique_ptr<ChildProcess>> processes_;
};

std::optional<v1::GetStatsResponse> Stats(v1::AdminService::Stub* admin,
                                          const std::string& token) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token);
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::GetStatsResponse stats;
  if (!admin->GetStats(&context, {}, &stats).ok()) return std::nullopt;
  return stats;
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
  int width = workload == "saga" ? flags.steps : flags.branches;
  int processes = std::min(flags.participants, width);
  if (workload == "tcc") {
    report->workload =
        fmt::format("tcc --branches {}{}", flags.branches, barrier);
    report->rpcs_per_transaction = 2 + 3 * flags.branches;
    return workloads->Tcc(flags.branches,
                          fleet->Participants(coordinator, "tcc", processes));
  }
  if (workload == "saga") {
    report->workload =
        fmt::format("saga --steps {}{}{}", flags.steps,
                    flags.parallel ? " --parallel" : "", barrier);
    report->rpcs_per_transaction = 1;
    return workloads->Saga(
        flags.steps,
        Resources(fleet->Participants(coordinator, "saga", processes)),
        flags.parallel);
  }
  report->workload = fmt::format("2pc --branches {}", flags.branches);
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

int RunBenchmark(const Flags& flags, const std::string& workload) {
  Fleet fleet(flags);
  std::string coordinator = fleet.Coordinator();
  Report report;
  report.concurrency = flags.concurrency;
  report.rate = flags.rate;
  Workloads workloads(coordinator, !flags.unary);
  Operation operation =
      ChooseWorkload(flags, workload, coordinator, &workloads, &fleet, &report);
  auto admin = v1::AdminService::NewStub(
      grpc::CreateChannel(coordinator, grpc::InsecureChannelCredentials()));

  LoadOptions warmup{
      .concurrency = flags.concurrency,
      .operations = static_cast<uint64_t>(flags.concurrency) * 4};
  RunLoad(warmup, operation);
  auto before = Stats(admin.get(), fleet.AdminToken());
  report.load = RunLoad(ToLoadOptions(flags), operation);
  auto after = Stats(admin.get(), fleet.AdminToken());
  uint64_t ok = report.load.completed - report.load.errors;
  if (before && after && ok > 0) {
    report.syncs_per_transaction =
        double(after->store_syncs() - before->store_syncs()) / ok;
    report.cpu_seconds_per_1000 =
        (after->cpu_seconds() - before->cpu_seconds()) * 1000 / ok;
    report.coordinator_resident_mb = after->resident_bytes() / 1048576.0;
  }
  if (flags.baseline) RunBaseline(flags, workload, &fleet, &report);
  if (flags.json) {
    PrintJson(report);
  } else {
    PrintTable(report);
  }
  // A floor measured with errors is no floor.
  for (const auto* floor :
       {&report.baseline_load, &report.synced_baseline_load}) {
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
}

}  // namespace
}  // namespace baton::bench

int main(int argc, char** argv) {
  using baton::bench::AddBarrierOption;
  using baton::bench::AddBranchOptions;
  using baton::bench::Flags;
  Flags flags;
  CLI::App app{
      "baton-bench: throughput and latency of Baton workloads.\n"
      "Starts batond and participants itself unless --coordinator is given."};
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--coordinator", flags.coordinator,
                 "Use this running batond instead of starting one");
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
  app.add_option("--batond-arg", flags.batond_args,
                 "An extra flag for the batond it starts (repeat for more), "
                 "e.g. --batond-arg=--shards=2")
      ->allow_extra_args(false);

  app.add_subcommand("empty", "Begin and commit, no branches");
  CLI::App* two_phase =
      app.add_subcommand("2pc", "2PC with N prepared branches");
  AddBranchOptions(two_phase, "--branches", &flags.branches, &flags);
  CLI::App* tcc = app.add_subcommand(
      "tcc", "TCC with N branches, each tried in a participant process");
  AddBranchOptions(tcc, "--branches", &flags.branches, &flags);
  AddBarrierOption(tcc, &flags);
  CLI::App* saga =
      app.add_subcommand("saga", "A saga of N steps, submitted in one call");
  AddBranchOptions(saga, "--steps", &flags.steps, &flags);
  AddBarrierOption(saga, &flags);
  saga->add_flag("--parallel", flags.parallel,
                 "No order between the steps (default: a chain)");

  baton::bench::ParticipantFlags participant_flags;
  std::string port_file;
  CLI::App* participant = app.add_subcommand("participant")->group("");
  participant->add_option("--resource", participant_flags.resource)->required();
  participant->add_option("--protocol", participant_flags.protocol)
      ->check(CLI::IsMember({"xa", "tcc", "saga"}));
  participant->add_option("--barrier-dir", participant_flags.barrier_dir);
  participant->add_option("--ready-file", participant_flags.ready_file)
      ->required();
  CLI::App* echo = app.add_subcommand("echo-server")->group("");
  echo->add_option("--port-file", port_file)->required();
  std::string sync_file;
  echo->add_option("--sync-file", sync_file);
  CLI11_PARSE(app, argc, argv);

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
