#ifndef BATON_COMMON_HAPPENS_BEFORE_H_
#define BATON_COMMON_HAPPENS_BEFORE_H_

// Orderings that only libgrpc knows, told to ThreadSanitizer. Debian's
// libgrpc is not built with TSan, so the order between starting a gRPC
// operation and its callback on another thread is invisible to it. The TSan
// build sees call operations through tools/sanitizers/tsan_grpc.cc; what
// that cannot see is marked here: HappensBefore(key) just before handing
// `key` over, HappensAfter(key) first thing on the other side. Two such
// hand-offs: a grpc::Alarm's callback, and a reactor's OnDone, which gRPC
// runs only after every other reaction returned (see EndOfReaction). In any
// other build these are empty.
//
// Mark only real hand-offs: an annotation that is not one hides a race.

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BATON_TSAN 1
#endif
#endif

#ifdef BATON_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace baton {

inline void HappensBefore(const void* key) {
#ifdef BATON_TSAN
  __tsan_release(const_cast<void*>(key));
#else
  (void)key;
#endif
}

inline void HappensAfter(const void* key) {
#ifdef BATON_TSAN
  __tsan_acquire(const_cast<void*>(key));
#else
  (void)key;
#endif
}

// Declared first thing in a gRPC reactor's constructor and in each of its
// reactions but OnDone, whose first statement is HappensAfter(this).
class EndOfReaction {
 public:
  explicit EndOfReaction(const void* reactor) : reactor_(reactor) {}
  EndOfReaction(const EndOfReaction&) = delete;
  EndOfReaction& operator=(const EndOfReaction&) = delete;
  ~EndOfReaction() { HappensBefore(reactor_); }

 private:
  const void* const reactor_;
};

}  // namespace baton

#endif  // BATON_COMMON_HAPPENS_BEFORE_H_
