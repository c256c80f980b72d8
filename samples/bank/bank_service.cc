// bank_service: one account service of the sample bank. It keeps its accounts
// in its own LevelDB (the default) or, with --postgres, in its own PostgreSQL
// database, and joins Baton global transactions as a 2PC resource.

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <functional>

#include "bank.grpc.pb.h"
#include "baton/participant.h"
#include "baton/propagation.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/signals.h"
#include "samples/bank/ledger.h"
#include "samples/bank/postgres_ledger.h"
#include "samples/sample_util.h"
#include "spdlog/spdlog.h"

namespace baton::samples {
namespace {

// Reads an account, from whichever ledger the service keeps.
using BalanceReader =
    std::function<absl::StatusOr<Ledger::Balance>(const std::string& account)>;

class BankService final : public bank::Bank::Service {
 public:
  BankService(BalanceReader balance, Participant* participant,
              std::string resource)
      : balance_(std::move(balance)),
        participant_(participant),
        resource_(std::move(resource)) {}

  grpc::Status Debit(grpc::ServerContext* context,
                     const bank::MoveRequest* request,
                     bank::MoveReply* reply) override {
    return Move(*context, request->account(), -request->amount(), reply);
  }

  grpc::Status Credit(grpc::ServerContext* context,
                      const bank::MoveRequest* request,
                      bank::MoveReply* reply) override {
    return Move(*context, request->account(), request->amount(), reply);
  }

  grpc::Status Balance(grpc::ServerContext*,
                       const bank::BalanceRequest* request,
                       bank::BalanceReply* reply) override {
    absl::StatusOr<Ledger::Balance> b = balance_(request->account());
    if (!b.ok()) return ToGrpcStatus(b.status());
    reply->set_balance(b->balance);
    reply->set_held(b->held);
    reply->set_open_holds(b->open_holds);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Move(const grpc::ServerContext& context,
                    const std::string& account, int64_t delta,
                    bank::MoveReply* reply) {
    std::optional<std::string> xid = ExtractXid(context);
    if (!xid) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "money moves only inside a global transaction: "
                          "send the baton-xid metadata");
    }
    if (delta == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "amount must not be zero");
    }
    absl::StatusOr<uint64_t> branch = participant_->Enlist(
        *xid, resource_, Ledger::EncodeMove(account, delta));
    if (!branch.ok()) return ToGrpcStatus(branch.status());
    reply->set_branch_id(*branch);
    return grpc::Status::OK;
  }

  const BalanceReader balance_;
  Participant* const participant_;
  const std::string resource_;
};

}  // namespace
}  // namespace baton::samples

int main(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:7420";
  std::string listen = "127.0.0.1:0";
  std::string port_file, data_dir = "./bank-data", resource = "bank";
  std::string postgres, log_level = "info";
  int64_t lock_timeout_ms = 2000;
  std::vector<std::string> seed_items;
  CLI::App app{"bank_service: an account service of the Baton bank sample"};
  app.add_option("--coordinator", coordinator,
                 "batond address, or several nodes' separated by commas")
      ->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT to serve the Bank API on")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the bound port here");
  app.add_option("--data-dir", data_dir, "This service's LevelDB directory")
      ->capture_default_str();
  app.add_option("--postgres", postgres,
                 "Keep the accounts in this PostgreSQL database instead of "
                 "LevelDB (a libpq connection string, e.g. \"host=127.0.0.1 "
                 "port=5432 dbname=bank_a\"); --data-dir is then unused");
  app.add_option("--lock-timeout-ms", lock_timeout_ms,
                 "With --postgres: how long a branch waits for a locked "
                 "account before it fails")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--resource", resource, "The Baton resource name it serves")
      ->capture_default_str();
  app.add_option("--seed", seed_items,
                 "ACCOUNT=BALANCE, applied only to a new ledger");
  app.add_option("--log-level", log_level)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  baton::BlockStopSignals();
  baton::SetupLogging("bank:" + resource, log_level);
  auto seed = baton::samples::ParseSeed(seed_items);
  std::unique_ptr<baton::samples::Ledger> ledger;
  std::unique_ptr<baton::samples::PostgresLedger> pg_ledger;
  baton::XaResource* xa = nullptr;
  baton::samples::BalanceReader balance;
  if (postgres.empty()) {
    absl::Status s = baton::samples::Ledger::Open(data_dir, seed, &ledger);
    if (!s.ok()) {
      spdlog::critical("cannot open ledger: {}", s.ToString());
      return 1;
    }
    xa = ledger.get();
    balance = [&](const std::string& a) { return ledger->GetBalance(a); };
  } else {
    auto opened = baton::samples::PostgresLedger::Open(
        {.conninfo = postgres,
         .resource = resource,
         .seed = seed,
         .lock_timeout = std::chrono::milliseconds(lock_timeout_ms)});
    if (!opened.ok()) {
      spdlog::critical("cannot open the PostgreSQL ledger: {}",
                       opened.status().ToString());
      return 1;
    }
    pg_ledger = std::move(*opened);
    xa = pg_ledger->resource();
    balance = [&](const std::string& a) { return pg_ledger->GetBalance(a); };
  }
  auto participant = baton::Participant::Create(
      {.coordinator = coordinator, .service = "bank"});
  if (!participant.ok()) {
    spdlog::critical("{}", participant.status().ToString());
    return 1;
  }
  (*participant)->AddXaResource(resource, xa).IgnoreError();
  (*participant)->Start().IgnoreError();

  baton::samples::BankService service(balance, participant->get(), resource);
  return baton::samples::ServeUntilSignal(listen, port_file, &service);
}
