// travel_service: one supplier of the travel sample (flights, hotels, cars or
// payments), serving its saga steps and a Level API.

#include <CLI/CLI.hpp>

#include "baton/participant.h"
#include "common/logging.h"
#include "common/signals.h"
#include "samples/sample_util.h"
#include "samples/travel/inventory.h"
#include "spdlog/spdlog.h"
#include "travel.grpc.pb.h"

namespace baton::samples {
namespace {

class TravelService final : public travel::Travel::Service {
 public:
  explicit TravelService(Inventory* inventory) : inventory_(inventory) {}

  grpc::Status Level(grpc::ServerContext*, const travel::LevelRequest* request,
                     travel::LevelReply* reply) override {
    Inventory::Level level = inventory_->GetLevel(request->key());
    reply->set_available(level.available);
    reply->set_booked(level.booked);
    return grpc::Status::OK;
  }

 private:
  Inventory* const inventory_;
};

}  // namespace
}  // namespace baton::samples

int main(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:7420", listen = "127.0.0.1:0";
  std::string port_file, data_dir = "./travel-data", resource = "flights";
  std::string journal;
  std::vector<std::string> seed;
  CLI::App app{"travel_service: a supplier whose bookings are saga steps"};
  app.add_option("--coordinator", coordinator, "batond address")
      ->capture_default_str();
  app.add_option("--listen", listen, "HOST:PORT for the Travel API")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the bound port here");
  app.add_option("--data-dir", data_dir, "This service's LevelDB")
      ->capture_default_str();
  app.add_option("--resource", resource,
                 "Baton resource name: flights, hotels, cars, payments, ...")
      ->capture_default_str();
  app.add_option("--seed", seed, "KEY=UNITS, applied only to a new store");
  app.add_option("--journal", journal,
                 "Append a line per applied action and compensation here");
  CLI11_PARSE(app, argc, argv);

  baton::BlockStopSignals();
  baton::SetupLogging("travel:" + resource, "info");
  std::unique_ptr<baton::samples::Inventory> inventory;
  absl::Status s = baton::samples::Inventory::Open(
      data_dir, resource, baton::samples::ParseSeed(seed), journal, &inventory);
  if (!s.ok()) {
    spdlog::critical("cannot open inventory: {}", s.ToString());
    return 1;
  }
  auto participant = baton::Participant::Create(
      {.coordinator = coordinator, .service = "travel-" + resource});
  if (!participant.ok()) return 1;
  (*participant)
      ->AddSagaResource(resource, inventory.get(), inventory->barrier())
      .IgnoreError();
  (*participant)->Start().IgnoreError();
  baton::samples::TravelService service(inventory.get());
  return baton::samples::ServeUntilSignal(listen, port_file, &service);
}
