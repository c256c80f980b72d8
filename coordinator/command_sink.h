#ifndef BATON_COORDINATOR_COMMAND_SINK_H_
#define BATON_COORDINATOR_COMMAND_SINK_H_

#include <string>

#include "baton/v1/participant_service.pb.h"

namespace baton {

// Where the shards' tables send phase-two commands: the attached
// participants. Send runs under a table's lock: implementations must not
// call back into the manager or a table from
// Send.
class CommandSink {
 public:
  virtual ~CommandSink() = default;

  // Queues `command` on a live participant session serving its resource,
  // preferring the instance `preferred_instance`. Returns false if no
  // session serves the resource. A command that was queued is answered by a
  // result or reported lost when its session ends.
  virtual bool Send(const v1::BranchCommand& command,
                    const std::string& preferred_instance) = 0;

  // Whether some live session serves `resource` now.
  virtual bool Serves(const std::string& resource) const = 0;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_COMMAND_SINK_H_
