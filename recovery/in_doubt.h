#ifndef BATON_RECOVERY_IN_DOUBT_H_
#define BATON_RECOVERY_IN_DOUBT_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/log_summary.h"
#include "common/serial_executor.h"
#include "coordinator/command_sink.h"
#include "coordinator/recovery_hooks.h"
#include "coordinator/store.h"

namespace baton {

// Answers in-doubt branches whose transaction is no longer in memory (it
// finished, or never reached the store) from the store, on a thread of its
// own: presumed abort, so no record means rollback. The branch's stored data
// goes along with the command (TCC hooks need their action context). The
// answer to the command finds no live transaction and is dropped; a lost
// command is asked for again at the participant's next attach.
//
// Thread-safe.
class StoredInDoubtResolver : public StoredInDoubt {
 public:
  // All pointers must outlive this object.
  StoredInDoubtResolver(TransactionStore* store, CommandSink* sink,
                        LogSummary* log_summary);

  void Resolve(const std::string& instance_id,
               std::vector<v1::InDoubtBranch> branches) override;

  // Returns once every Resolve so far is answered.
  void Drain() { executor_.Drain(); }

 private:
  void ResolveNow(const std::string& instance_id,
                  const v1::InDoubtBranch& branch);

  TransactionStore* const store_;
  CommandSink* const sink_;
  LogSummary* const log_summary_;
  // Apart from the tables' ids (shard index << 48, counting up).
  std::atomic<uint64_t> next_command_id_{uint64_t{1} << 62};
  SerialExecutor executor_{"baton-in-doubt"};
};

}  // namespace baton

#endif  // BATON_RECOVERY_IN_DOUBT_H_
