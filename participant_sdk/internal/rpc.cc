#include "participant_sdk/internal/rpc.h"

#include <random>
#include <thread>

#include "common/limits.h"
#include "fmt/format.h"

namespace baton::internal {

TlsFiles ResolveTls(const TlsOptions& options) {
  return WithTlsEnvironment(TlsFiles{.cert = options.cert_file,
                                     .key = options.key_file,
                                     .ca = options.ca_file});
}

std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(
    const std::string& address, const TlsFiles& tls, const std::string& token) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(limits::kMaxMessageBytes);
  args.SetMaxSendMessageSize(limits::kMaxMessageBytes);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      MakeChannelCredentials(tls);
  if (!token.empty() && tls.client_enabled()) {
    credentials = grpc::CompositeChannelCredentials(
        credentials, grpc::AccessTokenCredentials(token));
  }
  return grpc::CreateCustomChannel(address, credentials, args);
}

std::chrono::milliseconds NextRetryBackoff(std::chrono::milliseconds backoff) {
  return std::min(backoff * 2, std::chrono::milliseconds(1000));
}

grpc::Status CallWithRetry(
    std::chrono::milliseconds timeout, int max_attempts,
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  std::chrono::milliseconds backoff = kFirstRetryBackoff;
  grpc::Status status;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    status = call(&context);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        attempt >= max_attempts) {
      return status;
    }
    std::this_thread::sleep_for(backoff);
    backoff = NextRetryBackoff(backoff);
  }
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

}  // namespace baton::internal
