#include "coordinator/participant_registry.h"

#include <algorithm>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace baton {

void ParticipantRegistry::Attach(CommandStream* stream,
                                 const v1::Hello& hello) {
  absl::MutexLock lock(&mu_);
  int64_t now = timeline_->Now();
  sessions_[stream] = Session{hello, now, now, {}};
  for (const std::string& resource : hello.resources()) {
    by_resource_[resource].push_back(stream);
  }
  spdlog::info("participant {} ({}) attached serving {} resource(s)",
               hello.service(), hello.instance_id(), hello.resources_size());
}

std::vector<InFlightCommand> ParticipantRegistry::Detach(
    CommandStream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(stream);
  if (it == sessions_.end()) return {};
  for (const std::string& resource : it->second.hello.resources()) {
    auto& streams = by_resource_[resource];
    streams.erase(std::remove(streams.begin(), streams.end(), stream),
                  streams.end());
    if (streams.empty()) by_resource_.erase(resource);
  }
  std::vector<InFlightCommand> lost;
  for (auto& [id, command] : it->second.in_flight) lost.push_back(command);
  spdlog::info("participant {} ({}) detached with {} command(s) unanswered",
               it->second.hello.service(), it->second.hello.instance_id(),
               lost.size());
  sessions_.erase(it);
  return lost;
}

bool ParticipantRegistry::Answered(CommandStream* stream,
                                   const v1::BranchResult& result) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(stream);
  if (it == sessions_.end()) return false;
  it->second.last_seen_unix_ms = timeline_->Now();
  auto command = it->second.in_flight.find(result.command_id());
  if (command == it->second.in_flight.end() ||
      command->second.xid != result.xid() ||
      command->second.branch_id != result.branch_id() ||
      command->second.action != result.action()) {
    return false;
  }
  it->second.in_flight.erase(command);
  return true;
}

void ParticipantRegistry::Touch(CommandStream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(stream);
  if (it != sessions_.end()) it->second.last_seen_unix_ms = timeline_->Now();
}

bool ParticipantRegistry::TrySendLocked(CommandStream* stream,
                                        const v1::BranchCommand& command) {
  Session& session = sessions_[stream];
  session.in_flight[command.command_id()] = {command.command_id(),
                                             command.xid(), command.branch_id(),
                                             command.action()};
  if (stream->Write(command)) return true;
  session.in_flight.erase(command.command_id());
  return false;
}

bool ParticipantRegistry::Serves(const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  return by_resource_.contains(resource);
}

bool ParticipantRegistry::Send(const v1::BranchCommand& command,
                               const std::string& preferred_instance) {
  absl::MutexLock lock(&mu_);
  auto it = by_resource_.find(command.resource());
  if (it == by_resource_.end()) return false;
  const std::vector<CommandStream*>& streams = it->second;
  for (CommandStream* stream : streams) {
    if (sessions_[stream].hello.instance_id() == preferred_instance &&
        TrySendLocked(stream, command)) {
      return true;
    }
  }
  size_t start = round_robin_++;
  for (size_t i = 0; i < streams.size(); ++i) {
    if (TrySendLocked(streams[(start + i) % streams.size()], command)) {
      return true;
    }
  }
  return false;
}

std::vector<AttachedParticipant> ParticipantRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<AttachedParticipant> out;
  for (const auto& [stream, session] : sessions_) {
    out.push_back({session.hello, session.attached_unix_ms,
                   session.last_seen_unix_ms, session.in_flight.size()});
  }
  return out;
}

}  // namespace baton
