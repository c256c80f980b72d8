#ifndef BATON_COORDINATOR_CONSOLE_CONSOLE_SESSIONS_H_
#define BATON_COORDINATOR_CONSOLE_CONSOLE_SESSIONS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace baton {

// The console's signed-in operators, in memory: a restart signs everyone
// out. A session lasts `lifetime_ms` from sign-in, on the steady clock, and
// holds the admin token its operator gave, which the console's calls carry.
// Thread-safe.
class ConsoleSessions {
 public:
  struct Session {
    std::string id;          // The cookie's value: 64 hex digits.
    std::string csrf_token;  // Every state change must carry it.
    std::string admin_token;
    int64_t expires_unix_ms = 0;  // For the page to show.
  };

  // `clock` must outlive this object. At most `max_sessions` at once: a
  // sign-in beyond that ends the session closest to expiring.
  ConsoleSessions(Clock* clock, int64_t lifetime_ms, size_t max_sessions);

  // A new session for an operator who gave `admin_token`. INTERNAL only if
  // OpenSSL has no randomness.
  absl::StatusOr<Session> Open(std::string admin_token);
  // The session with cookie `id`, unless it expired or was closed.
  std::optional<Session> Find(std::string_view id);
  void Close(std::string_view id);

 private:
  struct Entry {
    Session session;
    int64_t expires_steady_ms;
  };
  void DropExpiredLocked(int64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const int64_t lifetime_ms_;
  const size_t max_sessions_;
  absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_COORDINATOR_CONSOLE_CONSOLE_SESSIONS_H_
