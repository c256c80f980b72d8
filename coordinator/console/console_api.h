#ifndef BATON_COORDINATOR_CONSOLE_CONSOLE_API_H_
#define BATON_COORDINATOR_CONSOLE_CONSOLE_API_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/v1/admin_service.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "common/fleet.h"
#include "coordinator/http_server.h"

// The console's JSON API over batond's own gRPC services (console.h). Each
// call answers through `respond`, once, on a gRPC thread; bodies are the
// services' messages in protobuf's JSON mapping with the proto field names.
namespace baton::console {

using Respond = std::function<void(HttpResponse)>;
// Query parameters, percent-decoded; a name may repeat.
using Query = std::multimap<std::string, std::string>;

// Stubs for one node.
struct NodeStubs {
  std::unique_ptr<v1::AdminService::Stub> admin;
  std::unique_ptr<v1::TransactionService::Stub> transactions;
};

// The stubs the console calls each node with: this node's over its
// in-process channels, another's made on first use. Calls hold their
// node's stubs while in flight, so they may outlive the console and a
// node's leaving the fleet. Thread-safe.
class ConsoleNodes {
 public:
  ConsoleNodes(std::string self_address, std::shared_ptr<NodeStubs> self,
               std::shared_ptr<grpc::ChannelCredentials> peer_credentials);

  std::shared_ptr<NodeStubs> At(const std::string& address);
  // Forgets the stubs of addresses `fleet` does not name, so nodes that
  // came and went leave no channel behind.
  void KeepOnly(const Fleet& fleet);

 private:
  const std::string self_address_;
  const std::shared_ptr<NodeStubs> self_;
  const std::shared_ptr<grpc::ChannelCredentials> peer_credentials_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<NodeStubs>> peers_ ABSL_GUARDED_BY(mu_);
};

// What every call needs: the nodes, as of this request, and the signed-in
// operator. Calls about one xid go to its shard's owner; lists, counts and
// participants span every node, and a node that does not answer is named
// in the body's "missing" rather than left out silently.
struct Caller {
  std::shared_ptr<const Fleet> fleet;
  std::shared_ptr<ConsoleNodes> nodes;
  // The whole topology, for the overview; nullopt on a lone node.
  std::optional<v1::Topology> topology;
  std::string admin_token;  // The operator's, sent with every call.
  std::string actor;        // For audit records.
};

HttpResponse Json(int status, std::string body);
// {"error": message}, for a person to read.
HttpResponse JsonError(int status, std::string_view message);
// Percent-decoded `query` ("a=1&b=x%20y").
Query ParseQuery(std::string_view query);
// `+` is a space in a query, itself in a path.
std::string PercentDecode(std::string_view text, bool plus_is_space = true);

// GetStats of every node, merged: the oldest unfinished transaction, the
// chart's seconds summed across nodes, and the topology.
void Overview(const Caller& caller, Respond respond);
// ListTransactions with batonctl's filter words: status (repeated),
// protocol, name, older_than, resource, limit, page_token. 400 naming a
// parameter or word it does not know.
void ListTransactions(const Caller& caller, const Query& query,
                      int64_t now_unix_ms, Respond respond);
void ShowTransaction(const Caller& caller, const std::string& xid,
                     Respond respond);
// retry, pause, resume, force-commit, force-rollback or forget on `xid`,
// with the operator's reason (required for the last three, as batonctl
// requires it). 404 for another action.
void Act(const Caller& caller, const std::string& xid, std::string_view action,
         const std::string& reason, Respond respond);
void Participants(const Caller& caller, Respond respond);

}  // namespace baton::console

#endif  // BATON_COORDINATOR_CONSOLE_CONSOLE_API_H_
