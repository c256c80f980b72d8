#include "participant_sdk/internal/pipeline_client.h"

#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/grpc_status.h"
#include "common/happens_before.h"
#include "common/limits.h"
#include "common/steady_cond_var.h"
#include "common/wrong_shard.h"
#include "fmt/format.h"

namespace baton::internal {
namespace {

// Matches the coordinator's PipelineSession::kMaxCallsPerMessage.
constexpr int kMaxCallsPerMessage = 1024;
// Room for a message's own framing around its calls.
constexpr size_t kMaxCallBytes = limits::kMaxMessageBytes - 1024;

// As the unary call would have finished, refusal details included.
grpc::Status StatusOf(const v1::PipelineResult& result) {
  if (!result.has_wrong_shard()) {
    return grpc::Status(static_cast<grpc::StatusCode>(result.code()),
                        result.message());
  }
  return ToRichGrpcStatus(
      WithWrongShard(absl::Status(static_cast<absl::StatusCode>(result.code()),
                                  result.message()),
                     result.wrong_shard()));
}

}  // namespace

// One Pipeline stream. When gRPC is done with it, it ends every unanswered
// call with the stream's status and tells its owner, which deletes it.
class PipelineClient::Stream
    : public grpc::ClientBidiReactor<v1::PipelineRequest, v1::PipelineReply> {
 public:
  Stream(PipelineClient* owner, v1::TransactionService::Stub* stub)
      : owner_(owner) {
    EndOfReaction end(this);
    stub->async()->Pipeline(&context_, this);
    StartRead(&incoming_);
  }

  // Separate from the constructor so the owner can call it outside its
  // lock: a stream that fails at once runs its reactions right away.
  void Start() { StartCall(); }

  // Takes `call` and `done` (moving from them), or returns false, leaving
  // them as they were, if the stream already broke.
  bool Send(v1::PipelineCall* call, size_t bytes, Done* done) {
    absl::MutexLock lock(&mu_);
    if (broken_) return false;
    pending_.emplace(call->call_id(), std::move(*done));
    queue_.emplace_back(std::move(*call), bytes);
    WriteLocked();
    return true;
  }

  void Cancel() { context_.TryCancel(); }

 private:
  void OnReadDone(bool ok) override {
    EndOfReaction end(this);
    if (!ok) {
      Break();
      return;
    }
    std::vector<std::pair<Done, v1::PipelineResult*>> answered;
    {
      absl::MutexLock lock(&mu_);
      for (v1::PipelineResult& result : *incoming_.mutable_results()) {
        auto it = pending_.find(result.call_id());
        if (it == pending_.end()) continue;
        answered.emplace_back(std::move(it->second), &result);
        pending_.erase(it);
      }
    }
    for (auto& [done, result] : answered) done(StatusOf(*result), result);
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    EndOfReaction end(this);
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (ok) WriteLocked();
  }

  void OnDone(const grpc::Status& status) override {
    HappensAfter(this);
    Break();
    std::unordered_map<uint64_t, Done> unanswered;
    {
      absl::MutexLock lock(&mu_);
      unanswered.swap(pending_);
    }
    // A stream the coordinator closed cleanly still left these unanswered.
    grpc::Status failure =
        status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   "the coordinator closed the pipeline")
                    : status;
    for (auto& [id, done] : unanswered) done(failure, nullptr);
    owner_->StreamDone(this);
  }

  void Break() {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    owner_->Forget(this);
  }

