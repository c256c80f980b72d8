#include "recovery/in_doubt.h"

#include "fmt/format.h"
#include "protocols/transitions.h"
#include "protocols/two_phase.h"
#include "spdlog/spdlog.h"

namespace baton {

StoredInDoubtResolver::StoredInDoubtResolver(TransactionStore* store,
                                             CommandSink* sink,
                                             LogSummary* log_summary)
    : store_(store), sink_(sink), log_summary_(log_summary) {}

void StoredInDoubtResolver::Resolve(const std::string& instance_id,
                                    std::vector<v1::InDoubtBranch> branches) {
  executor_.Post([this, instance_id, branches = std::move(branches)] {
    for (const v1::InDoubtBranch& branch : branches) {
      ResolveNow(instance_id, branch);
    }
  });
}

void StoredInDoubtResolver::ResolveNow(const std::string& instance_id,
                                       const v1::InDoubtBranch& branch) {
  v1::Transaction record;
  absl::Status s = store_->Get(branch.xid(), &record);
  if (!s.ok() && !absl::IsNotFound(s)) {
    spdlog::error("xid={} in-doubt lookup failed: {}", branch.xid(),
                  s.ToString());
    return;
  }
  // Presumed abort: no record means no commit decision was ever durable.
  bool commit = s.ok() && IsCommitSide(record.status());
  log_summary_->Log(spdlog::level::info, "in doubt at " + instance_id,
                    fmt::format("xid={} branch {} in doubt at {}: {}",
                                branch.xid(), branch.branch_id(), instance_id,
                                s.ok() ? GlobalStatusName(record.status())
                                       : "unknown, presumed aborted"));
  v1::BranchCommand command;
  command.set_command_id(next_command_id_++);
  command.set_xid(branch.xid());
  command.set_branch_id(branch.branch_id());
  command.set_resource(branch.resource());
  command.set_action(commit ? v1::BRANCH_ACTION_COMMIT
                            : v1::BRANCH_ACTION_ROLLBACK);
  command.set_attempt(1);
  const v1::Branch* known =
      s.ok() ? two_phase::FindBranch(&record, branch.branch_id()) : nullptr;
  if (known != nullptr) {
    command.set_type(known->type());
    command.set_application_data(known->application_data());
  }
  sink_->Send(command, instance_id);
}

}  // namespace baton
