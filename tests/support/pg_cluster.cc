#include "tests/support/pg_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "baton/postgres.h"

namespace baton::testing {
namespace {

using namespace std::chrono_literals;

std::filesystem::path FindBinDir() {
  if (const char* dir = std::getenv("BATON_PG_BINDIR")) return dir;
  std::vector<std::filesystem::path> found;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(entry.path() / "bin" / "initdb")) {
      found.push_back(entry.path() / "bin");
    }
  }
  if (found.empty()) {
    throw std::runtime_error(
        "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: run "
        "scripts/setup (it installs Debian's postgresql), or set "
        "BATON_PG_BINDIR");
  }
  // Versions are whole numbers; the longest name, then the greatest, wins.
  return *std::max_element(found.begin(), found.end(), [](auto& a, auto& b) {
    std::string x = a.parent_path().filename(), y = b.parent_path().filename();
    return x.size() != y.size() ? x.size() < y.size() : x < y;
  });
}

std::string ServerUser() {
  if (const char* user = std::getenv("BATON_PG_USER")) return user;
  return getpwnam("baton-pg") != nullptr ? "baton-pg" : "nobody";
}

// A port the kernel just handed out and released. Another process could
// take it before postgres binds; StartServer then fails and is retried.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

void GiveTo(const std::filesystem::path& path, const passwd* user) {
  if (chown(path.c_str(), user->pw_uid, user->pw_gid) != 0) {
    throw std::runtime_error("cannot chown " + path.string());
  }
}

}  // namespace

PgCluster::PgCluster(const Options& options)
    : bin_dir_(FindBinDir()), options_(options) {
  data_dir_ = dir_.path() / "pgdata";
  std::filesystem::create_directories(data_dir_);
  std::filesystem::create_directories(dir_.path() / "socket");
  std::filesystem::permissions(data_dir_, std::filesystem::perms::owner_all);
  if (geteuid() == 0) {
    user_ = ServerUser();
    const passwd* user = getpwnam(user_.c_str());
    if (user == nullptr) {
      throw std::runtime_error("no user '" + user_ +
                               "' to run PostgreSQL as (it refuses root)");
    }
    // The server user must reach its directories through the temp dir.
    std::filesystem::permissions(dir_.path(),
                                 std::filesystem::perms::others_exec |
                                     std::filesystem::perms::group_exec,
                                 std::filesystem::perm_options::add);
    GiveTo(data_dir_, user);
    GiveTo(dir_.path() / "socket", user);
  }
  RunToCompletion("initdb", {(bin_dir_ / "initdb").string(), "-D",
                             data_dir_.string(), "-U", "postgres", "-A",
                             "trust", "-E", "UTF8", "--locale=C", "--no-sync"});
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (StartServer(FreePort())) return;
  }
  throw std::runtime_error("postgres did not start:\n" + Log());
}

PgCluster::~PgCluster() { Stop(); }

void PgCluster::Stop() {
  if (server_ == nullptr || server_->HasExited()) return;
  server_->Signal(SIGINT);  // Fast shutdown: abort sessions, checkpoint.
  if (server_->WaitExit(30s) < 0) {
    server_->Signal(SIGQUIT);  // Immediate shutdown.
    server_->WaitExit(10s);
  }
}

void PgCluster::Restart() {
  Stop();
  if (!StartServer(port_)) {
    throw std::runtime_error("postgres did not start again:\n" + Log());
  }
}

std::vector<std::string> PgCluster::AsServerUser(
    std::vector<std::string> argv) const {
  if (user_.empty()) return argv;
  // setpriv and env both exec in place, so the child's pid stays the
  // server's. env -C: initdb needs a working directory the user can read.
  // If the test dies without stopping the server, the server quits too.
  const passwd* user = getpwnam(user_.c_str());
  std::vector<std::string> wrapped = {"/usr/bin/setpriv",
                                      "--reuid=" + std::to_string(user->pw_uid),
                                      "--regid=" + std::to_string(user->pw_gid),
                                      "--clear-groups",
                                      "--pdeathsig=QUIT",
                                      "--",
                                      "/usr/bin/env",
                                      "-C",
                                      dir_.path().string()};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

void PgCluster::RunToCompletion(const std::string& name,
                                const std::vector<std::string>& argv) {
  auto process =
      ChildProcess::Start(name, AsServerUser(argv), {"LC_ALL=C"}, dir_.path());
  int code = process->WaitExit(120s);
  if (code != 0) {
    throw std::runtime_error(name + " exited with " + std::to_string(code) +
                             ":\n" + process->Stdout() + process->Stderr());
  }
}

bool PgCluster::StartServer(int port) {
  const Options& options = options_;
  port_ = port;
  server_ = ChildProcess::Start(
      "postgres-" + std::to_string(++starts_),
      AsServerUser(
          {(bin_dir_ / "postgres").string(), "-D", data_dir_.string(), "-p",
           std::to_string(port_), "-c", "listen_addresses=127.0.0.1", "-k",
           (dir_.path() / "socket").string(), "-c",
           "max_prepared_transactions=" +
               std::to_string(options.max_prepared_transactions),
           "-c", "max_connections=" + std::to_string(options.max_connections)}),
      {"LC_ALL=C"}, dir_.path());
  const std::string conninfo = ConnInfo("postgres");
  bool up = WaitFor(
      [&] {
        return server_->HasExited() || PQping(conninfo.c_str()) == PQPING_OK;
      },
      60s);
  return up && !server_->HasExited();
}

std::string PgCluster::ConnInfo(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) +
         " dbname=" + database + " user=postgres connect_timeout=5";
}

void PgCluster::CreateDatabase(const std::string& database) {
  auto r = Query("postgres", "CREATE DATABASE \"" + database + "\"");
  if (!r.ok()) {
    throw std::runtime_error("cannot create database " + database + ": " +
                             r.status().ToString());
  }
}

absl::StatusOr<std::vector<std::vector<std::string>>> PgCluster::Query(
    const std::string& database, const std::string& sql) {
  absl::StatusOr<PgConn> conn = PgConnect(ConnInfo(database));
  if (!conn.ok()) return conn.status();
  absl::StatusOr<PgResult> result = PgExec(conn->get(), sql);
  if (!result.ok()) return result.status();
  std::vector<std::vector<std::string>> rows(PQntuples(result->get()));
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int j = 0; j < PQnfields(result->get()); ++j) {
      rows[i].push_back(PQgetvalue(result->get(), i, j));
    }
  }
  return rows;
}

std::vector<std::string> PgCluster::PreparedGids(const std::string& database) {
  auto rows = Query(database,
                    "SELECT gid FROM pg_prepared_xacts WHERE database = "
                    "current_database() ORDER BY gid");
  if (!rows.ok()) {
    throw std::runtime_error("cannot read pg_prepared_xacts: " +
                             rows.status().ToString());
  }
  std::vector<std::string> gids;
  for (const auto& row : *rows) gids.push_back(row[0]);
  return gids;
}

std::string PgCluster::Log() const {
  std::string log;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    if (entry.path().extension() == ".err" ||
        entry.path().extension() == ".out") {
      std::ifstream in(entry.path());
      std::stringstream ss;
      ss << in.rdbuf();
      log += "==== " + entry.path().filename().string() + "\n" + ss.str();
    }
  }
  return log;
}

}  // namespace baton::testing
