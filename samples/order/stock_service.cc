// stock_service: units that can be reserved in a TCC try. The order sample
// runs it twice: as "inventory" (stock per SKU) and as "payment" (cents per
// account).

#include <CLI/CLI.hpp>

#include "baton/participant.h"
#include "baton/propagation.h"
#include "baton/tcc.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/signals.h"
#include "order.grpc.pb.h"
#include "samples/order/units_ledger.h"
#include "samples/sample_util.h"
#include "spdlog/spdlog.h"

namespace baton::samples {
namespace {

// On gRPC's callback API: a reservation holds no thread while the
// coordinator answers (Participant::TryAsync, docs/TCC.md).
class UnitsService final : public order::Units::CallbackService {
 public:
  UnitsService(UnitsLedger* ledger, Participant* participant,
               std::string resource)
      : ledger_(ledger),
        participant_(participant),
        resource_(std::move(resource)) {}

  grpc::ServerUnaryReactor* Reserve(grpc::CallbackServerContext* context,
                                    const order::ReserveRequest* request,
                                    order::ReserveReply* reply) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::optional<std::string> xid = ExtractXid(*context);
    if (!xid) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "reserve only inside a global transaction: send the "
                       "baton-xid metadata"));
      return reactor;
    }
    ActionValues action = {{"key", request->key()},
                           {"units", std::to_string(request->units())}};
    if (request->refuse_confirm()) action["refuse_confirm"] = "1";
    participant_->TryAsync(
        *xid, resource_, action,
        [reactor, reply](absl::StatusOr<uint64_t> branch) {
          if (!branch.ok())
            return reactor->Finish(ToGrpcStatus(branch.status()));
          reply->set_branch_id(*branch);
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

  // A read of the local ledger: quick enough for a callback thread.
  grpc::ServerUnaryReactor* Level(grpc::CallbackServerContext* context,
                                  const order::LevelRequest* request,
                                  order::LevelReply* reply) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::StatusOr<UnitsLedger::Level> level =
        ledger_->GetLevel(request->key());
    if (!level.ok()) {
      reactor->Finish(ToGrpcStatus(level.status()));
      return reactor;
    }
    reply->set_available(level->available);
    reply->set_held(level->held);
    reply->set_spent(level->spent);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  UnitsLedger* const ledger_;
  Participant* const participant_;
  const std::string resource_;
};

}  // namespace
}  // namespace baton::samples

int main(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:7420", listen = "127.0.0.1:0";
  std::string port_file, data_dir = "./stock-data", resource = "inventory";
  std::vector<std::string> seed;
  CLI::App app{
      "stock_service: reservable units, a TCC resource of the order sample"};
  app.add_option("--coordinator", coordinator, "batond address")
      ->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT for the Units API")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the bound port here");
  app.add_option("--data-dir", data_dir, "This service's LevelDB")
      ->capture_default_str();
  app.add_option("--resource", resource, "Baton resource name")
      ->capture_default_str();
  app.add_option("--seed", seed, "KEY=UNITS, applied only to a new ledger");
  bool mark_tries_started = false;
  app.add_flag("--mark-tries-started", mark_tries_started,
               "Mark each try started, in a synced write, before it runs (what "
               "a try acting outside the ledger needs; this one does not)");
  CLI11_PARSE(app, argc, argv);

  baton::BlockStopSignals();
  baton::SetupLogging("stock:" + resource, "info");
  std::unique_ptr<baton::samples::UnitsLedger> ledger;
  absl::Status s = baton::samples::UnitsLedger::Open(
      data_dir, baton::samples::ParseSeed(seed), &ledger);
  if (!s.ok()) {
    spdlog::critical("cannot open ledger: {}", s.ToString());
    return 1;
  }
  ledger->set_try_is_local(!mark_tries_started);
  auto participant = baton::Participant::Create(
      {.coordinator = coordinator, .service = "stock"});
  if (!participant.ok()) return 1;
  (*participant)
      ->AddTccResource(resource, ledger.get(), ledger->barrier())
      .IgnoreError();
  (*participant)->Start().IgnoreError();
  baton::samples::UnitsService service(ledger.get(), participant->get(),
                                       resource);
  return baton::samples::ServeUntilSignal(listen, port_file, &service);
}
