#ifndef BATON_TESTS_SUPPORT_PG_CLUSTER_H_
#define BATON_TESTS_SUPPORT_PG_CLUSTER_H_

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/child_process.h"

namespace baton::testing {

// A throwaway PostgreSQL server for tests: initdb into a temp dir, then
// postgres listening on 127.0.0.1 at an ephemeral port, with its socket
// directory inside the temp dir, trust authentication for the superuser
// "postgres", and max_prepared_transactions set. The destructor stops it
// (fast shutdown) and removes the directory.
//
// Server binaries: $BATON_PG_BINDIR if set, else the newest
// /usr/lib/postgresql/*/bin (Debian's postgresql package; scripts/setup
// installs it).
//
// PostgreSQL refuses to run as root. When the tests run as root (CI does),
// initdb and postgres run as an unprivileged user instead: $BATON_PG_USER if
// set, else "baton-pg" (scripts/setup creates it), else "nobody". The temp
// dir is handed to that user, and the processes are started through setpriv,
// which execs them in place, so the pid the test holds is the server's own.
class PgCluster {
 public:
  struct Options {
    int max_prepared_transactions = 100;
    int max_connections = 200;
  };

  // Starts the server and waits until it accepts connections. Throws
  // std::runtime_error with the server's log if it cannot.
  explicit PgCluster(const Options& options);
  PgCluster() : PgCluster(Options{}) {}
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  int port() const { return port_; }

  // Stops the server (fast shutdown: sessions are cut off), and starts it
  // again on the same port and data. Restart throws if it cannot.
  void Stop();
  void Restart();
  // A libpq connection string for `database` on this server.
  std::string ConnInfo(const std::string& database) const;

  // Creates a database; throws on failure.
  void CreateDatabase(const std::string& database);

  // Runs one statement and returns its rows as text (NULL as ""); the
  // status carries PostgreSQL's error.
  absl::StatusOr<std::vector<std::vector<std::string>>> Query(
      const std::string& database, const std::string& sql);
  // The gids in pg_prepared_xacts for `database`.
  std::vector<std::string> PreparedGids(const std::string& database);

  // The server's log, for failure messages.
  std::string Log() const;

 private:
  void RunToCompletion(const std::string& name,
                       const std::vector<std::string>& argv);
  bool StartServer(int port);
  std::vector<std::string> AsServerUser(std::vector<std::string> argv) const;

  TempDir dir_;
  std::filesystem::path bin_dir_;
  std::filesystem::path data_dir_;
  std::string user_;  // Empty when not root: run as ourselves.
  int port_ = 0;
  Options options_;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace baton::testing

#endif  // BATON_TESTS_SUPPORT_PG_CLUSTER_H_
