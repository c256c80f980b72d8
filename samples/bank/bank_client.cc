// bank_client: moves money between two account services in one Baton 2PC
// global transaction, or prints a balance.
//
// Exit codes: 0 committed (or balance printed), 2 rolled back, 1 error.
// The first line of output names the outcome and the xid.

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "bank.grpc.pb.h"
#include "baton/client.h"
#include "baton/propagation.h"
#include "common/grpc_status.h"
#include "common/logging.h"

namespace {

using baton::samples::bank::Bank;

struct Endpoint {
  std::string address;
  std::string account;
};

Endpoint ParseEndpoint(const std::string& text) {
  size_t slash = text.rfind('/');
  if (slash == std::string::npos) {
    throw CLI::ValidationError("endpoint",
                               "expected HOST:PORT/ACCOUNT: " + text);
  }
  return {text.substr(0, slash), text.substr(slash + 1)};
}

absl::Status Move(const Endpoint& at, const std::string& xid, int64_t amount,
                  bool debit) {
  auto stub = Bank::NewStub(
      grpc::CreateChannel(at.address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  baton::InjectXid(&context, xid);
  baton::samples::bank::MoveRequest request;
  request.set_account(at.account);
  request.set_amount(amount);
  baton::samples::bank::MoveReply reply;
  grpc::Status s = debit ? stub->Debit(&context, request, &reply)
                         : stub->Credit(&context, request, &reply);
  return baton::FromGrpcStatus(s);
}

int Transfer(const std::string& coordinator, const Endpoint& from,
             const Endpoint& to, int64_t amount, bool rollback, bool wait) {
  auto client = baton::TransactionClient::Connect({.coordinator = coordinator});
  if (!client.ok()) {
    std::cout << "error - " << client.status() << std::endl;
    return 1;
  }
  auto txn = (*client)->Begin("transfer", std::chrono::seconds(30));
  if (!txn.ok()) {
    std::cout << "error - " << txn.status() << std::endl;
    return 1;
  }
  const std::string xid = (*txn)->xid();
  absl::Status s = Move(from, xid, amount, /*debit=*/true);
  if (s.ok()) s = Move(to, xid, amount, /*debit=*/false);
  if (!s.ok() || rollback) {
    std::string reason =
        s.ok() ? "asked to roll back" : std::string(s.message());
    absl::Status r = (*txn)->Rollback(reason, wait);
    if (!r.ok()) {
      std::cout << "error " << xid << " " << r << std::endl;
      return 1;
    }
    std::cout << "rolled-back " << xid << " " << reason << std::endl;
    return 2;
  }
  s = (*txn)->Commit(wait);
  if (absl::IsAborted(s)) {
    std::cout << "rolled-back " << xid << " " << s.message() << std::endl;
    return 2;
  }
  if (!s.ok()) {
    std::cout << "error " << xid << " " << s << std::endl;
    return 1;
  }
  std::cout << "committed " << xid << std::endl;
  return 0;
}

int PrintBalance(const Endpoint& at) {
  auto stub = Bank::NewStub(
      grpc::CreateChannel(at.address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  baton::samples::bank::BalanceRequest request;
  request.set_account(at.account);
  baton::samples::bank::BalanceReply reply;
  grpc::Status s = stub->Balance(&context, request, &reply);
  if (!s.ok()) {
    std::cout << "error - " << s.error_message() << std::endl;
    return 1;
  }
  std::cout << at.account << " " << reply.balance() << " (held " << reply.held()
            << ")" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:7420";
  CLI::App app{"bank_client: transfer money with a Baton 2PC transaction"};
  app.add_option("--coordinator", coordinator,
                 "batond address, or several nodes' separated by commas")
      ->capture_default_str();
  app.require_subcommand(1);

  std::string from, to, at;
  int64_t amount = 0;
  bool rollback = false, no_wait = false;
  CLI::App* transfer = app.add_subcommand("transfer", "Move money atomically");
  transfer->add_option("--from", from, "HOST:PORT/ACCOUNT to debit")
      ->required();
  transfer->add_option("--to", to, "HOST:PORT/ACCOUNT to credit")->required();
  transfer->add_option("--amount", amount, "How much")
      ->required()
      ->check(CLI::PositiveNumber);
  transfer->add_flag("--rollback", rollback,
                     "Roll back after both legs prepared (a demo of undo)");
  transfer->add_flag("--no-wait", no_wait,
                     "Return once the decision is durable, before phase two");
  CLI::App* balance =
      app.add_subcommand("balance", "Print an account's balance");
  balance->add_option("--account", at, "HOST:PORT/ACCOUNT")->required();
  CLI11_PARSE(app, argc, argv);

  baton::SetupLogging("bank_client", "warn");
  if (*transfer) {
    return Transfer(coordinator, ParseEndpoint(from), ParseEndpoint(to), amount,
                    rollback, !no_wait);
  }
  return PrintBalance(ParseEndpoint(at));
}
