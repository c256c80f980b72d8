#ifndef BATON_PROTOCOLS_BACKOFF_H_
#define BATON_PROTOCOLS_BACKOFF_H_

#include <cstdint>
#include <functional>

namespace baton {

// How long a failed phase-two command waits before its next attempt: the
// initial delay doubled per attempt up to the cap, times a jitter factor in
// [0.8, 1.2) so that retries of one outage do not arrive together.
//
// Thread-safe if the jitter source is.
class Backoff {
 public:
  // Returns a factor in [0.8, 1.2); tests inject a fixed one.
  using Jitter = std::function<double()>;

  // A null jitter draws from a per-thread random generator.
  Backoff(int64_t initial_ms, int64_t max_ms, Jitter jitter = nullptr);

  // The delay after the attempts-th failure (0 for the first), at least 1.
  int64_t DelayMs(uint32_t attempts) const;

  int64_t max_ms() const { return max_ms_; }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  Jitter jitter_;
};

}  // namespace baton

#endif  // BATON_PROTOCOLS_BACKOFF_H_
