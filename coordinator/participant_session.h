#ifndef BATON_COORDINATOR_PARTICIPANT_SESSION_H_
#define BATON_COORDINATOR_PARTICIPANT_SESSION_H_

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/participant_service.grpc.pb.h"
#include "coordinator/authz.h"
#include "coordinator/participant_registry.h"
#include "coordinator/stream_limits.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// The coordinator's end of one Attach stream, on gRPC's raw callback API
// (it parses messages itself; see wire.h): no thread waits on it. The first
// message must be a Hello; after it the session is in the registry and
// carries commands out and results in, never sending a message larger than
// the Hello said the participant reads. A message that does not parse ends
// the stream with INVALID_ARGUMENT. A stream silent past
// limits.hello_timeout_ms ends with DEADLINE_EXCEEDED; one whose queued
// commands fill limits.participant_queue_bytes takes no more, and is cut if
// it also took nothing for limits.participant_stall_ms. Deletes itself when
// gRPC and its timers are done with it, after handing every unanswered command
// back to the manager.
class ParticipantSession
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public CommandStream {
 public:
  // With a `policy`, the stream may serve only what it grants `peer`: a
  // Hello naming anything else ends the stream with PERMISSION_DENIED, and
  // in-doubt reports about other resources are dropped.
  // `context` is the stream's; `slot` its place at the Attach gate.
  ParticipantSession(grpc::CallbackServerContext* context,
                     ParticipantRegistry* registry, TransactionManager* manager,
                     uint32_t node_id, const AuthzPolicy* policy, Peer peer,
                     const StreamLimits& limits, StreamGate::Slot slot);

  bool Write(const v1::BranchCommand& command) override;

 private:
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

  // Ends a stream that sent nothing within the Hello timeout.
  void HelloTimedOut();
  // Cancels the stream of a participant that does not read (from a timer:
  // TryCancel may run reactions inline, so no lock of ours may be held).
  void CutOff();
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref();

  void HandleHello(const v1::Hello& hello);
  void HandleResult(v1::BranchResult* result);
  void HandleInDoubt(const v1::InDoubt& in_doubt);
  void QueueLocked(v1::CoordinatorMessage message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Serializes the next message (a batch if commands queued up) into
  // sending_ and starts writing it.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops accepting writes; finishes once the write in flight completes.
  void CloseLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const context_;
  ParticipantRegistry* const registry_;
  TransactionManager* const manager_;
  const uint32_t node_id_;
  const AuthzPolicy* const policy_;  // Null: every resource allowed.
  const Peer peer_;
  const StreamLimits limits_;
  const StreamGate::Slot slot_;
  // gRPC's reference (until OnDone) and one per armed timer.
  std::atomic<int> refs_{1};
  grpc::Alarm hello_timer_;
  grpc::Alarm cut_timer_;
  grpc::ByteBuffer incoming_;       // Owned by the single outstanding read.
  v1::ParticipantMessage message_;  // The last one read; the read path's.
  uint64_t messages_read_ = 0;      // Likewise.
  bool attached_ = false;           // Likewise.
  std::string instance_id_;         // Likewise.

  absl::Mutex mu_;
  static constexpr int kMaxCommandsPerMessage = 1024;
  // Not yet written.
  std::deque<v1::CoordinatorMessage> outbox_ ABSL_GUARDED_BY(mu_);
  size_t outbox_command_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // When the participant last took a message, or writing last resumed
  // after a pause: what "stalled" is measured from.
  std::chrono::steady_clock::time_point last_progress_ ABSL_GUARDED_BY(mu_) =
      std::chrono::steady_clock::now();
  bool greeted_ ABSL_GUARDED_BY(mu_) = false;  // A first message came.
  // Set from the moment the stream is to be cut until CutOff cancelled it:
  // Finish waits for it, so the context outlives TryCancel.
  bool cutting_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ByteBuffer sending_ ABSL_GUARDED_BY(mu_);  // The write in flight's.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // The participant reads BranchCommands.
  bool batches_ ABSL_GUARDED_BY(mu_) = false;
  // What the participant reads.
  size_t max_message_bytes_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace baton

#endif  // BATON_COORDINATOR_PARTICIPANT_SESSION_H_
