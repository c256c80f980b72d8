// ThreadSanitizer cannot see the ordering absl::Mutex gives: Debian's
// libabsl is not built with TSan, and its lock words are uninstrumented
// atomics. Without help every ABSL_GUARDED_BY member would be reported as
// racing. The TSan build (cmake/sanitizers.cmake) makes every executable
// define and export each entry point below, so that our code's calls and
// libgrpc's alike reach these first, and they tell TSan what the real ones
// do: taking a mutex acquires it, letting it go (unlocking, or waiting)
// releases it.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"

namespace {

void Acquired(const void* mu) { __tsan_acquire(const_cast<void*>(mu)); }
void Releasing(const void* mu) { __tsan_release(const_cast<void*>(mu)); }

// absl evaluates a waiter's Condition while holding the mutex, but in
// whichever thread happens to hold it then: the waiter before it sleeps, or
// an unlocking thread inside Unlock. Neither is a call TSan sees, so the
// wrapped Await* and LockWhen evaluate their condition through this, which
// brackets every evaluation with the mutex's acquire and release.
struct HeldCondition {
  const absl::Condition* inner;
  const absl::Mutex* mu;

  static bool Eval(HeldCondition* held) {
    Acquired(held->mu);
    bool result = held->inner->Eval();
    Releasing(held->mu);
    return result;
  }
};

}  // namespace

// The mangled names are libabsl's (inline namespace debian3); a build
// against another abseil fails to link rather than silently misreport. Each
// definition takes the place of libabsl's for the whole process, libgrpc's
// locks included, and calls the real one it found with dlsym.
void* RealSymbol(const char* name) {
  void* real = dlsym(RTLD_NEXT, name);
  if (real == nullptr) {
    std::fprintf(stderr, "tsan_absl: libabsl has no %s\n", name);
    std::abort();
  }
  return real;
}

#define BATON_WRAP(ret, sym, params, args, before, after)                  \
  extern "C" ret sym params {                                              \
    static auto* real = reinterpret_cast<ret(*) params>(RealSymbol(#sym)); \
    before;                                                                \
    ret result = real args;                                                \
    after;                                                                 \
    return result;                                                         \
  }
#define BATON_WRAP_VOID(sym, params, args, before, after)                   \
  extern "C" void sym params {                                              \
    static auto* real = reinterpret_cast<void(*) params>(RealSymbol(#sym)); \
    before;                                                                 \
    real args;                                                              \
    after;                                                                  \
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
// In the Await* and LockWhen wrappers, `held` and `wrapped` stand in for the
// caller's condition (see HeldCondition).
#define BATON_HOLD(c)           \
  HeldCondition held{&(c), mu}; \
  Condition wrapped(&HeldCondition::Eval, &held)

BATON_WRAP_VOID(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE,
                (Mutex * mu, const Condition& c), (mu, wrapped), BATON_HOLD(c);
                Releasing(mu), Acquired(mu))
BATON_WRAP(
    bool,
    _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
    (Mutex * mu, const Condition& c, Duration d), (mu, wrapped, d),
    BATON_HOLD(c);
    Releasing(mu), Acquired(mu))
BATON_WRAP(
    bool, _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
    (Mutex * mu, const Condition& c, Time t), (mu, wrapped, t), BATON_HOLD(c);
    Releasing(mu), Acquired(mu))
BATON_WRAP_VOID(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE,
                (Mutex * mu, const Condition& c), (mu, wrapped), BATON_HOLD(c),
                Acquired(mu))
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
