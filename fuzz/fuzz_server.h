#ifndef BATON_FUZZ_FUZZ_SERVER_H_
#define BATON_FUZZ_FUZZ_SERVER_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/server.h"

// A real coordinator for the fuzz targets that drive calls and streams: one
// per process, on a fresh LevelDB store in a temp dir, serving on loopback.
// Fuzzed bytes go to it unparsed (grpc::GenericStub), so its own parsing,
// validation and handling all see them. Not thread-safe: libFuzzer runs one
// input at a time.
namespace baton::fuzz {

inline constexpr std::string_view kAdminToken = "fuzz-admin-token";

class FuzzServer {
 public:
  // The process's server, started on first use; aborts if it cannot start.
  static FuzzServer& Get();

  // Unary call `method` ("/baton.v1.TransactionService/Begin") with `body`
  // as the serialized request; returns once answered or after a short
  // deadline. The admin token goes with every call.
  grpc::Status Call(const std::string& method, std::string_view body);
  // Opens the bidirectional stream `method`, writes each of `messages`
  // as one message, half-closes and reads until the server ends the stream
  // or the deadline passes.
  grpc::Status Stream(const std::string& method,
                      const std::vector<std::string_view>& messages);

  // Aborts unless the server still answers an admin GetStats: the
  // targets' invariant, checked now and then.
  void CheckHealthy();

 private:
  FuzzServer() = default;

  std::string dir_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

// Splits a fuzz input into messages: each is a 2-byte big-endian length and
// that many bytes (the last takes what is left).
std::vector<std::string_view> SplitMessages(std::string_view input);

// Silences logging: the targets feed batond mostly refusals, and each is
// logged at warn or below.
void QuietLogs();

}  // namespace baton::fuzz

#endif  // BATON_FUZZ_FUZZ_SERVER_H_
