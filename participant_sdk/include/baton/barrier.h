#ifndef BATON_BARRIER_H_
#define BATON_BARRIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The barrier makes TCC hooks safe to write naively. It records each phase
// of each branch in the participant's own store, in the same atomic write as
// the hook's business changes, so that
//   - a repeated confirm or cancel is a no-op that reports success;
//   - a cancel that arrives before any try (an empty cancel) succeeds and
//     leaves a marker;
//   - a try that arrives after that cancel is refused;
//   - two racing cancels apply once.
// A try is recorded as started, durably, before its hook runs, so a try that
// failed half-way (say after an external call) still gets its cancel hook;
// unless the call says the try is local_only.
namespace baton {

// The store-specific local transaction a hook writes through. Each barrier
// implementation documents its own (LevelDbBarrier::Batch for LevelDB).
class LocalTransaction {
 public:
  virtual ~LocalTransaction() = default;
};

enum class TccPhase { kTry, kConfirm, kCancel };

// What the barrier knows of a branch's try when its cancel runs.
enum class TryState {
  kNone,       // No try ran (the cancel is empty; its hook is not called).
  kStarted,    // The try began but did not complete: it may have had
               // effects outside the store, or none.
  kCompleted,  // The try's hook succeeded and its writes are durable.
};

struct BarrierCall {
  std::string xid;
  uint64_t branch_id = 0;
  TccPhase phase = TccPhase::kTry;
  // For a try: its hook has no effect but its writes through the local
  // transaction. Such a try is not marked started ahead of its hook, since a
  // crash before its write leaves nothing to cancel; it is recorded, done, in
  // that write, which saves a synced write per try. Its cancel then sees
  // kStarted only if an earlier attempt made without the flag left a mark.
  bool local_only = false;
};

enum class BarrierResult {
  kRan,         // The hook ran and its writes are durable.
  kDuplicate,   // This phase already happened; the hook was not called.
  kEmptyCancel  // Cancel with no try: recorded, hook not called.
};

// The hook gets the local transaction and, for cancel, the try's state. An
// error aborts the local transaction: nothing of it is written.
using BarrierHook = std::function<absl::Status(LocalTransaction&, TryState)>;

// Where barrier records live. Implementations must be thread-safe.
class BarrierStore {
 public:
  virtual ~BarrierStore() = default;

  // Runs `hook` for `call` at most once, atomically with the record of it.
  // A try after a cancel of the same branch is FAILED_PRECONDITION; a hook's
  // error is returned as is.
  virtual absl::StatusOr<BarrierResult> Run(const BarrierCall& call,
                                            const BarrierHook& hook) = 0;

  // Branches whose try started but that were neither confirmed nor
  // cancelled: what the participant reports in doubt after a restart.
  virtual std::vector<std::pair<std::string, uint64_t>> Unresolved() = 0;

  // Forgets branches confirmed or cancelled before `cutoff_unix_ms`.
  // Returns how many branches were forgotten.
  virtual absl::StatusOr<size_t> PurgeResolvedBefore(
      int64_t cutoff_unix_ms) = 0;
};

}  // namespace baton

#endif  // BATON_BARRIER_H_
