#ifndef BATON_COORDINATOR_PARTICIPANT_REGISTRY_H_
#define BATON_COORDINATOR_PARTICIPANT_REGISTRY_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/participant_service.pb.h"
#include "common/timeline.h"
#include "coordinator/command_sink.h"

namespace baton {

// A participant stream that can carry commands.
class CommandStream {
 public:
  virtual ~CommandStream() = default;
  // Queues the command for writing; false if the stream is closing.
  virtual bool Write(const v1::BranchCommand& command) = 0;
};

struct InFlightCommand {
  uint64_t command_id;
  std::string xid;
  uint64_t branch_id;
  v1::BranchAction action;
};

// Instants are readings of the registry's timeline (the manager's).
struct AttachedParticipant {
  v1::Hello hello;
  int64_t attached_unix_ms;
  int64_t last_seen_unix_ms;
  size_t in_flight;
};

// The attached participant streams, by resource, and the commands each has
// been handed but not answered. Any live stream of a resource may take a
// command for it; the registering instance is preferred. Thread-safe.
class ParticipantRegistry : public CommandSink {
 public:
  // `timeline` must outlive this object.
  explicit ParticipantRegistry(Timeline* timeline) : timeline_(timeline) {}

  // `stream` must stay valid until Detach(stream) returns.
  void Attach(CommandStream* stream, const v1::Hello& hello);
  // Forgets the stream and returns the commands it never answered.
  std::vector<InFlightCommand> Detach(CommandStream* stream);
  // Takes `result` as the answer to a command this stream was handed and
  // has not answered yet, with the same id, xid, branch and action; false
  // (changing nothing) if there is no such command, since then the result
  // answers nothing the coordinator asked of this stream.
  bool Answered(CommandStream* stream, const v1::BranchResult& result);
  // Records that the stream sent something.
  void Touch(CommandStream* stream);

  bool Serves(const std::string& resource) const override;
  bool Send(const v1::BranchCommand& command,
            const std::string& preferred_instance) override;

  std::vector<AttachedParticipant> List() const;

 private:
  struct Session {
    v1::Hello hello;
    int64_t attached_unix_ms;
    int64_t last_seen_unix_ms;
    std::unordered_map<uint64_t, InFlightCommand> in_flight;
  };

  bool TrySendLocked(CommandStream* stream, const v1::BranchCommand& command)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Timeline* const timeline_;
  mutable absl::Mutex mu_;
  std::unordered_map<CommandStream*, Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::vector<CommandStream*>> by_resource_
      ABSL_GUARDED_BY(mu_);
  size_t round_robin_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_PARTICIPANT_REGISTRY_H_
