// ThreadSanitizer cannot see how libgrpc orders a call operation before its
// completion: Debian's libgrpc is not built with TSan. Without help, every
// reactor callback (and gRPC's own header code around it) would be reported
// as racing with the thread that started the operation. The TSan build
// (cmake/sanitizers.cmake) exports these definitions from every executable,
// so libgrpc++'s calls into libgrpc reach them first: starting a batch
// releases its tag, and a completion queue handing the tag back acquires
// it. That is the order gRPC guarantees. libgrpc's executor hands work
// (a server reactor's OnDone and OnCancel) to its threads under gpr_mu
// locks, so those are told to TSan the same way.
#include <dlfcn.h>
#include <grpc/grpc.h>
#include <grpc/support/sync.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

namespace {

template <typename Function>
Function* Real(Function*, const char* name) {
  void* real = dlsym(RTLD_NEXT, name);
  if (real == nullptr) {
    std::fprintf(stderr, "tsan_grpc: libgrpc has no %s\n", name);
    std::abort();
  }
  return reinterpret_cast<Function*>(real);
}

void Acquired(const grpc_event& event) {
  if (event.type == GRPC_OP_COMPLETE) __tsan_acquire(event.tag);
}

}  // namespace

extern "C" grpc_call_error grpc_call_start_batch(grpc_call* call,
                                                 const grpc_op* ops,
                                                 size_t nops, void* tag,
                                                 void* reserved) {
  static auto* real = Real(&grpc_call_start_batch, "grpc_call_start_batch");
  __tsan_release(tag);
  return real(call, ops, nops, tag, reserved);
}

extern "C" grpc_event grpc_completion_queue_next(grpc_completion_queue* cq,
                                                 gpr_timespec deadline,
                                                 void* reserved) {
  static auto* real =
      Real(&grpc_completion_queue_next, "grpc_completion_queue_next");
  grpc_event event = real(cq, deadline, reserved);
  Acquired(event);
  return event;
}

extern "C" grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq,
                                                  void* tag,
                                                  gpr_timespec deadline,
                                                  void* reserved) {
  static auto* real =
      Real(&grpc_completion_queue_pluck, "grpc_completion_queue_pluck");
  grpc_event event = real(cq, tag, deadline, reserved);
  Acquired(event);
  return event;
}

extern "C" void gpr_mu_lock(gpr_mu* mu) {
  static auto* real = Real(&gpr_mu_lock, "gpr_mu_lock");
  real(mu);
  __tsan_acquire(mu);
}

extern "C" int gpr_mu_trylock(gpr_mu* mu) {
  static auto* real = Real(&gpr_mu_trylock, "gpr_mu_trylock");
  int locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}

extern "C" void gpr_mu_unlock(gpr_mu* mu) {
  static auto* real = Real(&gpr_mu_unlock, "gpr_mu_unlock");
  __tsan_release(mu);
  real(mu);
}

extern "C" int gpr_cv_wait(gpr_cv* cv, gpr_mu* mu, gpr_timespec deadline) {
  static auto* real = Real(&gpr_cv_wait, "gpr_cv_wait");
  __tsan_release(mu);
  int timed_out = real(cv, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}
