#include "common/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace baton {

using namespace std::chrono_literals;

namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TempDir::TempDir() {
  std::random_device rd;
  path_ =
      std::filesystem::temp_directory_path() /
      ("baton-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  if (std::getenv("BATON_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

std::unique_ptr<ChildProcess> ChildProcess::Start(
    const std::string& name, const std::vector<std::string>& argv,
    const std::vector<std::string>& env, const std::filesystem::path& log_dir) {
  std::unique_ptr<ChildProcess> child(new ChildProcess);
  child->name_ = name;
  child->out_ = log_dir / (name + ".out");
  child->err_ = log_dir / (name + ".err");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, child->out_.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, child->err_.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    // The parent's fault points are not the child's.
    if (std::string(*e).rfind("BATON_FAILPOINTS=", 0) == 0) continue;
    env_strings.emplace_back(*e);
  }
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int rc = posix_spawn(&child->pid_, argv[0].c_str(), &actions, nullptr,
                       args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("cannot start " + argv[0] + ": " +
                             std::to_string(rc));
  }
  return child;
}

ChildProcess::~ChildProcess() {
  if (!HasExited()) {
    Signal(SIGKILL);
    WaitExit(10s);
  }
}

void ChildProcess::Signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

bool ChildProcess::HasExited() {
  if (exited_) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exited_ = true;
    status_ = status;
  }
  return exited_;
}

int ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (!WaitFor([this] { return HasExited(); }, timeout)) return -1;
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

std::string ChildProcess::Stdout() const { return ReadFile(out_); }
std::string ChildProcess::Stderr() const { return ReadFile(err_); }

bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);  // Poll interval, not synchronisation.
  }
}

std::string BinPath(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name)
      .string();
}

int WaitForPortFile(const std::filesystem::path& path,
                    std::chrono::milliseconds timeout) {
  int port = 0;
  WaitFor(
      [&] {
        std::ifstream in(path);
        return static_cast<bool>(in >> port) && port > 0;
      },
      timeout);
  return port;
}

}  // namespace baton
