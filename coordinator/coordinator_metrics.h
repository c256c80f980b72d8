#ifndef BATON_COORDINATOR_COORDINATOR_METRICS_H_
#define BATON_COORDINATOR_COORDINATOR_METRICS_H_

#include <string>

#include "baton/v1/participant_service.pb.h"
#include "baton/v1/types.pb.h"
#include "common/metrics.h"

namespace baton {

// The coordinator's counters and histograms, one set per process (as with
// Prometheus' default registry). Gauges are read from live state at scrape
// time instead; see Server.
struct CoordinatorMetrics {
  CoordinatorMetrics();

  // {protocol}
  metrics::Family<metrics::Counter> begun;
  // {protocol, outcome}: outcome "committed" or "rolled_back".
  metrics::Family<metrics::Counter> finished;
  // {protocol, outcome}: begin to terminal.
  metrics::Family<metrics::Histogram> transaction_seconds;
  // {resource, action}: commands sent; answers other than done (and
  // commands never answered in time).
  metrics::Family<metrics::Counter> phase_two_attempts;
  metrics::Family<metrics::Counter> phase_two_failures;
  // {method}: TransactionService calls, receipt to answer.
  metrics::Family<metrics::Histogram> request_seconds;
  // Change batches per synced store write, and the write's duration.
  metrics::Family<metrics::Histogram> store_group_batches;
  metrics::Family<metrics::Histogram> store_sync_seconds;
  // Synced writes that failed (each stops acknowledgements until restart).
  metrics::Family<metrics::Counter> store_write_failures;
  // {direction}: calls ("in") or answers ("out") per Pipeline message.
  metrics::Family<metrics::Histogram> pipeline_message_calls;
  // {action}
  metrics::Family<metrics::Counter> operator_actions;
  // Branch results that answered no command outstanding on their stream.
  metrics::Family<metrics::Counter> participant_results_ignored;
  metrics::Family<metrics::Counter> illegal_status_moves;
  // {method, reason}: calls and streams refused before they did anything
  // (an admin call without the token, a resource the policy does not
  // grant).
  metrics::Family<metrics::Counter> refused_calls;

  // Everything above, in the text format.
  std::string Render() const;
};

CoordinatorMetrics& Metrics();

// Label values.
std::string ProtocolLabel(v1::Protocol protocol);
std::string ActionLabel(v1::BranchAction action);

}  // namespace baton

#endif  // BATON_COORDINATOR_COORDINATOR_METRICS_H_
