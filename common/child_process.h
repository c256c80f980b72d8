#ifndef BATON_COMMON_CHILD_PROCESS_H_
#define BATON_COMMON_CHILD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

// For tools and tests that run real processes: temp dirs, child processes
// with their output captured to files, and waiting on conditions with
// deadlines (never on bare sleeps).
namespace baton {

// A fresh directory under the system temp dir, removed with its contents on
// destruction (unless BATON_KEEP_TEST_DIRS is set, for post-mortems).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A child process. Its stdout and stderr go to <log_dir>/<name>.out/.err.
// The destructor kills it with SIGKILL if it is still running, and reaps it.
class ChildProcess {
 public:
  // `argv[0]` is a path. `env` entries (NAME=VALUE) are added to the
  // inherited environment.
  static std::unique_ptr<ChildProcess> Start(
      const std::string& name, const std::vector<std::string>& argv,
      const std::vector<std::string>& env,
      const std::filesystem::path& log_dir);
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  void Signal(int sig);
  // True once the process has exited (reaping it).
  bool HasExited();
  // Waits for exit until `timeout`; returns the exit code, 128+signal if it
  // was killed, or -1 if it is still running.
  int WaitExit(std::chrono::milliseconds timeout);
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  ChildProcess() = default;
  std::string name_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  std::filesystem::path out_, err_;
};

// Polls `condition` every few milliseconds until it holds (true) or
// `timeout` passes (false).
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout);

// The path of an executable built beside the running test (build/bin/).
std::string BinPath(const std::string& name);

// Waits for a port file written by a server started with --port-file and
// returns the port, or 0 on timeout.
int WaitForPortFile(const std::filesystem::path& path,
                    std::chrono::milliseconds timeout);

}  // namespace baton

#endif  // BATON_COMMON_CHILD_PROCESS_H_
