#ifndef BATON_COORDINATOR_TOPOLOGY_SERVICE_H_
#define BATON_COORDINATOR_TOPOLOGY_SERVICE_H_

#include "baton/v1/topology.grpc.pb.h"
#include "coordinator/cluster_view.h"

namespace baton {

// TopologyService on gRPC's raw callback API (wire.h), answered from the
// node's ClusterView at once: no store access, no blocking.
class TopologyServiceImpl final
    : public v1::TopologyService::WithRawCallbackMethod_GetTopology<
          v1::TopologyService::Service> {
 public:
  // `view` must outlive the service.
  explicit TopologyServiceImpl(ClusterView* view) : view_(view) {}

  grpc::ServerUnaryReactor* GetTopology(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;

 private:
  ClusterView* const view_;
};

}  // namespace baton

#endif  // BATON_COORDINATOR_TOPOLOGY_SERVICE_H_
