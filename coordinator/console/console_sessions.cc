#include "coordinator/console/console_sessions.h"

#include <algorithm>

#include "common/admin_token.h"

namespace baton {

ConsoleSessions::ConsoleSessions(Clock* clock, int64_t lifetime_ms,
                                 size_t max_sessions)
    : clock_(clock),
      lifetime_ms_(lifetime_ms),
      max_sessions_(std::max<size_t>(max_sessions, 1)) {}

absl::StatusOr<ConsoleSessions::Session> ConsoleSessions::Open(
    std::string admin_token) {
  absl::StatusOr<std::string> id = RandomHexToken();
  if (!id.ok()) return id.status();
  absl::StatusOr<std::string> csrf = RandomHexToken();
  if (!csrf.ok()) return csrf.status();
  const int64_t now = clock_->SteadyMs();
  Entry entry{Session{*id, *csrf, std::move(admin_token),
                      clock_->WallMs() + lifetime_ms_},
              now + lifetime_ms_};
  absl::MutexLock lock(&mu_);
  DropExpiredLocked(now);
  if (sessions_.size() >= max_sessions_) {
    auto soonest = std::min_element(
        sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
          return a.second.expires_steady_ms < b.second.expires_steady_ms;
        });
    sessions_.erase(soonest);
  }
  sessions_.emplace(*id, entry);
  return entry.session;
}

std::optional<ConsoleSessions::Session> ConsoleSessions::Find(
    std::string_view id) {
  absl::MutexLock lock(&mu_);
  DropExpiredLocked(clock_->SteadyMs());
  // A lookup's timing may tell how much of a guessed id matched some
  // prefix; with 256 random bits that is no help in guessing one.
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  return it->second.session;
}

void ConsoleSessions::Close(std::string_view id) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it != sessions_.end()) sessions_.erase(it);
}

void ConsoleSessions::DropExpiredLocked(int64_t now) {
  std::erase_if(sessions_, [now](const auto& entry) {
    return entry.second.expires_steady_ms <= now;
  });
}

}  // namespace baton
