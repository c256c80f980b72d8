#ifndef BATON_COORDINATOR_PARTICIPANT_SESSION_H_
#define BATON_COORDINATOR_PARTICIPANT_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/participant_service.grpc.pb.h"
#include "coordinator/authz.h"
#include "coordinator/participant_registry.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// The coordinator's end of one Attach stream, on gRPC's raw callback API
// (it parses messages itself; see wire.h): no thread waits on it. The first
// message must be a Hello; after it the session is in the registry and
// carries commands out and results in, never sending a message larger than
// the Hello said the participant reads. A message that does not parse ends
// the stream with INVALID_ARGUMENT. Deletes itself when gRPC is done with
// the stream, after handing every unanswered command back to the manager.
class ParticipantSession
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public CommandStream {
 public:
  // With a `policy`, the stream may serve only what it grants `peer`: a
  // Hello naming anything else ends the stream with PERMISSION_DENIED, and
  // in-doubt reports about other resources are dropped.
  ParticipantSession(ParticipantRegistry* registry, TransactionManager* manager,
                     uint32_t node_id, const AuthzPolicy* policy, Peer peer);

  bool Write(const v1::BranchCommand& command) override;

 private:
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

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

  ParticipantRegistry* const registry_;
  TransactionManager* const manager_;
  const uint32_t node_id_;
  const AuthzPolicy* const policy_;  // Null: every resource allowed.
  const Peer peer_;
  grpc::ByteBuffer incoming_;       // Owned by the single outstanding read.
  v1::ParticipantMessage message_;  // The last one read; the read path's.
  uint64_t messages_read_ = 0;      // Likewise.
  bool attached_ = false;           // Likewise.
  std::string instance_id_;         // Likewise.

  absl::Mutex mu_;
  static constexpr int kMaxCommandsPerMessage = 1024;
  // Not yet written.
  std::deque<v1::CoordinatorMessage> outbox_ ABSL_GUARDED_BY(mu_);
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
