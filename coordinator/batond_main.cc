// batond: the Baton coordinator.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/admin_token.h"
#include "common/logging.h"
#include "common/port_file.h"
#include "common/signals.h"
#include "common/stable_hash.h"
#include "common/tls.h"
#include "coordinator/cluster_view.h"
#include "coordinator/server.h"
#include "spdlog/spdlog.h"

namespace {

constexpr char kDefaultConsoleListen[] = "127.0.0.1:7480";

// Where the admin API listens: its own address, or the main one.
const std::string& AdminListen(const baton::ServerOptions& options) {
  return options.admin_listen_address.empty() ? options.listen_address
                                              : options.admin_listen_address;
}

// The admin token: --admin-token-file's, else BATON_ADMIN_TOKEN, else, while
// the admin API and the console listen on loopback only, the one batond
// keeps in its data dir (made on the first run; `*generated` names its
// file). Beyond loopback only an operator's token will do, so there it
// stays empty: the admin API is off, unless the policy names admin
// identities.
absl::StatusOr<std::string> AdminToken(const baton::ServerOptions& options,
                                       const std::string& token_file,
                                       const std::string& console_listen,
                                       std::string* generated) {
  if (!token_file.empty()) return baton::ReadTokenFile(token_file);
  const char* env = std::getenv("BATON_ADMIN_TOKEN");
  if (env != nullptr && *env != '\0') return env;
  // The console is an admin client too.
  const bool console_beyond_loopback = !console_listen.empty() &&
                                       console_listen != "off" &&
                                       !baton::IsLoopbackListen(console_listen);
  if (!baton::IsLoopbackListen(AdminListen(options)) ||
      console_beyond_loopback) {
    return "";
  }
  *generated = baton::GeneratedAdminTokenPath(options.data_dir);
  return baton::LoadOrCreateAdminToken(*generated);
}

}  // namespace

