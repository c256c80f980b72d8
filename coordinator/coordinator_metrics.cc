#include "coordinator/coordinator_metrics.h"

#include "protocols/transitions.h"

namespace baton {

CoordinatorMetrics::CoordinatorMetrics()
    : begun("baton_transactions_begun_total", "Global transactions begun.",
            {"protocol"}),
      finished("baton_transactions_finished_total",
               "Global transactions that reached a terminal status.",
               {"protocol", "outcome"}),
      transaction_seconds("baton_transaction_duration_seconds",
                          "Begin to terminal status, end to end.",
                          {"protocol", "outcome"}, metrics::LatencyBuckets()),
      phase_two_attempts("baton_phase_two_attempts_total",
                         "Phase-two commands sent to participants.",
                         {"resource", "action"}),
      phase_two_failures(
          "baton_phase_two_failures_total",
          "Phase-two commands answered retry or failed, or not answered in "
          "time.",
          {"resource", "action"}),
      request_seconds("baton_request_duration_seconds",
                      "TransactionService calls, receipt to answer.",
                      {"method"}, metrics::LatencyBuckets()),
      store_group_batches("baton_store_write_batches",
                          "Change batches carried by one synced store write "
                          "(group commit).",
                          {}, metrics::SizeBuckets()),
      store_sync_seconds("baton_store_sync_duration_seconds",
                         "Duration of one synced store write.", {},
                         metrics::LatencyBuckets()),
      store_write_failures(
          "baton_store_write_failures_total",
          "Synced store writes that failed; after one, batond acknowledges "
          "nothing until it is restarted with the cause fixed.",
          {}),
      pipeline_message_calls(
          "baton_pipeline_message_calls",
          "Calls (direction in) or answers (out) carried by one Pipeline "
          "stream message.",
          {"direction"}, metrics::SizeBuckets()),
      operator_actions("baton_operator_actions_total",
                       "Operator actions applied through the admin API.",
                       {"action"}),
      participant_results_ignored(
          "baton_participant_results_ignored_total",
          "Branch results ignored because they answer no command sent on "
          "their stream and still unanswered (wrong id, xid, branch or "
          "action, or a duplicate).",
          {}),
      illegal_status_moves(
          "baton_illegal_status_moves_total",
          "Status moves the status graph refused where Baton's own checks "
          "should have made them legal: a bug; the log names the xid.",
          {}),
      refused_calls("baton_refused_calls_total",
                    "Calls and streams refused by authentication or the "
                    "authorization policy, by method and reason.",
                    {"method", "reason"}) {}

std::string CoordinatorMetrics::Render() const {
  std::string out;
  begun.Render(&out);
  finished.Render(&out);
  transaction_seconds.Render(&out);
  phase_two_attempts.Render(&out);
  phase_two_failures.Render(&out);
  request_seconds.Render(&out);
  store_group_batches.Render(&out);
  store_sync_seconds.Render(&out);
  store_write_failures.Render(&out);
  pipeline_message_calls.Render(&out);
  operator_actions.Render(&out);
  participant_results_ignored.Render(&out);
  illegal_status_moves.Render(&out);
  refused_calls.Render(&out);
  return out;
}

CoordinatorMetrics& Metrics() {
  static CoordinatorMetrics* metrics = new CoordinatorMetrics();
  return *metrics;
}

std::string ProtocolLabel(v1::Protocol protocol) {
  std::string_view name = ProtocolShortName(protocol);
  return name.empty() ? "unspecified" : std::string(name);
}

std::string ActionLabel(v1::BranchAction action) {
  return action == v1::BRANCH_ACTION_COMMIT ? "commit" : "rollback";
}

}  // namespace baton
