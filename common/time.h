#ifndef BATON_COMMON_TIME_H_
#define BATON_COMMON_TIME_H_

#include <chrono>
#include <cstdint>

namespace baton {

// Wall-clock milliseconds since the Unix epoch: what the store records, so
// deadlines survive restarts.
inline int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace baton

#endif  // BATON_COMMON_TIME_H_
