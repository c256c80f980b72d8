#ifndef BATON_PARTICIPANT_SDK_INTERNAL_PIPELINE_CLIENT_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_PIPELINE_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/transaction_service.grpc.pb.h"

namespace baton::internal {

// The caller's end of TransactionService.Pipeline: many calls in flight on
// one stream, batched into as few messages as the load allows. The stream
// opens on the first call and again after it breaks; a call unanswered when
// its stream breaks ends with the stream's error (UNAVAILABLE when the
// coordinator went away), so a caller retries it as it would a unary call.
// Thread-safe.
class PipelineClient {
 public:
  // Called exactly once, from a gRPC thread or the caller's own, with the
  // call's status and, when OK, its result. Must not block.
  using Done =
      std::function<void(const grpc::Status& status, v1::PipelineResult*)>;

  explicit PipelineClient(std::shared_ptr<grpc::Channel> channel);
  // Cancels the stream; unanswered calls end with CANCELLED first. Waits for
  // gRPC to be done with the stream, so never destroy it from a Done.
  ~PipelineClient();

  PipelineClient(const PipelineClient&) = delete;
  PipelineClient& operator=(const PipelineClient&) = delete;

  // Sends `call` (its call_id is set here).
  void Call(v1::PipelineCall call, Done done);

  // Call, waiting for the answer until `deadline` (DEADLINE_EXCEEDED past
  // it; the call may still take effect).
  grpc::Status CallAndWait(v1::PipelineCall call,
                           std::chrono::steady_clock::time_point deadline,
                           v1::PipelineResult* result);

 private:
  class Stream;

  // From a stream that broke: the next call opens a new one.
  void Forget(Stream* stream);
  // From a stream gRPC is done with: it may be deleted.
  void StreamDone(Stream* stream);

  const std::unique_ptr<v1::TransactionService::Stub> stub_;
  absl::Mutex mu_;  // Taken before a Stream's own.
  // Every stream not yet deleted, and whether gRPC is done with it.
  std::vector<std::pair<std::unique_ptr<Stream>, bool>> streams_
      ABSL_GUARDED_BY(mu_);
  Stream* current_ ABSL_GUARDED_BY(mu_) = nullptr;  // Takes new calls.
  uint64_t next_call_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_PIPELINE_CLIENT_H_
