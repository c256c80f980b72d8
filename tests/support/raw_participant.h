#ifndef BATON_TESTS_SUPPORT_RAW_PARTICIPANT_H_
#define BATON_TESTS_SUPPORT_RAW_PARTICIPANT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "baton/v1/participant_service.grpc.pb.h"
#include "common/tls.h"

namespace baton::testing {

// One Attach stream spoken by hand, as a participant in another language
// would, without the SDK: the test decides what to send and sees every
// command as it arrives. A reader thread queues what the coordinator sends.
class RawParticipant {
 public:
  struct Options {
    std::vector<std::string> resources;
    std::string instance_id = "raw-1";
    bool reads_command_batches = true;
    // Hello.max_message_bytes; 0 leaves it unset.
    uint32_t max_message_bytes = 0;
    // The channel's own receive limit; 0 keeps gRPC's default (4 MiB).
    int channel_max_receive_bytes = 0;
    TlsFiles tls;       // Empty: plaintext.
    std::string token;  // Sent as "authorization: Bearer TOKEN" if set.
  };

  // Opens the stream and sends the Hello; Attached() tells whether the
  // Welcome came.
  RawParticipant(const std::string& coordinator, const Options& options);
  ~RawParticipant();

  RawParticipant(const RawParticipant&) = delete;
  RawParticipant& operator=(const RawParticipant&) = delete;

  bool Attached(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The next command, whether it came alone or in a batch; nullopt if none
  // came within `timeout` or the stream ended.
  std::optional<v1::BranchCommand> NextCommand(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  bool Send(const v1::ParticipantMessage& message);
  // Answers `command` with `outcome`, echoing its ids and action.
  bool Answer(const v1::BranchCommand& command, v1::CommandOutcome outcome,
              const std::string& message = "");

  // Messages received (the Welcome included) and the largest one's size.
  size_t messages_received();
  size_t largest_message_bytes();

  // Waits for the stream to end and returns its status.
  grpc::Status Finish(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void Cancel() { context_.TryCancel(); }

 private:
  void Read();

  std::unique_ptr<v1::ParticipantService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ParticipantMessage, v1::CoordinatorMessage>>
      stream_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable arrived_;
  std::deque<v1::BranchCommand> commands_;  // Guarded by mu_.
  bool welcomed_ = false;                   // Guarded by mu_.
  bool ended_ = false;                      // Guarded by mu_.
  size_t messages_ = 0;                     // Guarded by mu_.
  size_t largest_ = 0;                      // Guarded by mu_.
  std::optional<grpc::Status> status_;      // Guarded by mu_.
  std::thread reader_;
};

}  // namespace baton::testing

#endif  // BATON_TESTS_SUPPORT_RAW_PARTICIPANT_H_
