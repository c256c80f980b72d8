#ifndef BATON_COORDINATOR_TWO_PHASE_DRIVER_H_
#define BATON_COORDINATOR_TWO_PHASE_DRIVER_H_

#include <cstdint>

#include "common/log_summary.h"
#include "coordinator/protocol_driver.h"
#include "protocols/backoff.h"

namespace baton {

// Two-phase commit (XA) and TCC, which is two-phase commit whose phase one
// is the tries: branches register and report, the caller decides, and once
// the decision is durable every branch gets its commit or rollback until it
// answers done, with backoff between failed attempts.
class TwoPhaseDriver : public ProtocolDriver {
 public:
  struct Options {
    // Phase two unfinished this long after the decision needs attention
    // (retries go on).
    int64_t retry_window_ms = 10 * 60'000;
    // A command not answered within this counts as a failed attempt.
    int64_t command_timeout_ms = 30'000;
  };

  // `backoff` and `log_summary` must outlive the driver.
  TwoPhaseDriver(const Options& options, const Backoff* backoff,
                 LogSummary* log_summary);

  int64_t NextActionTime(const v1::Transaction& record) const override;
  std::string DurableKey(const v1::Transaction& record) const override;
  void Advance(LiveTransaction* t, int64_t now, Effects* fx) override;
  absl::Status Decide(v1::Transaction* record, bool commit,
                      const std::string& reason, int64_t now) override;
  absl::StatusOr<uint64_t> RegisterBranch(v1::Transaction* record,
                                          two_phase::NewBranch branch,
                                          int64_t now) override;
  absl::Status ReportBranch(v1::Transaction* record,
                            const v1::ReportBranchRequest& request,
                            int64_t now) override;
  void OnDurable(LiveTransaction* t, v1::GlobalStatus status, int64_t now,
                 Effects* fx) override;
  Release Prepare(const LiveTransaction& t, const Outgoing& o,
                  int64_t now) override;
  void OnResult(LiveTransaction* t, const v1::BranchResult& result, int64_t now,
                Effects* fx) override;
  void OnLost(LiveTransaction* t, uint64_t branch_id, int64_t now,
              Effects* fx) override;
  void OnAttached(LiveTransaction* t, const std::set<std::string>& resources,
                  int64_t now, Effects* fx) override;
  void OnInDoubt(LiveTransaction* t, uint64_t branch_id, int64_t now,
                 Effects* fx) override;
  void Adopt(LiveTransaction* t, int64_t now, Effects* fx) override;
  void Resume(LiveTransaction* t, int64_t now, Effects* fx) override;
  void OnDue(LiveTransaction* t, int64_t now, Effects* fx) override;
  void Kick(LiveTransaction* t, int64_t now, Effects* fx) override;
  uint64_t AddBacklog(
      const LiveTransaction& t, int64_t now,
      std::map<std::string, uint64_t>* by_resource) const override;

 private:
  // Queues the owed commands of branches for which `pick` holds.
  template <typename Pick>
  void QueueOwed(LiveTransaction* t, Effects* fx, Pick pick);
  void ExpireCommands(LiveTransaction* t, int64_t now, Effects* fx);

  const Options options_;
  const Backoff* const backoff_;
  LogSummary* const log_summary_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_TWO_PHASE_DRIVER_H_
