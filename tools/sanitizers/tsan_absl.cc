// ThreadSanitizer cannot see the ordering absl::Mutex gives: Debian's
// libabsl is not built with TSan, and its lock words are uninstrumented
// atomics. Without help every ABSL_GUARDED_BY member would be reported as
// racing. The TSan build (cmake/sanitizers.cmake) links every executable
// with -Wl,--wrap for each entry point below, and these wrappers tell TSan
// what the real ones do: taking a mutex acquires it, letting it go
// (unlocking, or waiting) releases it.
//
// Only calls from our own objects are wrapped; libabsl's internal calls and
// grpc's use of its own locks stay invisible, which is what tsan.supp's
// entries are for.
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/mutex.h"

namespace {

void Acquired(const void* mu) { __tsan_acquire(const_cast<void*>(mu)); }
void Releasing(const void* mu) { __tsan_release(const_cast<void*>(mu)); }

}  // namespace

// The mangled names are libabsl's (inline namespace debian3); a build
// against another abseil fails to link rather than silently misreport.
#define BATON_WRAP(ret, sym, params, args, before, after) \
  extern "C" ret __real_##sym params;                     \
  extern "C" ret __wrap_##sym params {                    \
    before;                                               \
    ret result = __real_##sym args;                       \
    after;                                                \
    return result;                                        \
  }
#define BATON_WRAP_VOID(sym, params, args, before, after) \
  extern "C" void __real_##sym params;                    \
  extern "C" void __wrap_##sym params {                   \
    before;                                               \
    __real_##sym args;                                    \
    after;                                                \
  }

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Time;

BATON_WRAP_VOID(_ZN4absl7debian35Mutex4LockEv, (Mutex * mu), (mu), ,
                Acquired(mu))
BATON_WRAP_VOID(_ZN4absl7debian35Mutex6UnlockEv, (Mutex * mu), (mu),
                Releasing(mu), )
BATON_WRAP(bool, _ZN4absl7debian35Mutex7TryLockEv, (Mutex * mu), (mu), ,
           if (result) Acquired(mu))
BATON_WRAP_VOID(_ZN4absl7debian35Mutex10ReaderLockEv, (Mutex * mu), (mu), ,
                Acquired(mu))
BATON_WRAP_VOID(_ZN4absl7debian35Mutex12ReaderUnlockEv, (Mutex * mu), (mu),
                Releasing(mu), )
BATON_WRAP(bool, _ZN4absl7debian35Mutex13ReaderTryLockEv, (Mutex * mu), (mu), ,
           if (result) Acquired(mu))
BATON_WRAP_VOID(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE,
                (Mutex * mu, const Condition& c), (mu, c), Releasing(mu),
                Acquired(mu))
BATON_WRAP(
    bool,
    _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
    (Mutex * mu, const Condition& c, Duration d), (mu, c, d), Releasing(mu),
    Acquired(mu))
BATON_WRAP(
    bool, _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
    (Mutex * mu, const Condition& c, Time t), (mu, c, t), Releasing(mu),
    Acquired(mu))
BATON_WRAP_VOID(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE,
                (Mutex * mu, const Condition& c), (mu, c), , Acquired(mu))
BATON_WRAP_VOID(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE,
                (CondVar * cv, Mutex* mu), (cv, mu), Releasing(mu),
                Acquired(mu))
BATON_WRAP(bool,
           _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
           (CondVar * cv, Mutex* mu, Duration d), (cv, mu, d), Releasing(mu),
           Acquired(mu))
BATON_WRAP(bool,
           _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE,
           (CondVar * cv, Mutex* mu, Time t), (cv, mu, t), Releasing(mu),
           Acquired(mu))
// ReleasableMutexLock keeps its mutex as its only member.
BATON_WRAP_VOID(_ZN4absl7debian319ReleasableMutexLock7ReleaseEv,
                (absl::ReleasableMutexLock * lock), (lock),
                Releasing(*reinterpret_cast<Mutex**>(lock)), )
