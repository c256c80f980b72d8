#include "protocols/saga_definition.h"

#include <algorithm>
#include <map>
#include <string>
#include <string_view>

#include "common/limits.h"
#include "fmt/format.h"
#include "protocols/saga.h"

namespace baton::saga {
namespace {

constexpr int64_t kDefaultInitialBackoffMs = 100;
constexpr double kDefaultMultiplier = 2;
constexpr int64_t kDefaultMaxBackoffMs = 30'000;
constexpr int64_t kDefaultTimeoutMs = 30'000;

v1::RetryPolicy WithDefaults(v1::RetryPolicy policy) {
  if (policy.max_attempts() == 0) policy.set_max_attempts(1);
  if (policy.initial_backoff_ms() == 0)
    policy.set_initial_backoff_ms(kDefaultInitialBackoffMs);
  if (policy.multiplier() == 0) policy.set_multiplier(kDefaultMultiplier);
  if (policy.max_backoff_ms() == 0) {
    policy.set_max_backoff_ms(
        std::max(kDefaultMaxBackoffMs, policy.initial_backoff_ms()));
  }
  return policy;
}

// "step 'pay'", or "step 3" while the name itself is in question.
std::string Label(const v1::SagaStep& step, int index) {
  if (step.name().empty() || step.name().size() > kMaxStepNameBytes)
    return fmt::format("step {}", index);
  return fmt::format("step '{}'", step.name());
}

absl::Status Invalid(const std::string& label, std::string_view problem) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", label, problem));
}

absl::Status ValidateCall(const std::string& label, std::string_view what,
                          const v1::SagaCall& call, bool resource_required) {
  if (resource_required && call.resource().empty())
    return Invalid(label, fmt::format("{} has no resource", what));
  if (call.resource().size() > limits::kMaxResourceBytes) {
    return Invalid(
        label, fmt::format("{} resource is {} bytes, over {}", what,
                           call.resource().size(), limits::kMaxResourceBytes));
  }
  if (call.payload().size() > limits::kMaxApplicationDataBytes) {
    return Invalid(label, fmt::format("{} payload is {} bytes, over {}", what,
                                      call.payload().size(),
                                      limits::kMaxApplicationDataBytes));
  }
  return absl::OkStatus();
}

absl::Status ValidateTiming(const std::string& label, std::string_view what,
                            int64_t ms) {
  if (ms < 0) return Invalid(label, fmt::format("{} {} is negative", what, ms));
  if (ms > limits::kMaxTimeoutMs) {
    return Invalid(label, fmt::format("{} {} is over {}", what, ms,
                                      limits::kMaxTimeoutMs));
  }
  return absl::OkStatus();
}

absl::Status ValidatePolicy(const std::string& label,
                            const v1::RetryPolicy& raw) {
  if (raw.max_attempts() > kMaxAttemptsLimit) {
    return Invalid(label, fmt::format("max_attempts {} is over {}",
                                      raw.max_attempts(), kMaxAttemptsLimit));
  }
  // Written so that NaN fails too.
  if (!(raw.multiplier() == 0 ||
        (raw.multiplier() >= 1 && raw.multiplier() <= kMaxMultiplier))) {
    return Invalid(label, fmt::format("retry multiplier {} is outside [1, {}]",
                                      raw.multiplier(), kMaxMultiplier));
  }
  absl::Status s =
      ValidateTiming(label, "initial_backoff_ms", raw.initial_backoff_ms());
  if (s.ok()) s = ValidateTiming(label, "max_backoff_ms", raw.max_backoff_ms());
  if (!s.ok()) return s;
  v1::RetryPolicy policy = WithDefaults(raw);
  if (policy.max_backoff_ms() < policy.initial_backoff_ms()) {
    return Invalid(label, fmt::format("max_backoff_ms {} is below "
                                      "initial_backoff_ms {}",
                                      policy.max_backoff_ms(),
                                      policy.initial_backoff_ms()));
  }
  return absl::OkStatus();
}

// Everything about one step that does not involve the others.
absl::Status ValidateStep(const v1::SagaStep& step, int index) {
  std::string label = Label(step, index);
  if (step.name().empty()) return Invalid(label, "has no name");
  if (step.name().size() > kMaxStepNameBytes) {
    return Invalid(label, fmt::format("name is {} bytes, over {}",
                                      step.name().size(), kMaxStepNameBytes));
  }
  absl::Status s = ValidateCall(label, "action", step.action(), true);
  if (s.ok())
    s = ValidateCall(label, "compensation", step.compensation(), false);
  if (s.ok()) s = ValidatePolicy(label, step.retry());
  if (s.ok()) s = ValidateTiming(label, "timeout_ms", step.timeout_ms());
  return s;
}

using NameIndex = std::map<std::string_view, int>;

NameIndex IndexNames(const v1::SagaDefinition& definition) {
  NameIndex index;
  for (int i = 0; i < definition.steps_size(); ++i)
    index.emplace(definition.steps(i).name(), i);
  return index;
}

absl::Status ValidateNamesAndDependencies(
    const v1::SagaDefinition& definition) {
  NameIndex names;
  for (int i = 0; i < definition.steps_size(); ++i) {
    const std::string& name = definition.steps(i).name();
    if (!names.emplace(name, i).second)
      return Invalid(Label(definition.steps(i), i), "appears twice");
  }
  for (int i = 0; i < definition.steps_size(); ++i) {
    const v1::SagaStep& step = definition.steps(i);
    std::string label = Label(step, i);
    for (int d = 0; d < step.depends_on_size(); ++d) {
      const std::string& dep = step.depends_on(d);
      if (dep == step.name()) return Invalid(label, "depends on itself");
      if (!names.contains(dep))
        return Invalid(label, fmt::format("depends on unknown step '{}'", dep));
      auto earlier = step.depends_on().begin() + d;
      if (std::find(step.depends_on().begin(), earlier, dep) != earlier)
        return Invalid(label, fmt::format("lists '{}' twice", dep));
    }
  }
  return absl::OkStatus();
}

enum class Mark { kUnvisited, kOnPath, kDone };

// Depth-first search from `step`. On finding a cycle fills `cycle` with the
// steps on it, first step repeated at the end, and returns true.
bool FindCycleFrom(int step, const Graph& graph, std::vector<Mark>* marks,
                   std::vector<int>* path, std::vector<int>* cycle) {
  (*marks)[step] = Mark::kOnPath;
  path->push_back(step);
  for (int dep : graph.dependencies[step]) {
    if ((*marks)[dep] == Mark::kOnPath) {
      auto start = std::find(path->begin(), path->end(), dep);
      cycle->assign(start, path->end());
      cycle->push_back(dep);
      return true;
    }
    if ((*marks)[dep] == Mark::kUnvisited &&
        FindCycleFrom(dep, graph, marks, path, cycle))
      return true;
  }
  path->pop_back();
  (*marks)[step] = Mark::kDone;
  return false;
}

absl::Status ValidateAcyclic(const v1::SagaDefinition& definition) {
  Graph graph = BuildGraph(definition);
  std::vector<Mark> marks(definition.steps_size(), Mark::kUnvisited);
  for (int i = 0; i < definition.steps_size(); ++i) {
    std::vector<int> path, cycle;
    if (marks[i] != Mark::kUnvisited ||
        !FindCycleFrom(i, graph, &marks, &path, &cycle))
      continue;
    std::string steps;
    for (int s : cycle) {
      steps += fmt::format("{}'{}'", steps.empty() ? "" : " -> ",
                           definition.steps(s).name());
    }
    return absl::InvalidArgumentError(fmt::format(
        "steps depend on each other in a cycle: {} (each needs the next)",
        steps));
  }
  return absl::OkStatus();
}

absl::Status ValidateSize(const v1::SagaDefinition& definition) {
  if (definition.steps_size() == 0)
    return absl::InvalidArgumentError("saga has no steps");
  if (definition.steps_size() > kMaxSteps) {
    return absl::InvalidArgumentError(fmt::format(
        "saga has {} steps, over {}", definition.steps_size(), kMaxSteps));
  }
  size_t payload_bytes = 0;
  for (const v1::SagaStep& step : definition.steps()) {
    payload_bytes +=
        step.action().payload().size() + step.compensation().payload().size();
  }
  if (payload_bytes > limits::kMaxTransactionDataBytes) {
    return absl::InvalidArgumentError(
        fmt::format("saga payloads total {} bytes, over {}", payload_bytes,
                    limits::kMaxTransactionDataBytes));
  }
  return absl::OkStatus();
}

}  // namespace

