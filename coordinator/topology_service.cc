#include "coordinator/topology_service.h"

#include "coordinator/wire.h"

namespace baton {

grpc::ServerUnaryReactor* TopologyServiceImpl::GetTopology(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return wire::ServeUnary<v1::GetTopologyRequest, v1::Topology>(
      context, request, response,
      [this](const v1::GetTopologyRequest& r,
             wire::Finish<v1::Topology> finish) {
        finish(grpc::Status::OK,
               view_->Describe(r.self_only(),
                               r.has_caller() ? &r.caller() : nullptr));
      });
}

}  // namespace baton
