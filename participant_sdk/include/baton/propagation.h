#ifndef BATON_PROPAGATION_H_
#define BATON_PROPAGATION_H_

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include <optional>
#include <string>

// Carries the xid of a global transaction from a caller to the services it
// calls, in gRPC metadata, so they can join it:
//
//   // Caller:
//   grpc::ClientContext ctx;
//   baton::InjectXid(&ctx, txn->xid());
//   stub->Debit(&ctx, request, &reply);
//
//   // Called service:
//   std::optional<std::string> xid = baton::ExtractXid(*server_context);
//   if (xid) participant->Enlist(*xid, "bank-a", data);
namespace baton {

inline constexpr char kXidMetadataKey[] = "baton-xid";

void InjectXid(grpc::ClientContext* context, const std::string& xid);

// The xid the caller sent, or nullopt if the call is not in a transaction.
std::optional<std::string> ExtractXid(const grpc::ServerContextBase& context);

}  // namespace baton

#endif  // BATON_PROPAGATION_H_
