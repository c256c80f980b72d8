#ifndef BATON_SAGA_H_
#define BATON_SAGA_H_

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "baton/barrier.h"
#include "baton/client.h"
#include "baton/participant.h"
#include "baton/v1/saga.pb.h"

// Sagas: the coordinator runs a flow of steps, each an action on some
// service's resource with a compensation that undoes it, and compensates in
// reverse dependency order when a step fails for good. See docs/SAGA.md.
//
// The caller declares and submits the whole flow:
//
//   baton::SagaBuilder trip("book-trip");
//   trip.Step("flight", {"flights", booking}, {"flights", booking});
//   trip.Step("hotel", {"hotels", booking}, {"hotels", booking});
//   trip.Step("pay", {"payments", charge}, {"payments", charge})
//       .After({"flight", "hotel"})
//       .Retry({.max_attempts = 3});
//   auto outcome = baton::SubmitSaga(client, trip, {.wait = true});
//
// Each service serves its steps with a SagaResource behind a barrier:
//
//   Flights flights(db);
//   baton::LevelDbBarrier barrier(db);
//   participant->AddSagaResource("flights", &flights, &barrier);
namespace baton {

// One call of a step: the resource that serves it and its payload.
struct SagaCall {
  std::string resource;
  std::string payload;
};

struct SagaRetry {
  uint32_t max_attempts = 1;  // Attempts of the action, including the first.
  std::chrono::milliseconds initial_backoff{100};
  double multiplier = 2;
  std::chrono::milliseconds max_backoff{30'000};
};

// Declares a saga. Step names are unique; a step runs once every step it
// comes After succeeded; steps with no order between them run concurrently.
class SagaBuilder {
 public:
  class StepRef {
   public:
    StepRef& After(const std::vector<std::string>& steps);
    StepRef& Retry(const SagaRetry& retry);
    // How long one attempt may take before it counts as failed (it may
    // still have run, so it will be compensated if the saga rolls back).
    StepRef& Timeout(std::chrono::milliseconds timeout);

   private:
    friend class SagaBuilder;
    explicit StepRef(v1::SagaStep* step) : step_(step) {}
    v1::SagaStep* step_;
  };

  explicit SagaBuilder(std::string name) : name_(std::move(name)) {}
  // Starts from a whole definition, e.g. one ParseSagaJson read.
  SagaBuilder(std::string name, v1::SagaDefinition definition)
      : name_(std::move(name)), definition_(std::move(definition)) {}

  // Adds a step. An empty compensation resource means the action's; an
  // entirely empty compensation ({}) means the action's resource and
  // payload, sent to Compensate.
  StepRef Step(const std::string& name, const SagaCall& action,
               const SagaCall& compensation);

  // At most this many steps (or compensations) in flight at once; 0: no
  // limit.
  SagaBuilder& MaxParallel(uint32_t limit);
  // Never compensate: retry failed steps until they succeed or an operator
  // steps in.
  SagaBuilder& ForwardRecovery();
  // The saga compensates if it has not finished forward by then.
  SagaBuilder& Timeout(std::chrono::milliseconds timeout);

  const std::string& name() const { return name_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const v1::SagaDefinition& definition() const { return definition_; }

 private:
  std::string name_;
  std::chrono::milliseconds timeout_{0};
  v1::SagaDefinition definition_;
};

// Reads a saga definition from JSON (the SagaDefinition message of
// proto/baton/v1/saga.proto in protobuf's JSON form) and checks it: unknown
// fields, a missing step, a cycle, bad policies; and, given
// `known_resources`, a resource nobody serves. INVALID_ARGUMENT says where.
absl::StatusOr<v1::SagaDefinition> ParseSagaJson(
    const std::string& json, const std::set<std::string>* known_resources);

struct SubmitOptions {
  // Answer only when the saga finished or needs attention (or wait_timeout
  // ran out: then the status is still running).
  bool wait = false;
  std::chrono::milliseconds wait_timeout{30'000};
  // Idempotency key; empty picks a fresh one. Resubmitting with the same key
  // returns the saga the first submit started.
  std::string request_id;
};

// Submits `saga` through `client`. The response carries the xid, the status
// and, if it rolled back or needs attention, the reason naming the step.
absl::StatusOr<v1::SubmitSagaResponse> SubmitSaga(TransactionClient& client,
                                                  const SagaBuilder& saga,
                                                  const SubmitOptions& options);

// What a step's handler is told.
struct SagaStepContext {
  std::string xid;
  uint32_t step = 0;  // Its index in the definition.
  std::string resource;
  std::string payload;
  // For Compensate: whether the action completed, or only started (it failed
  // or its outcome is unknown; it may have had effects outside the store).
  TryState action_state = TryState::kNone;
  uint32_t attempt = 0;  // Delivery attempt, from 1.
};

// A service's side of saga steps. Act and Compensate run behind the
// barrier: Act at most once successfully per step, Compensate at most once,
// never for a step whose action never started, and a late Act after its
// compensation is refused. Their writes go through `local`, committed with
// the barrier record. kRetry asks for another attempt; kFailed from Act fails
// the step for good (the saga compensates), from Compensate it needs an
// operator.
class SagaResource {
 public:
  virtual ~SagaResource() = default;
  virtual PhaseTwoResult Act(const SagaStepContext& step,
                             LocalTransaction& local) = 0;
  // True if Act's only effects are its writes through `local` (see
  // TccResource::TryIsLocal): one synced write per action instead of two,
  // and an action that failed or died left nothing, so Compensate is not
  // called for it.
  virtual bool ActIsLocal() const { return false; }
  virtual PhaseTwoResult Compensate(const SagaStepContext& step,
                                    LocalTransaction& local) = 0;
};

}  // namespace baton

#endif  // BATON_SAGA_H_
