#ifndef BATON_PROTOCOLS_SAGA_DEFINITION_H_
#define BATON_PROTOCOLS_SAGA_DEFINITION_H_

#include <vector>

#include "baton/v1/saga.pb.h"

// A saga's definition as the state machine (saga.cc) reads it: defaults and
// the dependency graph. ValidateDefinition, in saga.h, is defined beside
// these, in saga_definition.cc. Internal to protocols/.
namespace baton::saga {

// For each step, the indexes of the steps it depends on, and of the steps
// that depend on it.
struct Graph {
  std::vector<std::vector<int>> dependencies;
  std::vector<std::vector<int>> dependents;
};

// Assumes a valid definition (every dependency names a step).
Graph BuildGraph(const v1::SagaDefinition& definition);

// Fills what a valid step left unset: the compensation (the action's own
// call, if empty), the retry policy's defaults and the timeout.
void FillDefaults(v1::SagaStep* step);

}  // namespace baton::saga

#endif  // BATON_PROTOCOLS_SAGA_DEFINITION_H_