void FillDefaults(v1::SagaStep* step) {
  // Most undos need the same business data as the action (which booking to
  // release), so an empty compensation is the action's call itself.
  if (step->compensation().resource().empty() &&
      step->compensation().payload().empty()) {
    *step->mutable_compensation() = step->action();
  }
  if (step->compensation().resource().empty())
    step->mutable_compensation()->set_resource(step->action().resource());
  *step->mutable_retry() = WithDefaults(step->retry());
  if (step->timeout_ms() == 0) step->set_timeout_ms(kDefaultTimeoutMs);
}

Graph BuildGraph(const v1::SagaDefinition& definition) {
  NameIndex names = IndexNames(definition);
  Graph graph;
  graph.dependencies.resize(definition.steps_size());
  graph.dependents.resize(definition.steps_size());
  for (int i = 0; i < definition.steps_size(); ++i) {
    for (const std::string& name : definition.steps(i).depends_on()) {
      auto it = names.find(name);
      if (it == names.end()) continue;
      graph.dependencies[i].push_back(it->second);
      graph.dependents[it->second].push_back(i);
    }
  }
  return graph;
}

absl::Status ValidateDefinition(const v1::SagaDefinition& definition) {
  absl::Status s = ValidateSize(definition);
  for (int i = 0; s.ok() && i < definition.steps_size(); ++i)
    s = ValidateStep(definition.steps(i), i);
  if (s.ok()) s = ValidateNamesAndDependencies(definition);
  if (s.ok()) s = ValidateAcyclic(definition);
  return s;
}

}  // namespace baton::saga
