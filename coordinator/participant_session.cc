#include "coordinator/participant_session.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/happens_before.h"
#include "common/limits.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/message_size.h"
#include "coordinator/request_validation.h"
#include "coordinator/wire.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace baton {

namespace {

// A queued command's size, as Write measured it (and protobuf cached):
// the queue is accounted without measuring each command again.
size_t CommandBytes(const v1::CoordinatorMessage& message) {
  return message.has_command() ? message.command().GetCachedSize() : 0;
}

}  // namespace

ParticipantSession::ParticipantSession(
    grpc::CallbackServerContext* context, ParticipantRegistry* registry,
    TransactionManager* manager, uint32_t node_id, const AuthzPolicy* policy,
    Peer peer, const StreamLimits& limits, StreamGate::Slot slot)
    : context_(context),
      registry_(registry),
      manager_(manager),
      node_id_(node_id),
      policy_(policy),
      peer_(std::move(peer)),
      limits_(limits),
      slot_(std::move(slot)),
      max_message_bytes_(PeerReceiveBytes(0)) {
  EndOfReaction end(this);
  Ref();
  HappensBefore(this);
  hello_timer_.Set(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(limits_.hello_timeout_ms),
                   [this](bool fired) {
                     HappensAfter(this);
                     if (fired) HelloTimedOut();
                     Unref();
                   });
  StartRead(&incoming_);
}

void ParticipantSession::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void ParticipantSession::HelloTimedOut() {
  absl::MutexLock lock(&mu_);
  if (greeted_ || closing_) return;
  std::string message = fmt::format(
      "no Hello within {} ms of opening Attach: a participant's first "
      "message must be its Hello",
      limits_.hello_timeout_ms);
  CountRefusal("Attach", "no_hello", peer_.Describe() + ": " + message,
               manager_->log_summary());
  CloseLocked(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, message));
}

bool ParticipantSession::Write(const v1::BranchCommand& command) {
  absl::MutexLock lock(&mu_);
  if (closing_) return false;
  v1::CoordinatorMessage message;
  *message.mutable_command() = command;
  // Measured once here; protobuf caches it for CommandBytes and the write.
  if (outbox_command_bytes_ + message.command().ByteSizeLong() >
      limits_.participant_queue_bytes) {
    auto stalled = std::chrono::steady_clock::now() - last_progress_;
    if (stalled < std::chrono::milliseconds(limits_.participant_stall_ms)) {
      return false;  // Full for now: another stream or a retry takes it.
    }
    std::string reason = fmt::format(
        "{} ({}) is not reading its commands: {} bytes queued, the limit is "
        "{}, and it took nothing for {} ms; its stream is cut and its "
        "commands wait for another instance or its return",
        instance_id_, peer_.Describe(), outbox_command_bytes_,
        limits_.participant_queue_bytes,
        std::chrono::duration_cast<std::chrono::milliseconds>(stalled).count());
    CountRefusal("Attach", "not_reading", reason, manager_->log_summary());
    cutting_ = true;
    CloseLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, reason));
    Ref();
    HappensBefore(this);
    cut_timer_.Set(std::chrono::system_clock::now(), [this](bool) {
      HappensAfter(this);
      CutOff();
      Unref();
    });
    return false;
  }
  QueueLocked(std::move(message));
  return true;
}

void ParticipantSession::CutOff() {
  context_->TryCancel();
  absl::MutexLock lock(&mu_);
  cutting_ = false;
  if (!writing_ && !finished_) {
    finished_ = true;
    Finish(final_status_);
  }
}

void ParticipantSession::QueueLocked(v1::CoordinatorMessage message) {
  if (!writing_) last_progress_ = std::chrono::steady_clock::now();
  outbox_command_bytes_ += CommandBytes(message);
  outbox_.push_back(std::move(message));
  WriteNextLocked();
}

void ParticipantSession::WriteNextLocked() {
  if (writing_ || outbox_.empty()) return;
  v1::CoordinatorMessage message;
  if (!batches_ || !outbox_.front().has_command() || outbox_.size() == 1) {
    message = std::move(outbox_.front());
    outbox_command_bytes_ -= CommandBytes(message);
    outbox_.pop_front();
  } else {
    // Commands queued behind a write in flight leave together, as many as
    // fit what the participant reads (each may carry 64 KiB of data).
    v1::BranchCommands* batch = message.mutable_commands();
    size_t bytes = 0;
    while (!outbox_.empty() && outbox_.front().has_command() &&
           batch->commands_size() < kMaxCommandsPerMessage) {
      size_t size = outbox_.front().command().ByteSizeLong() +
                    limits::kRepeatedElementFramingBytes;
      if (batch->commands_size() > 0 &&
          bytes + size > max_message_bytes_ - kMessageOverheadBytes) {
        break;
      }
      bytes += size;
      outbox_command_bytes_ -= CommandBytes(outbox_.front());
      batch->add_commands()->Swap(outbox_.front().mutable_command());
      outbox_.pop_front();
    }
  }
  wire::Serialize(message, &sending_);
  writing_ = true;
  StartWrite(&sending_);
}
void ParticipantSession::CloseLocked(const grpc::Status& status) {
  if (closing_) return;
  closing_ = true;
  final_status_ = status;
  if (!writing_ && !finished_ && !cutting_) {
    finished_ = true;
    Finish(final_status_);
  }
}

