// The two streams: Attach (a participant's messages) and Pipeline (a
// client's batched calls), each driven by a sequence of fuzzed messages
// against a real coordinator on a temp store. The first byte picks the
// stream and whether a well-formed Hello goes first, so the fuzzer reaches
// past the handshake; the rest is split into messages (SplitMessages).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "baton/v1/participant_service.pb.h"
#include "fuzz/fuzz_server.h"

namespace {

using baton::fuzz::FuzzServer;

const std::string& WellFormedHello() {
  static const std::string* const hello = [] {
    baton::v1::ParticipantMessage message;
    baton::v1::Hello* h = message.mutable_hello();
    h->set_service("fuzz");
    h->set_instance_id("fuzz-1");
    h->add_resources("fuzz-r");
    return new std::string(message.SerializeAsString());
  }();
  return *hello;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::vector<std::string_view> messages = baton::fuzz::SplitMessages(
      std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  FuzzServer& server = FuzzServer::Get();
  if (mode & 1) {
    server.Stream("/baton.v1.TransactionService/Pipeline", messages);
  } else {
    if (mode & 2) messages.insert(messages.begin(), WellFormedHello());
    server.Stream("/baton.v1.ParticipantService/Attach", messages);
  }
  static int inputs = 0;
  if (++inputs % 256 == 0) server.CheckHealthy();
  return 0;
}
