#include "fuzz/fuzz_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "absl/synchronization/notification.h"
#include "baton/v1/admin_service.pb.h"
#include "common/logging.h"

namespace baton::fuzz {
namespace {

// Long enough for any call that does not wait on a participant; a call that
// waits (a Commit of a transaction with branches nobody serves) is cut off.
constexpr auto kDeadline = std::chrono::milliseconds(300);

grpc::ByteBuffer BufferOf(std::string_view bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

void PrepareContext(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + kDeadline);
  context->AddMetadata("authorization", "Bearer " + std::string(kAdminToken));
}

// Runs one step of a stream: the tag's operation either completes or the
// stream is over.
bool Await(grpc::CompletionQueue* cq) {
  void* tag;
  bool ok = false;
  return cq->Next(&tag, &ok) && ok;
}

}  // namespace

void QuietLogs() {
  SetupLogging("fuzz", "off");
  spdlog::set_level(spdlog::level::off);
}

FuzzServer& FuzzServer::Get() {
  static FuzzServer* const server = [] {
    QuietLogs();
    auto* s = new FuzzServer;
    char pattern[] = "/tmp/baton-fuzz-XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    s->dir_ = pattern;
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = s->dir_ + "/data";
    options.admin_token = std::string(kAdminToken);
    absl::Status status = Server::Start(options, &s->server_);
    if (!status.ok()) {
      std::fprintf(stderr, "fuzz: batond did not start: %s\n",
                   status.ToString().c_str());
      std::abort();
    }
    s->channel_ =
        grpc::CreateChannel("127.0.0.1:" + std::to_string(s->server_->port()),
                            grpc::InsecureChannelCredentials());
    s->stub_ = std::make_unique<grpc::GenericStub>(s->channel_);
    // The temp dir goes with the process.
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Get().dir_, ec);
    });
    return s;
  }();
  return *server;
}

grpc::Status FuzzServer::Call(const std::string& method,
                              std::string_view body) {
  grpc::ClientContext context;
  PrepareContext(&context);
  grpc::ByteBuffer request = BufferOf(body);
  grpc::ByteBuffer response;
  grpc::Status result;
  absl::Notification done;
  stub_->UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status status) {
                     result = std::move(status);
                     done.Notify();
                   });
  done.WaitForNotification();
  return result;
}

grpc::Status FuzzServer::Stream(const std::string& method,
                                const std::vector<std::string_view>& messages) {
  grpc::ClientContext context;
  PrepareContext(&context);
  grpc::CompletionQueue cq;
  auto call = stub_->PrepareCall(&context, method, &cq);
  call->StartCall(nullptr);
  bool open = Await(&cq);
  for (size_t i = 0; open && i < messages.size(); ++i) {
    call->Write(BufferOf(messages[i]), nullptr);
    open = Await(&cq);
  }
  if (open) {
    call->WritesDone(nullptr);
    Await(&cq);
  }
  grpc::ByteBuffer reply;
  while (open) {
    call->Read(&reply, nullptr);
    open = Await(&cq);
  }
  grpc::Status status;
  call->Finish(&status, nullptr);
  Await(&cq);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

void FuzzServer::CheckHealthy() {
  // GetStats, not Begin: a fuzzed DrainShard rightly stops new Begins.
  grpc::Status status = Call("/baton.v1.AdminService/GetStats",
                             v1::GetStatsRequest().SerializeAsString());
  if (!status.ok()) {
    std::fprintf(stderr, "fuzz: batond stopped answering GetStats: %d %s\n",
                 status.error_code(), status.error_message().c_str());
    std::abort();
  }
}

std::vector<std::string_view> SplitMessages(std::string_view input) {
  std::vector<std::string_view> messages;
  while (input.size() >= 2) {
    size_t length = (static_cast<unsigned char>(input[0]) << 8) |
                    static_cast<unsigned char>(input[1]);
    input.remove_prefix(2);
    length = std::min(length, input.size());
    messages.push_back(input.substr(0, length));
    input.remove_prefix(length);
  }
  return messages;
}

}  // namespace baton::fuzz