void ParticipantSession::OnWriteDone(bool ok) {
  EndOfReaction end(this);
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (ok) last_progress_ = std::chrono::steady_clock::now();
  if (!ok)
    CloseLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
  if (closing_) {
    if (!finished_ && !cutting_) {
      finished_ = true;
      Finish(final_status_);
    }
    return;
  }
  WriteNextLocked();
}

void ParticipantSession::OnReadDone(bool ok) {
  EndOfReaction end(this);
  if (!ok) {
    absl::MutexLock lock(&mu_);
    CloseLocked(grpc::Status::OK);
    return;
  }
  if (++messages_read_ == 1) {
    absl::MutexLock lock(&mu_);
    if (closing_) return;  // The Hello timer closed the stream first.
    greeted_ = true;
  }
  if (!wire::Parse(incoming_, &message_)) {
    absl::MutexLock lock(&mu_);
    CloseLocked(wire::Unparseable<v1::ParticipantMessage>(
        incoming_, fmt::format("message {} on Attach", messages_read_)));
    return;
  }
  if (!attached_) {
    if (!message_.has_hello()) {
      absl::MutexLock lock(&mu_);
      CloseLocked(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               "the first message on Attach must be a Hello"));
      return;
    }
    HandleHello(message_.hello());
  } else if (message_.has_result()) {
    HandleResult(message_.mutable_result());
  } else if (message_.has_results()) {
    for (v1::BranchResult& result :
         *message_.mutable_results()->mutable_results()) {
      HandleResult(&result);
    }
  } else if (message_.has_in_doubt()) {
    HandleInDoubt(message_.in_doubt());
  }
  absl::MutexLock lock(&mu_);
  if (!closing_) StartRead(&incoming_);
}

void ParticipantSession::HandleHello(const v1::Hello& hello) {
  if (absl::Status s = Validate(hello); !s.ok()) {
    absl::MutexLock lock(&mu_);
    CloseLocked(ToGrpcStatus(s));
    return;
  }
  if (policy_ != nullptr) {
    absl::Status allowed = policy_->MayServeAll(
        peer_, {hello.resources().begin(), hello.resources().end()});
    if (!allowed.ok()) {
      CountRefusal("Attach", "resource_not_granted", allowed.ToString(),
                   manager_->log_summary());
      absl::MutexLock lock(&mu_);
      CloseLocked(ToGrpcStatus(allowed));
      return;
    }
  }
  hello_timer_.Cancel();
  {
    absl::MutexLock lock(&mu_);
    v1::CoordinatorMessage welcome;
    welcome.mutable_welcome()->set_coordinator_node(node_id_);
    welcome.mutable_welcome()->set_reads_result_batches(true);
    batches_ = hello.reads_command_batches();
    max_message_bytes_ = PeerReceiveBytes(hello.max_message_bytes());
    QueueLocked(std::move(welcome));
  }
  attached_ = true;
  instance_id_ = hello.instance_id();
  registry_->Attach(this, hello);
  std::vector<std::string> resources(hello.resources().begin(),
                                     hello.resources().end());
  manager_->OnResourcesAttached(resources);
}

void ParticipantSession::HandleResult(v1::BranchResult* result) {
  if (absl::Status s = Validate(*result); !s.ok()) {
    spdlog::warn("dropping malformed branch result: {}", s.ToString());
    return;
  }
  if (result->message().size() > limits::kMaxReasonBytes) {
    *result->mutable_message() = limits::TruncatedReason(result->message());
  }
  // Only the stream a command went to may answer it, and only once: a
  // result naming anything else would let any stream settle any branch.
  if (!registry_->Answered(this, *result)) {
    static metrics::Counter* const ignored =
        Metrics().participant_results_ignored.With({});
    ignored->Add();
    manager_->log_summary()->Log(
        spdlog::level::warn, "ignored results from " + instance_id_,
        fmt::format("ignoring a result from {} for xid={} branch {} ({}, "
                    "command {}): it answers no command sent on its stream "
                    "and still unanswered",
                    instance_id_, result->xid(), result->branch_id(),
                    ActionLabel(result->action()), result->command_id()));
    return;
  }
  manager_->OnCommandResult(*result);
}

void ParticipantSession::HandleInDoubt(const v1::InDoubt& in_doubt) {
  if (absl::Status s = Validate(in_doubt); !s.ok()) {
    spdlog::warn("dropping malformed in-doubt list from {}: {}", instance_id_,
                 s.ToString());
    return;
  }
  registry_->Touch(this);
  std::vector<v1::InDoubtBranch> branches;
  for (const v1::InDoubtBranch& b : in_doubt.branches()) {
    // An outcome is news only to a peer that may serve the resource.
    if (policy_ != nullptr && !policy_->MayServe(peer_, b.resource())) {
      CountRefusal("InDoubt", "resource_not_granted",
                   fmt::format("{} reported resource '{}' in doubt, which "
                               "the policy does not grant it; ignored",
                               peer_.Describe(), b.resource()),
                   manager_->log_summary());
      continue;
    }
    branches.push_back(b);
  }
  manager_->ResolveInDoubt(instance_id_, branches);
}

void ParticipantSession::OnDone() {
  HappensAfter(this);
  for (const InFlightCommand& c : registry_->Detach(this)) {
    manager_->OnCommandLost(c.xid, c.branch_id, c.command_id);
  }
  hello_timer_.Cancel();
  Unref();
}

}  // namespace baton
