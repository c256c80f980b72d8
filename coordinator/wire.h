#ifndef BATON_COORDINATOR_WIRE_H_
#define BATON_COORDINATOR_WIRE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <cstddef>
#include <functional>
#include <string_view>

#include "fmt/format.h"

// batond serves its methods on gRPC's raw (ByteBuffer) callback API and parses
// requests itself: gRPC's own typed handlers answer bytes that do not parse
// with UNIMPLEMENTED and no message (unary) or end a stream with OK, while
// the contract promises INVALID_ARGUMENT with a message a person can act on.
namespace baton::wire {

// Parses `bytes` as a T; false if they are not one.
template <typename T>
bool Parse(const grpc::ByteBuffer& bytes, T* message) {
  grpc::ByteBuffer copy(bytes);  // Shares the slices; the reader needs it.
  grpc::ProtoBufferReader reader(&copy);
  return message->ParseFromZeroCopyStream(&reader);
}

template <typename T>
void Serialize(const T& message, grpc::ByteBuffer* bytes) {
  bytes->Clear();  // It may hold the previous message, already written.
  bool own_buffer;
  // Fails only for a message over 2 GiB, which nothing here builds.
  (void)grpc::SerializationTraits<T>::Serialize(message, bytes, &own_buffer);
}

// INVALID_ARGUMENT for bytes that are not a T; `what` says where they came.
template <typename T>
grpc::Status Unparseable(const grpc::ByteBuffer& bytes, std::string_view what) {
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      fmt::format("{} ({} bytes) is not a valid {}: send that message, "
                  "serialized with protobuf",
                  what, bytes.Length(), T::descriptor()->full_name()));
}

// A unary call: parses the request, hands it to `handle(request, finish)`,
// and finishes the RPC with whatever `finish(status, response)` is given,
// on any thread, exactly once.
template <typename Response>
using Finish = std::function<void(const grpc::Status&, const Response&)>;

template <typename Request, typename Response, typename Handle>
grpc::ServerUnaryReactor* ServeUnary(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request_bytes,
                                     grpc::ByteBuffer* response_bytes,
                                     Handle handle) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Request request;
  if (!Parse(*request_bytes, &request)) {
    reactor->Finish(Unparseable<Request>(*request_bytes, "the request"));
    return reactor;
  }
  handle(request,
         Finish<Response>([reactor, response_bytes](const grpc::Status& s,
                                                    const Response& response) {
           if (s.ok()) Serialize(response, response_bytes);
           reactor->Finish(s);
         }));
  return reactor;
}

}  // namespace baton::wire

#endif  // BATON_COORDINATOR_WIRE_H_
