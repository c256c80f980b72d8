#include "coordinator/pipeline_session.h"

#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/happens_before.h"
#include "common/limits.h"
#include "common/wrong_shard.h"
#include "coordinator/call_handler.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/message_size.h"
#include "coordinator/request_validation.h"
#include "coordinator/wire.h"
#include "fmt/format.h"

namespace baton {

// Answers waiting to be written, and the bookkeeping that decides when the
// stream reads again and when it finishes. The manager's answers reach it
// from the committer's finisher thread; once the session is gone they are
// dropped.
class PipelineSession::Outbox {
 public:
  explicit Outbox(PipelineSession* session) : session_(session) {}

  void Started() {
    absl::MutexLock lock(&mu_);
    ++unwritten_;
  }

  void Answer(v1::PipelineResult result) {
    absl::MutexLock lock(&mu_);
    if (session_ == nullptr || broken_) return;
    ready_.push_back(std::move(result));
    WriteLocked();
  }

  // What the client said it reads, from now on.
  void SetMaxReplyBytes(size_t bytes) {
    absl::MutexLock lock(&mu_);
    max_reply_bytes_ = bytes;
  }
  size_t max_reply_bytes() {
    absl::MutexLock lock(&mu_);
    return max_reply_bytes_;
  }

  // The client sent bytes that are not a message: stop reading, and end
  // the stream with `status` once the calls before them are answered.
  void Refuse(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    reads_ended_ = true;
    final_status_ = std::move(status);
    FinishIfDrainedLocked();
  }

  // After a message was dispatched: whether to read the next one now.
  bool ReadAgain() {
    absl::MutexLock lock(&mu_);
    if (finished_) return false;
    read_paused_ = unwritten_ >= kMaxCallsInFlight;
    return !read_paused_;
  }

  void WriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    unwritten_ -= sending_results_;
    if (!ok) {
      // The client is gone: nobody is left to answer.
      broken_ = true;
      ready_.clear();
    }
    // A client that does not read its answers is not sent more work: reading
    // resumes only once they are written.
    if (read_paused_ && unwritten_ < kMaxCallsInFlight && !broken_ &&
        !finished_ && !reads_ended_) {
      read_paused_ = false;
      session_->StartRead(&session_->incoming_);
    }
    WriteLocked();
    FinishIfDrainedLocked();
  }

  // The client closed its side (or the stream broke): finish once every
  // call it sent has been answered.
  void ReadsEnded(bool cancelled) {
    absl::MutexLock lock(&mu_);
    reads_ended_ = true;
    if (cancelled) {
      broken_ = true;
      ready_.clear();
    }
    FinishIfDrainedLocked();
  }

  void Detach() {
    absl::MutexLock lock(&mu_);
    session_ = nullptr;
  }

 private:
  // Puts as many ready answers as fit what the client reads into the next
  // write.
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || broken_ || ready_.empty()) return;
    v1::PipelineReply reply;
    size_t bytes = 0;
    while (!ready_.empty()) {
      size_t size =
          ready_.front().ByteSizeLong() + limits::kRepeatedElementFramingBytes;
      if (reply.results_size() > 0 &&
          bytes + size > max_reply_bytes_ - kMessageOverheadBytes) {
        break;
      }
      bytes += size;
      *reply.add_results() = std::move(ready_.front());
      ready_.pop_front();
    }
    static metrics::Histogram* const answers_out =
        Metrics().pipeline_message_calls.With({"out"});
    answers_out->Observe(reply.results_size());
    sending_results_ = reply.results_size();
    wire::Serialize(reply, &sending_);
    writing_ = true;
    session_->StartWrite(&sending_);
  }

  void FinishIfDrainedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) return;
    // Broken: finish at once, even with a read outstanding (gRPC fails it).
    if (!broken_ && (!reads_ended_ || unwritten_ > 0)) return;
    finished_ = true;
    session_->Finish(broken_ ? grpc::Status::CANCELLED : final_status_);
  }

  absl::Mutex mu_;
  PipelineSession* session_
      ABSL_GUARDED_BY(mu_);  // Null once gRPC is done with the stream.
  std::deque<v1::PipelineResult> ready_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer sending_
      ABSL_GUARDED_BY(mu_);  // Owned by the write in flight.
  int sending_results_ ABSL_GUARDED_BY(mu_) = 0;  // Answers in it.
  size_t max_reply_bytes_ ABSL_GUARDED_BY(mu_) = PeerReceiveBytes(0);
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);  // Unless broken.
  // Calls read whose answers have not been written yet (running in the
  // manager, or queued in ready_, or in the write in flight).
  int unwritten_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

// The FinishCall for one call: turns the handler's answer into a result
// carrying `call_id` and the response in the field `mutable_field` names.
template <typename Response>
FinishCall<Response> AnswerTo(
    std::shared_ptr<PipelineSession::Outbox> outbox, uint64_t call_id,
    Response* (v1::PipelineResult::*mutable_field)()) {
  return [outbox = std::move(outbox), call_id, mutable_field](
             const absl::Status& s, Response&& response) {
    v1::PipelineResult result;
    result.set_call_id(call_id);
    result.set_code(static_cast<int32_t>(s.code()));
    result.set_message(std::string(s.message()));
    if (s.ok()) *(result.*mutable_field)() = std::move(response);
    if (std::optional<v1::WrongShard> refusal = WrongShardOf(s)) {
      *result.mutable_wrong_shard() = std::move(*refusal);
    }
    outbox->Answer(std::move(result));
  };
}

}  // namespace

