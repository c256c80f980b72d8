#include "participant_sdk/internal/coordinator_link.h"

#include <algorithm>

#include "common/failpoint.h"
#include "participant_sdk/internal/rpc.h"
#include "spdlog/spdlog.h"

namespace baton::internal {

CoordinatorLink::CoordinatorLink(Options options)
    : options_(std::move(options)),
      stub_(v1::ParticipantService::NewStub(MakeCoordinatorChannel(
          options_.address, options_.tls, options_.token))),
      thread_([this] { Run(); }) {}

CoordinatorLink::~CoordinatorLink() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  wake_.SignalAll();
  thread_.join();
}

bool CoordinatorLink::attached() const {
  absl::MutexLock lock(&mu_);
  return attached_;
}

void CoordinatorLink::Run() {
  std::chrono::milliseconds backoff = options_.reconnect_initial;
  for (;;) {
    if (RunStream()) backoff = options_.reconnect_initial;
    absl::MutexLock lock(&mu_);
    if (wake_.WaitFor(&mu_, backoff,
                      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                        return stopping_;
                      })) {
      return;
    }
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

bool CoordinatorLink::RunStream() {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    context_ = &context;
  }
  std::unique_ptr<Stream> stream = stub_->Attach(&context);
  v1::CoordinatorMessage message;
  bool attached = stream->Write(options_.hello) && stream->Read(&message) &&
                  message.has_welcome();
  if (attached) {
    {
      absl::MutexLock lock(&results_mu_);
      batch_results_ = message.welcome().reads_result_batches();
    }
    {
      absl::MutexLock lock(&mu_);
      stream_ = stream.get();
      attached_ = true;
    }
    spdlog::info("participant {} attached to coordinator node {} at {}",
                 options_.hello.hello().instance_id(),
                 message.welcome().coordinator_node(), options_.address);
    if (options_.on_state) options_.on_state();
    if (options_.on_attached) options_.on_attached(this);
  }
  while (attached && stream->Read(&message)) {
    if (message.has_command()) options_.on_command(message.command());
    for (v1::BranchCommand& command :
         *message.mutable_commands()->mutable_commands()) {
      options_.on_command(std::move(command));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    attached_ = false;
    context_ = nullptr;
  }
  if (attached && options_.on_state) options_.on_state();
  grpc::Status status = stream->Finish();
  spdlog::warn("participant {} stream to the coordinator at {} ended: {}",
               options_.hello.hello().instance_id(), options_.address,
               status.error_message());
  return attached;
}

void CoordinatorLink::Write(const v1::ParticipantMessage& message) {
  absl::MutexLock lock(&mu_);
  if (stream_ != nullptr) stream_->Write(message);
}

void CoordinatorLink::SendResult(v1::BranchResult result) {
  results_mu_.Lock();
  unsent_results_.push_back(std::move(result));
  if (writing_results_) {
    results_mu_.Unlock();
    return;
  }
  writing_results_ = true;
  while (!unsent_results_.empty()) {
    results_mu_.Unlock();
    failpoint::Hit("participant_before_result_write").IgnoreError();
    results_mu_.Lock();
    v1::ParticipantMessage message = TakeUnsentResults();
    results_mu_.Unlock();
    Write(message);
    results_mu_.Lock();
  }
  writing_results_ = false;
  results_mu_.Unlock();
}

v1::ParticipantMessage CoordinatorLink::TakeUnsentResults() {
  constexpr int kMaxResultsPerMessage = 1024;
  v1::ParticipantMessage message;
  if (unsent_results_.size() == 1 || !batch_results_) {
    message.mutable_result()->Swap(&unsent_results_.front());
    unsent_results_.pop_front();
    return message;
  }
  while (!unsent_results_.empty() &&
         message.results().results_size() < kMaxResultsPerMessage) {
    message.mutable_results()->add_results()->Swap(&unsent_results_.front());
    unsent_results_.pop_front();
  }
  return message;
}

}  // namespace baton::internal