int main(int argc, char** argv) {
  baton::ServerOptions options;
  std::string log_level = "info";
  std::string port_file;
  int64_t retention_s = options.recovery.finished_retention_ms / 1000;

  CLI::App app{
      "batond: the Baton distributed transaction coordinator.\n"
      "Every flag can also be set in a config file (--config, INI or TOML, "
      "keys named as the long flags)."};
  app.set_config("--config", "", "Read flags from this file");
  // A flag given twice (say in a script and again by hand): the last wins.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--listen", options.listen_address,
                 "HOST:PORT for gRPC (port 0 picks a free one)")
      ->capture_default_str();
  app.add_option("--data-dir", options.data_dir,
                 "Directory of this node's files: the LevelDB store (with "
                 "--store leveldb) and the generated admin token")
      ->capture_default_str();
  std::map<std::string, baton::ServerOptions::StoreBackend> backends = {
      {"leveldb", baton::ServerOptions::StoreBackend::kLevelDb},
      {"postgres", baton::ServerOptions::StoreBackend::kPostgres}};
  app.add_option("--store", options.store_backend,
                 "Where transactions are kept: leveldb (in --data-dir) or "
                 "postgres (the database --postgres names)")
      ->transform(CLI::CheckedTransformer(backends, CLI::ignore_case))
      ->default_str("leveldb");
  app.add_option("--postgres", options.postgres_conninfo,
                 "libpq connection string of the store's database, with "
                 "--store postgres (or set BATON_POSTGRES, which keeps a "
                 "password out of the process list)")
      ->envname("BATON_POSTGRES");
  app.add_option("--node-id", options.manager.node_id,
                 "The first shard this batond hosts; a shard's number "
                 "prefixes its xids")
      ->capture_default_str();
  app.add_option("--shards", options.manager.shards,
                 "How many shards this batond hosts, numbered on from "
                 "--node-id; each has its own lock and recovery schedule, and "
                 "all share one store and its group commit")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--default-timeout-ms", options.manager.default_timeout_ms,
                 "Timeout of transactions begun without one")
      ->capture_default_str()
      ->check(CLI::Range(1u, 24u * 3600 * 1000));
  app.add_option("--retry-initial-ms", options.manager.retry_initial_ms,
                 "First phase-two retry delay (doubles per attempt)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--retry-max-ms", options.manager.retry_max_ms,
                 "Cap of the phase-two retry delay")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--retry-window-ms", options.manager.retry_window_ms,
                 "Phase two unfinished this long after the decision needs "
                 "attention (retries go on)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--command-timeout-ms", options.manager.command_timeout_ms,
                 "A phase-two command unanswered this long counts as failed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--finished-retention-s", retention_s,
                 "How long finished transactions stay queryable")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or critical")
      ->capture_default_str()
      ->check(CLI::IsMember(
          {"trace", "debug", "info", "warn", "error", "critical"}));
  std::string admin_token_file;
  app.add_option("--admin-token-file", admin_token_file,
                 "File holding the token admin calls must carry (or set "
                 "BATON_ADMIN_TOKEN); without either, batond makes one in "
                 "--data-dir while the admin API listens on loopback, and "
                 "beyond loopback the admin API is off")
      ->check(CLI::ExistingFile);
  app.add_option("--port-file", port_file,
                 "Write the bound port to this file once serving");
  std::string admin_port_file, metrics_port_file;
  app.add_option("--admin-listen", options.admin_listen_address,
                 "HOST:PORT serving AdminService alone (then not on --listen)");
  app.add_option("--admin-port-file", admin_port_file,
                 "Write the bound admin port to this file once serving");
  std::string console_listen;
  app.add_option("--console-listen", console_listen,
                 "IP:PORT for the operators' web console, where they sign in "
                 "with the admin token; 'off' for none. Default: " +
                     std::string(kDefaultConsoleListen) +
                     " (a free port if that one is taken) while the admin "
                     "API is on loopback, else off");
  std::string console_port_file;
  app.add_option("--console-port-file", console_port_file,
                 "Write the bound console port to this file once serving");
  app.add_option("--metrics-listen", options.metrics_listen_address,
                 "IP:PORT for Prometheus metrics over HTTP at /metrics");
  app.add_option("--metrics-port-file", metrics_port_file,
                 "Write the bound metrics port to this file once serving");
  app.add_option("--peers", options.peers,
                 "Other nodes of the cluster, HOST:PORT each (comma "
                 "separated); nodes also learn of the ones that call them")
      ->delimiter(',');
  app.add_option("--topology-poll-ms", options.topology_poll_ms,
                 "How often to ask each peer for its part of the topology")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{60'000}));
  app.add_option("--cluster-shards", options.cluster_shards,
                 "How many shards the whole cluster has (0..N-1), so every "
                 "node maps an idempotency key to the same shard before it "
                 "has heard from the others; 0: the shards heard of")
      ->capture_default_str()
      ->check(CLI::Range(0u, 65'536u));
  app.add_option("--lease-ms", options.lease_ms,
                 "With --store postgres and --cluster-shards: how long a "
                 "node's lease on a shard lasts unrenewed; a dead node's "
                 "shards move to the others about this long after it died")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{500}, int64_t{600'000}));
  std::string pod_name;
  app.add_option("--pod-name", pod_name,
                 "A StatefulSet pod's name (baton-2): its ordinal times "
                 "--shards is the --node-id, so pod N hosts the Nth group of "
                 "--shards shards. With leased shards, any pod's name: a "
                 "hash of it is the --node-id");
  app.add_option("--advertise-address", options.advertise_address,
                 "HOST:PORT other nodes, clients and participants reach this "
                 "one at (default: the --listen host, or this host's name "
                 "if that is a wildcard, and the bound port)");
  std::string health_port_file;
  app.add_option("--health-listen", options.health_listen_address,
                 "HOST:PORT serving only the gRPC health service, always in "
                 "plaintext, for probes that cannot present a client "
                 "certificate");
  app.add_option("--health-port-file", health_port_file,
                 "Write the bound health port to this file once serving");
  baton::ListenerSecurity& security = options.security;
  app.add_option("--tls-cert", security.tls.cert,
                 "PEM certificate chain: every listener but --health-listen "
                 "serves TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", security.tls.key, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", security.tls.ca,
                 "PEM CA bundle: clients must present a certificate that "
                 "chains to it (mutual TLS)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-ca", security.peer_ca,
                 "PEM CA bundle other nodes' certificates must chain to "
                 "(default: --tls-client-ca)")
      ->check(CLI::ExistingFile);
  int64_t tls_refresh_s = security.tls.refresh.count();
  int participant_queue_mib =
      static_cast<int>(options.streams.participant_queue_bytes >> 20);
  app.add_option("--tls-refresh-s", tls_refresh_s,
                 "How often the TLS files are read again, so a rotated "
                 "certificate is used without a restart")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{3600}));
  app.add_option("--max-attach-streams", options.streams.max_attach_streams,
                 "Attach streams open at once; more are refused with "
                 "RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--max-pipeline-streams", options.streams.max_pipeline_streams,
                 "Pipeline streams open at once; more are refused with "
                 "RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--hello-timeout-ms", options.streams.hello_timeout_ms,
                 "An Attach stream that sends no Hello this long after "
                 "opening is closed with DEADLINE_EXCEEDED")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{600'000}));
  app.add_option("--participant-queue-mib", participant_queue_mib,
                 "Commands queued for one participant stream, in MiB; past "
                 "it the stream takes no more until it reads")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--participant-stall-ms", options.streams.participant_stall_ms,
                 "A participant stream with a full queue that took nothing "
                 "this long is cut")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{3'600'000}));
  app.add_option("--authz-policy", options.authz_policy_file,
                 "JSON file saying which participant identities (client "
                 "certificates, or token digests) may serve which resources; "
                 "its schema is proto/baton/v1/authz_policy.proto")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", security.insecure,
               "Serve plaintext beyond loopback all the same (a warning is "
               "logged): only where the network is secured otherwise");
  CLI11_PARSE(app, argc, argv);
  security.tls.refresh = std::chrono::seconds(tls_refresh_s);
  options.streams.participant_queue_bytes = size_t(participant_queue_mib) << 20;
  if (!pod_name.empty() && options.leased()) {
    // A Deployment's pods have no ordinal, and need none: the name only
    // has to tell the nodes apart.
    if (app.count("--node-id") > 0) {
      std::cerr << "--pod-name and --node-id both given: pick one\n";
      return 2;
    }
    options.manager.node_id =
        static_cast<uint32_t>(baton::StableHash(pod_name) & 0x7fffffff);
  } else if (!pod_name.empty()) {
    std::optional<uint32_t> ordinal = baton::PodOrdinal(pod_name);
    if (!ordinal || app.count("--node-id") > 0) {
      std::cerr << "--pod-name " << pod_name
                << (ordinal ? " and --node-id both given: pick one"
                            : " does not end in -N (a StatefulSet ordinal)")
                << "\n";
      return 2;
    }
    options.manager.node_id = *ordinal * options.manager.shards;
  }
  if (options.leased() && app.count("--shards") > 0) {
    std::cerr << "with --store postgres and --cluster-shards, a node serves "
                 "whichever shards it leases: drop --shards\n";
    return 2;
  }
  if (options.cluster_shards > 0 && !options.leased() &&
      options.manager.node_id + options.manager.shards >
          options.cluster_shards) {
    std::cerr << "this node hosts shards " << options.manager.node_id << ".."
              << options.manager.node_id + options.manager.shards - 1
              << ", outside --cluster-shards " << options.cluster_shards
              << " (0.." << options.cluster_shards - 1 << ")\n";
    return 2;
  }
  const bool postgres =
      options.store_backend == baton::ServerOptions::StoreBackend::kPostgres;
  if (postgres == options.postgres_conninfo.empty()) {
    std::cerr << (postgres ? "--store postgres needs --postgres DSN (or "
                             "BATON_POSTGRES): the database to keep "
                             "transactions in\n"
                           : "--postgres names the store's database; add "
                             "--store postgres to keep transactions there\n");
    return 2;
  }
  options.recovery.finished_retention_ms = retention_s * 1000;
  std::string generated_token;
  absl::StatusOr<std::string> admin_token =
      AdminToken(options, admin_token_file, console_listen, &generated_token);
  if (!admin_token.ok()) {
    std::cerr << "batond: " << admin_token.status().message() << "\n";
    return 1;
  }
  options.admin_token = *admin_token;
  if (console_listen.empty() && !options.admin_token.empty() &&
      baton::IsLoopbackListen(AdminListen(options))) {
    options.console_listen_address = kDefaultConsoleListen;
    options.console_any_port_if_taken = true;
  } else if (console_listen != "off") {
    options.console_listen_address = console_listen;
  }

  // Debian's abseil is built with mutex deadlock detection on; inside gRPC's
  // hot paths it costs ~5% of batond's CPU and finds nothing we can act on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  baton::BlockStopSignals();
  baton::SetupLogging("batond", log_level);
  std::unique_ptr<baton::Server> server;
  absl::Status s = baton::Server::Start(options, &server);
  if (!s.ok()) {
    spdlog::critical("cannot start: {}", s.ToString());
    return 1;
  }
  if (server->console_port() != 0) {
    const std::string& at = options.console_listen_address;
    spdlog::info("console at {}://{}:{}/ (sign in with the admin token)",
                 options.security.tls.server_enabled() ? "https" : "http",
                 at.substr(0, at.rfind(':')), server->console_port());
  }
  if (!generated_token.empty()) {
    spdlog::info(
        "admin API on loopback, with the token batond keeps in {} "
        "(batonctl reads it from there given --data-dir {}; without the "
        "flag it looks in ./data)",
        generated_token, options.data_dir);
  } else if (options.admin_token.empty()) {
    spdlog::warn(
        "admin API off: it listens beyond loopback, where it needs a token "
        "an operator chose (--admin-token-file or BATON_ADMIN_TOKEN) or "
        "admin identities in --authz-policy");
  }
  for (auto [file, port] : {std::pair{port_file, server->port()},
                            {admin_port_file, server->admin_port()},
                            {metrics_port_file, server->metrics_port()},
                            {console_port_file, server->console_port()},
                            {health_port_file, server->health_port()}}) {
    if (!file.empty() && !baton::WritePortFile(file, port)) {
      spdlog::critical("cannot write port file {}", file);
      return 1;
    }
  }
  spdlog::info("signal {}: shutting down", baton::WaitForStopSignal());
  // Everything acknowledged is already synced, so a bounded shutdown is safe;
  // open calls are cancelled rather than waited for.
  std::thread watchdog([] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    _exit(0);
  });
  watchdog.detach();
  server->Shutdown();
  spdlog::default_logger()->flush();
  _exit(0);
}
