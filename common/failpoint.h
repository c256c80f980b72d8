#ifndef BATON_COMMON_FAILPOINT_H_
#define BATON_COMMON_FAILPOINT_H_

#include <string_view>

#include "absl/status/status.h"

// Named fault points, compiled into every build and armed only by the
// environment, so crash tests kill real processes at exact instants:
//
//   BATON_FAILPOINTS="after_commit_decision=crash,before_branch_command=delay(200)"
//
// Actions:
//   crash          the process sends itself SIGKILL (as an operator's kill -9)
//   delay(MS)      sleep MS milliseconds, then continue
//   error          the point returns UNAVAILABLE to its caller
//   wait_file(PATH) block until the file PATH exists, then continue (a test
//                  holds a window open exactly as long as it needs)
//   N:ACTION       (e.g. "3:crash") act on the Nth hit only; earlier and
//                  later hits pass
//   N*ACTION       (e.g. "2*error") act on the first N hits, then pass
// Every point is listed in docs/FAILPOINTS.md.
namespace baton::failpoint {

// Returns OK unless the point is armed with "error". May not return at all
// (crash) or return late (delay). Thread-safe; costs one relaxed atomic load
// when no point is armed.
absl::Status Hit(std::string_view name);

// Whether BATON_FAILPOINTS names the point at all (whichever hits it acts
// on): for code that must shape its work so the point lands where it says.
bool Armed(std::string_view name);

// Re-reads BATON_FAILPOINTS. For tests in one process.
void TEST_Reload();

// Arms `spec` (BATON_FAILPOINTS' syntax) in this process for one scope, and
// disarms every point when it ends. For tests in one process.
class ScopedArmForTest {
 public:
  explicit ScopedArmForTest(const char* spec);
  ~ScopedArmForTest();
  ScopedArmForTest(const ScopedArmForTest&) = delete;
  ScopedArmForTest& operator=(const ScopedArmForTest&) = delete;
};

}  // namespace baton::failpoint

#endif  // BATON_COMMON_FAILPOINT_H_
