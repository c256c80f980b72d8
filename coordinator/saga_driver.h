#ifndef BATON_COORDINATOR_SAGA_DRIVER_H_
#define BATON_COORDINATOR_SAGA_DRIVER_H_

#include <cstdint>
#include <string>

#include "common/log_summary.h"
#include "coordinator/command_sink.h"
#include "coordinator/protocol_driver.h"

namespace baton {

// Meta key prefix mapping a saga's request_id to its xid.
inline constexpr char kSagaRequestPrefix[] = "saga-request/";

// Sagas: the coordinator runs the steps itself, in the order of their
// dependencies, compensating the ones that ran when one fails for good.
//
// A step's command goes out only once the record saying it was dispatched
// is durable (the table's outbox), so a crash can never forget that a step
// may have run: it would then skip the step's compensation.
class SagaDriver : public ProtocolDriver {
 public:
  struct Options {
    // Unfinished this long after compensation (or the last step) began:
    // needs attention.
    int64_t retry_window_ms = 10 * 60'000;
  };

  // `sink` and `log_summary` must outlive the driver.
  SagaDriver(const Options& options, const CommandSink* sink,
             LogSummary* log_summary);

  // Whether `existing`, started with the same request_id, is the saga
  // `request` asks for.
  static bool SameSaga(const v1::Transaction& existing,
                       const v1::SubmitSagaRequest& request);

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
  const Options options_;
  const CommandSink* const sink_;
  LogSummary* const log_summary_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_SAGA_DRIVER_H_
