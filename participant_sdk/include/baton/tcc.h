#ifndef BATON_TCC_H_
#define BATON_TCC_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "baton/barrier.h"
#include "baton/participant.h"

// Try/confirm/cancel. A service writes three hooks; the SDK runs each behind
// a barrier (barrier.h), so duplicates, empty cancels and late tries are
// harmless. See docs/TCC.md for a whole service.
//
//   class Inventory : public baton::TccResource { ... };
//   Inventory inventory(db);
//   baton::LevelDbBarrier barrier(db);
//   participant->AddTccResource("inventory", &inventory, &barrier);
//   participant->Start();
//   // In the handler of a call that carries an xid:
//   auto branch = participant->Try(xid, "inventory", {{"sku", "widget"},
//                                                     {"units", "2"}});
namespace baton {

// A branch's action context: what its try recorded for confirm and cancel.
using ActionValues = std::map<std::string, std::string>;

struct TccContext {
  std::string xid;
  uint64_t branch_id = 0;
  std::string resource;
  ActionValues action;
  // For Cancel: whether the try completed, or only started.
  TryState try_state = TryState::kNone;
  // Delivery attempt of confirm or cancel, from 1 (0 in Try).
  uint32_t attempt = 0;
};

class TccResource {
 public:
  virtual ~TccResource() = default;
  // Reserves. A non-OK status fails the branch, so the transaction cancels.
  virtual absl::Status Try(const TccContext& branch,
                           LocalTransaction& local) = 0;
  // True if Try's only effects are its writes through `local`: no call to
  // another service, no file, no message sent. The barrier then records the
  // try in the same synced write as those effects, instead of first marking
  // it started in a synced write of its own (BarrierCall::local_only); a try
  // that failed or died then left nothing, and its Cancel is not called.
  // Keep false for a try that acts outside `local`, so that one dying
  // half-way still gets its Cancel, with TryState::kStarted.
  virtual bool TryIsLocal() const { return false; }
  // Makes the reservation permanent. Runs once per branch (the barrier drops
  // repeats); Failed() parks the transaction for an operator.
  virtual PhaseTwoResult Confirm(const TccContext& branch,
                                 LocalTransaction& local) = 0;
  // Releases what the try reserved. Never called for a branch whose try did
  // not start; with TryState::kStarted the try may have done nothing.
  virtual PhaseTwoResult Cancel(const TccContext& branch,
                                LocalTransaction& local) = 0;
};

}  // namespace baton

#endif  // BATON_TCC_H_