  // Moves queued calls into the next message, up to the per-message limits.
  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || broken_ || queue_.empty()) return;
    outgoing_.Clear();
    size_t bytes = 0;
    while (!queue_.empty() && outgoing_.calls_size() < kMaxCallsPerMessage) {
      auto& [call, size] = queue_.front();
      if (outgoing_.calls_size() > 0 && bytes + size > kMaxCallBytes) break;
      bytes += size;
      *outgoing_.add_calls() = std::move(call);
      queue_.pop_front();
    }
    // The channel reads up to this (rpc.h); without it the coordinator would
    // keep replies to gRPC's default 4 MiB. Said on every message: it is
    // one varint.
    outgoing_.set_max_reply_bytes(limits::kMaxMessageBytes);
    writing_ = true;
    StartWrite(&outgoing_);
  }

  PipelineClient* const owner_;
  grpc::ClientContext context_;
  v1::PipelineReply incoming_;  // Owned by the single outstanding read.

  absl::Mutex mu_;
  std::unordered_map<uint64_t, Done> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<v1::PipelineCall, size_t>> queue_ ABSL_GUARDED_BY(mu_);
  // Filled under mu_, then owned by the write in flight.
  v1::PipelineRequest outgoing_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

PipelineClient::PipelineClient(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::TransactionService::NewStub(std::move(channel))) {}

PipelineClient::~PipelineClient() {
  std::vector<Stream*> live;
  {
    absl::MutexLock lock(&mu_);
    current_ = nullptr;
    for (auto& [stream, done] : streams_) {
      if (!done) live.push_back(stream.get());
    }
  }
  // Outside the lock: cancelling may run the stream's reactions at once.
  for (Stream* stream : live) stream->Cancel();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](PipelineClient* client) ABSL_EXCLUSIVE_LOCKS_REQUIRED(client->mu_) {
        for (auto& [stream, done] : client->streams_) {
          if (!done) return false;
        }
        return true;
      },
      this));
}

void PipelineClient::Call(v1::PipelineCall call, Done done) {
  size_t bytes = call.ByteSizeLong() + limits::kRepeatedElementFramingBytes;
  if (bytes > kMaxCallBytes) {
    done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      fmt::format("the call is {} bytes; a call to the "
                                  "coordinator must fit in {} bytes",
                                  bytes, kMaxCallBytes)),
         nullptr);
    return;
  }
  Stream* opened = nullptr;
  {
    absl::MutexLock lock(&mu_);
    call.set_call_id(++next_call_id_);
    // A stream that broke but has not told us yet refuses; open another.
    for (;;) {
      if (current_ == nullptr) {
        std::erase_if(streams_, [](const auto& s) { return s.second; });
        streams_.emplace_back(std::make_unique<Stream>(this, stub_.get()),
                              false);
        current_ = opened = streams_.back().first.get();
      }
      if (current_->Send(&call, bytes, &done)) break;
      current_ = nullptr;
    }
  }
  if (opened != nullptr) opened->Start();
}

grpc::Status PipelineClient::CallAndWait(
    v1::PipelineCall call, std::chrono::steady_clock::time_point deadline,
    v1::PipelineResult* result) {
  struct Answer {
    absl::Mutex mu;
    SteadyCondVar answered;
    bool done ABSL_GUARDED_BY(mu) = false;
    grpc::Status status ABSL_GUARDED_BY(mu);
    v1::PipelineResult result ABSL_GUARDED_BY(mu);
  };
  auto answer = std::make_shared<Answer>();
  Call(std::move(call), [answer](const grpc::Status& s, v1::PipelineResult* r) {
    absl::MutexLock lock(&answer->mu);
    answer->status = s;
    if (r != nullptr) answer->result.Swap(r);
    answer->done = true;
    answer->answered.Signal();
  });
  absl::MutexLock lock(&answer->mu);
  if (!answer->answered.WaitUntil(&answer->mu, deadline,
                                  [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                                      answer->mu) { return answer->done; })) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the coordinator did not answer before the deadline");
  }
  result->Swap(&answer->result);
  return answer->status;
}

void PipelineClient::Forget(Stream* stream) {
  absl::MutexLock lock(&mu_);
  if (current_ == stream) current_ = nullptr;
}

void PipelineClient::StreamDone(Stream* stream) {
  absl::MutexLock lock(&mu_);
  for (auto& [s, done] : streams_) {
    if (s.get() == stream) done = true;
  }
}

}  // namespace baton::internal
