// order_client: places an order, or prints a stock or funds level.
// Exit codes: 0 confirmed (or level printed), 2 cancelled, 1 error.

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "order.grpc.pb.h"

namespace order = baton::samples::order;

int main(int argc, char** argv) {
  CLI::App app{"order_client: the order sample's command line"};
  app.require_subcommand(1);
  std::string orders, at, sku, account, key;
  int64_t quantity = 1, price = 1;
  uint32_t timeout_ms = 0;
  bool refuse = false;
  CLI::App* place = app.add_subcommand("place", "Place an order (TCC)");
  place->add_option("--orders", orders, "order_service address")->required();
  place->add_option("--sku", sku)->required();
  place->add_option("--quantity", quantity)->check(CLI::PositiveNumber);
  place->add_option("--account", account)->required();
  place->add_option("--unit-price", price)->check(CLI::PositiveNumber);
  place->add_option("--timeout-ms", timeout_ms, "The transaction's timeout");
  place->add_flag("--refuse-payment-confirm", refuse,
                  "Demo: payment's confirm answers \"failed, do not retry\"");
  CLI::App* level = app.add_subcommand("level", "Print the units of a key");
  level->add_option("--at", at, "stock_service address")->required();
  level->add_option("--key", key)->required();
  CLI11_PARSE(app, argc, argv);

  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(60);
  if (*place) {
    auto stub = order::Orders::NewStub(
        grpc::CreateChannel(orders, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(deadline);
    order::PlaceOrderRequest request;
    request.set_sku(sku);
    request.set_quantity(quantity);
    request.set_account(account);
    request.set_unit_price(price);
    request.set_timeout_ms(timeout_ms);
    request.set_refuse_payment_confirm(refuse);
    order::PlaceOrderReply reply;
    grpc::Status s = stub->PlaceOrder(&context, request, &reply);
    if (!s.ok()) {
      std::cout << "error - " << s.error_message() << std::endl;
      return 1;
    }
    std::cout << reply.outcome() << " " << reply.xid() << " " << reply.reason()
              << std::endl;
    return reply.outcome() == "confirmed" ? 0 : 2;
  }
  auto stub = order::Units::NewStub(
      grpc::CreateChannel(at, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(deadline);
  order::LevelRequest request;
  request.set_key(key);
  order::LevelReply reply;
  grpc::Status s = stub->Level(&context, request, &reply);
  if (!s.ok()) {
    std::cout << "error - " << s.error_message() << std::endl;
    return 1;
  }
  std::cout << key << " available " << reply.available() << " held "
            << reply.held() << " spent " << reply.spent() << std::endl;
  return 0;
}
