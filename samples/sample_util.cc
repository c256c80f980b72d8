#include "samples/sample_util.h"

#include <CLI/CLI.hpp>

#include "common/port_file.h"
#include "common/signals.h"
#include "spdlog/spdlog.h"

namespace baton::samples {

std::map<std::string, int64_t> ParseSeed(
    const std::vector<std::string>& items) {
  std::map<std::string, int64_t> seed;
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) throw CLI::ValidationError("--seed", item);
    seed[item.substr(0, eq)] = std::stoll(item.substr(eq + 1));
  }
  return seed;
}

int ServeUntilSignal(const std::string& listen, const std::string& port_file,
                     grpc::Service* service) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service);
  // Keep idle threads: gRPC's sync server otherwise ends them and makes new
  // ones under load, which costs more than the calls (docs/TCC.md).
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 256);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::critical("cannot listen on {}", listen);
    return 1;
  }
  spdlog::info("serving on port {}", port);
  if (!port_file.empty()) WritePortFile(port_file, port);
  spdlog::info("signal {}: stopping", WaitForStopSignal());
  spdlog::default_logger()->flush();
  // Everything acknowledged is synced; no graceful drain needed.
  _exit(0);
}

}  // namespace baton::samples
