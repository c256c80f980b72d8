#include "tests/support/raw_participant.h"

namespace baton::testing {

RawParticipant::RawParticipant(const std::string& coordinator,
                               const Options& options) {
  grpc::ChannelArguments args;
  if (options.channel_max_receive_bytes > 0) {
    args.SetMaxReceiveMessageSize(options.channel_max_receive_bytes);
  }
  stub_ = v1::ParticipantService::NewStub(grpc::CreateCustomChannel(
      coordinator, MakeChannelCredentials(options.tls), args));
  if (!options.token.empty()) {
    context_.AddMetadata("authorization", "Bearer " + options.token);
  }
  stream_ = stub_->Attach(&context_);
  v1::ParticipantMessage hello;
  v1::Hello* h = hello.mutable_hello();
  h->set_service("raw");
  h->set_instance_id(options.instance_id);
  h->set_reads_command_batches(options.reads_command_batches);
  h->set_max_message_bytes(options.max_message_bytes);
  for (const std::string& r : options.resources) h->add_resources(r);
  Send(hello);
  reader_ = std::thread([this] { Read(); });
}

RawParticipant::~RawParticipant() {
  context_.TryCancel();
  reader_.join();
}

void RawParticipant::Read() {
  v1::CoordinatorMessage message;
  while (stream_->Read(&message)) {
    std::lock_guard<std::mutex> lock(mu_);
    ++messages_;
    largest_ = std::max(largest_, message.ByteSizeLong());
    if (message.has_welcome()) welcomed_ = true;
    if (message.has_command()) commands_.push_back(message.command());
    for (const v1::BranchCommand& c : message.commands().commands()) {
      commands_.push_back(c);
    }
    arrived_.notify_all();
  }
  grpc::Status status = stream_->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  ended_ = true;
  status_ = status;
  arrived_.notify_all();
}

bool RawParticipant::Attached(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return arrived_.wait_for(lock, timeout, [this] {
    return welcomed_ || ended_;
  }) && welcomed_;
}

std::optional<v1::BranchCommand> RawParticipant::NextCommand(
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!arrived_.wait_for(lock, timeout,
                         [this] { return !commands_.empty() || ended_; }) ||
      commands_.empty()) {
    return std::nullopt;
  }
  v1::BranchCommand command = std::move(commands_.front());
  commands_.pop_front();
  return command;
}

bool RawParticipant::Send(const v1::ParticipantMessage& message) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stream_->Write(message);
}

bool RawParticipant::Answer(const v1::BranchCommand& command,
                            v1::CommandOutcome outcome,
                            const std::string& message) {
  v1::ParticipantMessage m;
  v1::BranchResult* r = m.mutable_result();
  r->set_command_id(command.command_id());
  r->set_xid(command.xid());
  r->set_branch_id(command.branch_id());
  r->set_action(command.action());
  r->set_outcome(outcome);
  r->set_message(message);
  return Send(m);
}

size_t RawParticipant::messages_received() {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

size_t RawParticipant::largest_message_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return largest_;
}

grpc::Status RawParticipant::Finish(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!arrived_.wait_for(lock, timeout, [this] { return ended_; })) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the stream did not end");
  }
  return *status_;
}

}  // namespace baton::testing