PipelineSession::PipelineSession(TransactionManager* manager,
                                 const AuthzPolicy* policy, Peer peer,
                                 StreamGate::Slot slot)
    : manager_(manager),
      policy_(policy),
      peer_(std::move(peer)),
      slot_(std::move(slot)),
      outbox_(std::make_shared<Outbox>(this)) {
  EndOfReaction end(this);
  StartRead(&incoming_);
}

void PipelineSession::OnReadDone(bool ok) {
  EndOfReaction end(this);
  if (!ok) {
    outbox_->ReadsEnded(/*cancelled=*/false);
    return;
  }
  ++messages_read_;
  if (!wire::Parse(incoming_, &request_)) {
    outbox_->Refuse(wire::Unparseable<v1::PipelineRequest>(
        incoming_, fmt::format("message {} on Pipeline", messages_read_)));
    return;
  }
  static metrics::Histogram* const calls_in =
      Metrics().pipeline_message_calls.With({"in"});
  calls_in->Observe(request_.calls_size());
  absl::Status limit =
      ValidateReceiveLimit("max_reply_bytes", request_.max_reply_bytes());
  refusal_ = limit.ok() ? "" : std::string(limit.message());
  if (limit.ok() && request_.max_reply_bytes() != 0) {
    outbox_->SetMaxReplyBytes(PeerReceiveBytes(request_.max_reply_bytes()));
  }
  for (int i = 0; i < request_.calls_size(); ++i) Dispatch(i);
  if (outbox_->ReadAgain()) StartRead(&incoming_);
}

void PipelineSession::Dispatch(int index) {
  const v1::PipelineCall& call = request_.calls(index);
  using R = v1::PipelineResult;
  outbox_->Started();
  if (!refusal_.empty()) {
    outbox_->Answer(Refused(call.call_id(), refusal_));
    return;
  }
  if (index >= kMaxCallsPerMessage) {
    outbox_->Answer(Refused(
        call.call_id(),
        fmt::format("a PipelineRequest carries at most {} calls; this was "
                    "call {} of {} and did not run: send the rest in another "
                    "message",
                    kMaxCallsPerMessage, index + 1, request_.calls_size())));
    return;
  }
  if (policy_ != nullptr && call.request_case() != call.REQUEST_NOT_SET) {
    const auto* field =
        call.GetDescriptor()->FindFieldByNumber(call.request_case());
    const auto& request = call.GetReflection()->GetMessage(call, field);
    absl::Status allowed = policy_->MayCall(peer_, MethodOf(request));
    if (!allowed.ok()) {
      CountRefusal(MethodOf(request), "method_not_granted", allowed.ToString(),
                   manager_->log_summary());
      v1::PipelineResult refused;
      refused.set_call_id(call.call_id());
      refused.set_code(grpc::StatusCode::PERMISSION_DENIED);
      refused.set_message(std::string(allowed.message()));
      outbox_->Answer(std::move(refused));
      return;
    }
  }
  switch (call.request_case()) {
    case v1::PipelineCall::kBegin:
      return HandleCall(manager_, call.begin(),
                        AnswerTo(outbox_, call.call_id(), &R::mutable_begin));
    case v1::PipelineCall::kCommit:
      return HandleCall(manager_, call.commit(),
                        AnswerTo(outbox_, call.call_id(), &R::mutable_commit));
    case v1::PipelineCall::kRollback:
      return HandleCall(
          manager_, call.rollback(),
          AnswerTo(outbox_, call.call_id(), &R::mutable_rollback));
    case v1::PipelineCall::kGetTransaction: {
      // Its answer must fit one reply of this stream.
      v1::GetTransactionRequest capped = call.get_transaction();
      size_t fits = outbox_->max_reply_bytes() - kMessageOverheadBytes;
      if (capped.max_response_bytes() == 0 ||
          capped.max_response_bytes() > fits) {
        capped.set_max_response_bytes(static_cast<uint32_t>(fits));
      }
      return HandleCall(
          manager_, capped,
          AnswerTo(outbox_, call.call_id(), &R::mutable_get_transaction));
    }
    case v1::PipelineCall::kRegisterBranch:
      return HandleCall(
          manager_, call.register_branch(),
          AnswerTo(outbox_, call.call_id(), &R::mutable_register_branch));
    case v1::PipelineCall::kReportBranch:
      return HandleCall(
          manager_, call.report_branch(),
          AnswerTo(outbox_, call.call_id(), &R::mutable_report_branch));
    case v1::PipelineCall::kSubmitSaga:
      return HandleCall(
          manager_, call.submit_saga(),
          AnswerTo(outbox_, call.call_id(), &R::mutable_submit_saga));
    case v1::PipelineCall::REQUEST_NOT_SET:
      break;
  }
  outbox_->Answer(Refused(call.call_id(),
                          "PipelineCall carries no request (or one this "
                          "coordinator does not know)"));
}

v1::PipelineResult PipelineSession::Refused(uint64_t call_id,
                                            std::string message) {
  v1::PipelineResult result;
  result.set_call_id(call_id);
  result.set_code(grpc::StatusCode::INVALID_ARGUMENT);
  result.set_message(std::move(message));
  return result;
}

void PipelineSession::OnWriteDone(bool ok) {
  EndOfReaction end(this);
  outbox_->WriteDone(ok);
}

void PipelineSession::OnCancel() {
  EndOfReaction end(this);
  outbox_->ReadsEnded(/*cancelled=*/true);
}

void PipelineSession::OnDone() {
  HappensAfter(this);
  outbox_->Detach();
  delete this;
}

}  // namespace baton
