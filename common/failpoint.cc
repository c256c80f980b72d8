#include "common/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace baton::failpoint {
namespace {

enum class Action { kCrash, kDelay, kError, kWaitFile };

struct Point {
  Action action = Action::kCrash;
  int delay_ms = 0;
  std::string file;    // kWaitFile
  int only_hit = 0;    // 0: every hit.
  int first_hits = 0;  // 0: every hit; else only hits 1..first_hits.
  int hits = 0;
};

struct Registry {
  absl::Mutex mu;
  std::map<std::string, Point, std::less<>> points ABSL_GUARDED_BY(mu);
  std::atomic<bool> any_armed{false};
};

Registry& GetRegistry() {
  static Registry* registry = new Registry;
  return *registry;
}

bool ParseAction(std::string text, Point* point) {
  if (size_t star = text.find('*'); star != std::string::npos) {
    point->first_hits = std::atoi(text.substr(0, star).c_str());
    if (point->first_hits <= 0) return false;
    text = text.substr(star + 1);
  } else if (size_t colon = text.find(':'); colon != std::string::npos) {
    point->only_hit = std::atoi(text.substr(0, colon).c_str());
    if (point->only_hit <= 0) return false;
    text = text.substr(colon + 1);
  }
  if (text == "crash") {
    point->action = Action::kCrash;
  } else if (text == "error") {
    point->action = Action::kError;
  } else if (text.rfind("delay(", 0) == 0 && text.back() == ')') {
    point->action = Action::kDelay;
    point->delay_ms = std::atoi(text.substr(6, text.size() - 7).c_str());
  } else if (text.rfind("wait_file(", 0) == 0 && text.back() == ')' &&
             text.size() > 11) {
    point->action = Action::kWaitFile;
    point->file = text.substr(10, text.size() - 11);
  } else {
    return false;
  }
  return true;
}

void Load(Registry& registry) {
  absl::MutexLock lock(&registry.mu);
  registry.points.clear();
  const char* env = std::getenv("BATON_FAILPOINTS");
  std::string spec = env == nullptr ? "" : env;
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(start, end - start);
    start = end + 1;
    size_t eq = item.find('=');
    Point point;
    if (eq == std::string::npos || !ParseAction(item.substr(eq + 1), &point)) {
      spdlog::error("ignoring malformed BATON_FAILPOINTS entry '{}'", item);
      continue;
    }
    spdlog::warn("failpoint {} armed: {}", item.substr(0, eq), item);
    registry.points[item.substr(0, eq)] = point;
  }
  registry.any_armed.store(!registry.points.empty());
}

Registry& LoadedRegistry() {
  static std::once_flag once;
  Registry& registry = GetRegistry();
  std::call_once(once, [&] { Load(registry); });
  return registry;
}

}  // namespace

absl::Status Hit(std::string_view name) {
  Registry& registry = LoadedRegistry();
  if (!registry.any_armed.load(std::memory_order_relaxed)) {
    return absl::OkStatus();
  }
  Point point;
  {
    absl::MutexLock lock(&registry.mu);
    auto it = registry.points.find(name);
    if (it == registry.points.end()) return absl::OkStatus();
    ++it->second.hits;
    if (it->second.only_hit != 0 && it->second.hits != it->second.only_hit) {
      return absl::OkStatus();
    }
    if (it->second.first_hits != 0 && it->second.hits > it->second.first_hits) {
      return absl::OkStatus();
    }
    point = it->second;
  }
  switch (point.action) {
    case Action::kCrash:
      spdlog::critical("failpoint {}: crashing", name);
      spdlog::default_logger()->flush();
      raise(SIGKILL);
      _exit(137);
    case Action::kDelay:
      std::this_thread::sleep_for(std::chrono::milliseconds(point.delay_ms));
      return absl::OkStatus();
    case Action::kError:
      spdlog::warn("failpoint {}: injecting an error", name);
      return absl::UnavailableError("failpoint " + std::string(name) +
                                    " injected an error");
    case Action::kWaitFile:
      spdlog::warn("failpoint {}: waiting for {}", name, point.file);
      while (!std::filesystem::exists(point.file)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

bool Armed(std::string_view name) {
  Registry& registry = LoadedRegistry();
  if (!registry.any_armed.load(std::memory_order_relaxed)) return false;
  absl::MutexLock lock(&registry.mu);
  return registry.points.contains(name);
}

void TEST_Reload() {
  LoadedRegistry();
  Load(GetRegistry());
}

ScopedArmForTest::ScopedArmForTest(const char* spec) {
  setenv("BATON_FAILPOINTS", spec, 1);
  TEST_Reload();
}

ScopedArmForTest::~ScopedArmForTest() {
  unsetenv("BATON_FAILPOINTS");
  TEST_Reload();
}

}  // namespace baton::failpoint
