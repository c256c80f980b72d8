#include "baton/saga.h"

#include "fmt/format.h"
#include "google/protobuf/util/json_util.h"
#include "participant_sdk/internal/rpc.h"
#include "protocols/saga.h"

namespace baton {
namespace {

void SetCall(const SagaCall& call, v1::SagaCall* out) {
  out->set_resource(call.resource);
  out->set_payload(call.payload);
}

absl::Status CheckResourcesKnown(const v1::SagaDefinition& definition,
                                 const std::set<std::string>& known) {
  for (const v1::SagaStep& step : definition.steps()) {
    for (const v1::SagaCall* call : {&step.action(), &step.compensation()}) {
      if (call->resource().empty() || known.contains(call->resource())) {
        continue;
      }
      return absl::InvalidArgumentError(
          fmt::format("step '{}' names resource '{}', which no service "
                      "serves",
                      step.name(), call->resource()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

SagaBuilder::StepRef& SagaBuilder::StepRef::After(
    const std::vector<std::string>& steps) {
  for (const std::string& s : steps) step_->add_depends_on(s);
  return *this;
}

SagaBuilder::StepRef& SagaBuilder::StepRef::Retry(const SagaRetry& retry) {
  v1::RetryPolicy* policy = step_->mutable_retry();
  policy->set_max_attempts(retry.max_attempts);
  policy->set_initial_backoff_ms(retry.initial_backoff.count());
  policy->set_multiplier(retry.multiplier);
  policy->set_max_backoff_ms(retry.max_backoff.count());
  return *this;
}

SagaBuilder::StepRef& SagaBuilder::StepRef::Timeout(
    std::chrono::milliseconds timeout) {
  step_->set_timeout_ms(timeout.count());
  return *this;
}

SagaBuilder::StepRef SagaBuilder::Step(const std::string& name,
                                       const SagaCall& action,
                                       const SagaCall& compensation) {
  v1::SagaStep* step = definition_.add_steps();
  step->set_name(name);
  SetCall(action, step->mutable_action());
  SetCall(compensation, step->mutable_compensation());
  return StepRef(step);
}

SagaBuilder& SagaBuilder::MaxParallel(uint32_t limit) {
  definition_.set_max_parallel(limit);
  return *this;
}

SagaBuilder& SagaBuilder::ForwardRecovery() {
  definition_.set_forward_recovery(true);
  return *this;
}

SagaBuilder& SagaBuilder::Timeout(std::chrono::milliseconds timeout) {
  timeout_ = timeout;
  return *this;
}

absl::StatusOr<v1::SagaDefinition> ParseSagaJson(
    const std::string& json, const std::set<std::string>* known_resources) {
  v1::SagaDefinition definition;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed =
      google::protobuf::util::JsonStringToMessage(json, &definition, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("saga JSON does not parse: {}", parsed.ToString()));
  }
  if (absl::Status s = saga::ValidateDefinition(definition); !s.ok()) {
    return s;
  }
  if (known_resources != nullptr) {
    if (absl::Status s = CheckResourcesKnown(definition, *known_resources);
        !s.ok()) {
      return s;
    }
  }
  return definition;
}

absl::StatusOr<v1::SubmitSagaResponse> SubmitSaga(
    TransactionClient& client, const SagaBuilder& saga,
    const SubmitOptions& options) {
  v1::SubmitSagaRequest request;
  request.set_name(saga.name());
  request.set_timeout_ms(static_cast<uint32_t>(saga.timeout().count()));
  *request.mutable_definition() = saga.definition();
  // Unlike Begin's, a fresh key is never drawn again when its node does
  // not answer: the saga it may have started runs its steps by itself.
  request.set_request_id(options.request_id.empty() ? client.NewIdempotencyKey()
                                                    : options.request_id);
  request.set_wait(options.wait);
  request.set_wait_timeout_ms(
      static_cast<uint32_t>(options.wait_timeout.count()));
  // Checked here too, so a bad flow fails before a round trip.
  if (absl::Status s = saga::ValidateDefinition(request.definition());
      !s.ok()) {
    return s;
  }
  return client.SubmitSagaRaw(request);
}

}  // namespace baton
