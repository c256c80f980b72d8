#ifndef BATON_PARTICIPANT_SDK_INTERNAL_RPC_H_
#define BATON_PARTICIPANT_SDK_INTERNAL_RPC_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "baton/tls.h"
#include "common/tls.h"

namespace baton::internal {

// The files `options` names, each empty one taken from the environment.
TlsFiles ResolveTls(const TlsOptions& options);

// A channel to the coordinator with message limits matching the server and
// quick reconnects, so a restarted coordinator is found within a second;
// over TLS if `tls` turns it on. A `token` goes with every call as
// "authorization: Bearer TOKEN", over TLS only: gRPC sends no call
// credentials in plaintext.
std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(
    const std::string& address, const TlsFiles& tls,
    const std::string& token = "");

// How long a call that found the coordinator UNAVAILABLE waits before its
// second attempt, and each later wait after the one before it.
inline constexpr std::chrono::milliseconds kFirstRetryBackoff{50};
std::chrono::milliseconds NextRetryBackoff(std::chrono::milliseconds backoff);

// Runs `call` with a fresh context (deadline `timeout`) until it returns
// something other than UNAVAILABLE, or `max_attempts` ran out, backing off
// between attempts. Only for calls that are safe to repeat.
grpc::Status CallWithRetry(
    std::chrono::milliseconds timeout, int max_attempts,
    const std::function<grpc::Status(grpc::ClientContext*)>& call);

// 32 random hex digits: an idempotency key.
std::string NewRequestId();

}  // namespace baton::internal

#endif  // BATON_PARTICIPANT_SDK_INTERNAL_RPC_H_
