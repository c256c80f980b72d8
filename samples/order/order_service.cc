// order_service: places an order as one TCC global transaction: reserve the
// payment, reserve the stock, then confirm both (or cancel both).

#include <CLI/CLI.hpp>

#include "baton/client.h"
#include "baton/propagation.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/signals.h"
#include "order.grpc.pb.h"
#include "samples/sample_util.h"
#include "spdlog/spdlog.h"

namespace baton::samples {
namespace {

using namespace std::chrono_literals;

class OrderService final : public order::Orders::Service {
 public:
  OrderService(TransactionClient* client, const std::string& inventory,
               const std::string& payment)
      : client_(client),
        inventory_(order::Units::NewStub(grpc::CreateChannel(
            inventory, grpc::InsecureChannelCredentials()))),
        payment_(order::Units::NewStub(grpc::CreateChannel(
            payment, grpc::InsecureChannelCredentials()))) {}

  grpc::Status PlaceOrder(grpc::ServerContext*,
                          const order::PlaceOrderRequest* request,
                          order::PlaceOrderReply* reply) override {
    auto timeout = std::chrono::milliseconds(
        request->timeout_ms() == 0 ? 10'000 : request->timeout_ms());
    auto txn = client_->Begin("place-order", timeout, v1::PROTOCOL_TCC);
    if (!txn.ok()) return ToGrpcStatus(txn.status());
    reply->set_xid((*txn)->xid());
    absl::Status s = Reserve(payment_.get(), (*txn)->xid(), request->account(),
                             request->quantity() * request->unit_price(),
                             request->refuse_payment_confirm());
    if (s.ok()) {
      s = Reserve(inventory_.get(), (*txn)->xid(), request->sku(),
                  request->quantity(), false);
    }
    if (!s.ok()) {
      (*txn)->Rollback(std::string(s.message())).IgnoreError();
      reply->set_outcome("cancelled");
      reply->set_reason(std::string(s.message()));
      return grpc::Status::OK;
    }
    s = (*txn)->Commit();
    if (absl::IsAborted(s) || absl::IsFailedPrecondition(s)) {
      reply->set_outcome("cancelled");
      reply->set_reason(std::string(s.message()));
      return grpc::Status::OK;
    }
    if (!s.ok()) return ToGrpcStatus(s);
    reply->set_outcome("confirmed");
    return grpc::Status::OK;
  }

 private:
  absl::Status Reserve(order::Units::Stub* stub, const std::string& xid,
                       const std::string& key, int64_t units,
                       bool refuse_confirm) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    InjectXid(&context, xid);
    order::ReserveRequest request;
    request.set_key(key);
    request.set_units(units);
    request.set_refuse_confirm(refuse_confirm);
    order::ReserveReply reply;
    return FromGrpcStatus(stub->Reserve(&context, request, &reply));
  }

  TransactionClient* const client_;
  std::unique_ptr<order::Units::Stub> inventory_, payment_;
};

}  // namespace
}  // namespace baton::samples

int main(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:7420", listen = "127.0.0.1:0";
  std::string port_file, data_dir, inventory, payment;
  CLI::App app{"order_service: places orders as TCC global transactions"};
  app.add_option("--coordinator", coordinator, "batond address")
      ->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT for the Orders API")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the bound port here");
  app.add_option("--data-dir", data_dir,
                 "Unused: the order service is stateless");
  app.add_option("--inventory", inventory, "inventory stock_service address")
      ->required();
  app.add_option("--payment", payment, "payment stock_service address")
      ->required();
  CLI11_PARSE(app, argc, argv);

  baton::BlockStopSignals();
  baton::SetupLogging("orders", "info");
  auto client = baton::TransactionClient::Connect({.coordinator = coordinator});
  if (!client.ok()) return 1;
  baton::samples::OrderService service(client->get(), inventory, payment);
  return baton::samples::ServeUntilSignal(listen, port_file, &service);
}
