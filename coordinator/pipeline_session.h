#ifndef BATON_COORDINATOR_PIPELINE_SESSION_H_
#define BATON_COORDINATOR_PIPELINE_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "baton/v1/transaction_service.grpc.pb.h"
#include "coordinator/authz.h"
#include "coordinator/stream_limits.h"
#include "coordinator/transaction_manager.h"

namespace baton {

// The coordinator's end of one Pipeline stream (TransactionService.Pipeline),
// on gRPC's raw callback API (it parses messages itself; see wire.h). Every
// call in an incoming message goes to the manager as its unary form would;
// results are queued and written in batches, one write in flight at a
// time, so a burst of answers (one group commit's worth) leaves in one
// message, never larger than the client said it reads. Past
// kMaxCallsInFlight calls whose answers are not written yet (still
// running, or not taken by a slow reader) it stops reading until they
// drain. A message that does not parse ends the stream with
// INVALID_ARGUMENT once the calls before it are answered. Deletes itself
// when gRPC is done with the stream; answers that come later are dropped.
class PipelineSession
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  static constexpr int kMaxCallsPerMessage = 1024;
  static constexpr int kMaxCallsInFlight = 4096;

  // With a `policy`, each call is let through only if it grants `peer`
  // the call's method (AuthzPolicy::MayCall).
  // `slot` is the stream's place at the Pipeline gate.
  PipelineSession(TransactionManager* manager, const AuthzPolicy* policy,
                  Peer peer, StreamGate::Slot slot);

  class Outbox;

 private:
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Hands call `index` of the incoming message to the manager.
  void Dispatch(int index);
  static v1::PipelineResult Refused(uint64_t call_id, std::string message);

  TransactionManager* const manager_;
  const AuthzPolicy* const policy_;  // Null: every call let through.
  const Peer peer_;
  const StreamGate::Slot slot_;
  // Shared with the manager's pending answers, which may outlive the stream.
  const std::shared_ptr<Outbox> outbox_;
  grpc::ByteBuffer incoming_;    // Owned by the single outstanding read.
  v1::PipelineRequest request_;  // The last message read; the read path's.
  uint64_t messages_read_ = 0;   // Likewise.
  // An error refusing every call of the last message, if any.
  std::string refusal_;  // Likewise.
};

}  // namespace baton

#endif  // BATON_COORDINATOR_PIPELINE_SESSION_H_
