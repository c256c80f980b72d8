#include "protocols/backoff.h"

#include <algorithm>
#include <random>

namespace baton {
namespace {

double RandomJitter() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return jitter(rng);
}

}  // namespace

Backoff::Backoff(int64_t initial_ms, int64_t max_ms, Jitter jitter)
    : initial_ms_(initial_ms),
      max_ms_(max_ms),
      jitter_(jitter ? std::move(jitter) : Jitter(&RandomJitter)) {}

int64_t Backoff::DelayMs(uint32_t attempts) const {
  int64_t delay = initial_ms_;
  for (uint32_t i = 0; i < attempts && delay < max_ms_; ++i) delay *= 2;
  delay = std::min(delay, max_ms_);
  return std::max<int64_t>(1, static_cast<int64_t>(delay * jitter_()));
}

}  // namespace baton
