// travel_client: books a trip as a saga. Flight, hotel and car are booked in
// parallel (or in that order with --ordered); payment runs once all three
// succeeded. If any step fails for good, the ones that ran are compensated
// in reverse order.
//
// Exit codes: 0 committed, 2 rolled back, 3 still running or needs
// attention, 1 the call failed.

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "baton/saga.h"
#include "fmt/format.h"
#include "samples/travel/step_payload.h"
#include "travel.grpc.pb.h"

namespace baton::samples {
namespace {

struct BookOptions {
  std::string trip = "trip";
  std::map<std::string, StepPayload> steps;  // flight, hotel, car, payment
  std::vector<std::string> knobs;            // STEP:NAME=VALUE
  bool ordered = false, forward = false, no_wait = false;
  uint32_t max_attempts = 1, max_parallel = 0;
  int64_t backoff_ms = 100, step_timeout_ms = 0, timeout_ms = 0;
  int64_t wait_ms = 30'000;
  std::string request_id, definition_file;
};

std::string StatusWord(v1::GlobalStatus status) {
  switch (status) {
    case v1::GLOBAL_STATUS_COMMITTED:
      return "committed";
    case v1::GLOBAL_STATUS_ROLLED_BACK:
      return "rolled-back";
    case v1::GLOBAL_STATUS_COMMIT_STUCK:
      return "commit-stuck";
    case v1::GLOBAL_STATUS_ROLLBACK_STUCK:
      return "rollback-stuck";
    default:
      return "running";
  }
}

absl::Status ApplyKnobs(BookOptions* o) {
  for (const std::string& knob : o->knobs) {
    size_t colon = knob.find(':');
    auto step = o->steps.find(knob.substr(0, colon));
    if (colon == std::string::npos || step == o->steps.end()) {
      return absl::InvalidArgumentError(fmt::format(
          "--knob '{}' is not STEP:NAME=VALUE with STEP one of flight, hotel, "
          "car, payment",
          knob));
    }
    if (absl::Status s = SetKnob(knob.substr(colon + 1), &step->second);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

SagaBuilder BuildTrip(const BookOptions& o) {
  const std::map<std::string, std::string> resources = {
      {"flight", "flights"},
      {"hotel", "hotels"},
      {"car", "cars"},
      {"payment", "payments"}};
  SagaBuilder trip("book-" + o.trip);
  std::string previous;
  for (const char* name : {"flight", "hotel", "car", "payment"}) {
    std::string payload = EncodeStepPayload(o.steps.at(name));
    const std::string& resource = resources.at(name);
    auto step = trip.Step(name, {resource, payload}, {resource, payload});
    step.Retry({.max_attempts = o.max_attempts,
                .initial_backoff = std::chrono::milliseconds(o.backoff_ms)});
    if (o.step_timeout_ms > 0) {
      step.Timeout(std::chrono::milliseconds(o.step_timeout_ms));
    }
    if (std::string(name) == "payment") {
      step.After({"flight", "hotel", "car"});
    } else if (o.ordered && !previous.empty()) {
      step.After({previous});
    }
    previous = name;
  }
  trip.MaxParallel(o.max_parallel);
  trip.Timeout(std::chrono::milliseconds(o.timeout_ms));
  if (o.forward) trip.ForwardRecovery();
  return trip;
}

int Book(const std::string& coordinator, BookOptions o) {
  if (absl::Status s = ApplyKnobs(&o); !s.ok()) {
    std::cerr << "travel_client: " << s.message() << "\n";
    return 1;
  }
  auto client = TransactionClient::Connect(
      {.coordinator = coordinator, .max_attempts = 20});
  if (!client.ok()) return 1;
  SagaBuilder trip = BuildTrip(o);
  if (!o.definition_file.empty()) {
    std::ifstream in(o.definition_file);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = ParseSagaJson(text.str(), nullptr);
    if (!parsed.ok()) {
      std::cerr << "travel_client: " << parsed.status().message() << "\n";
      return 1;
    }
    trip = SagaBuilder("book-" + o.trip, *std::move(parsed));
    trip.Timeout(std::chrono::milliseconds(o.timeout_ms));
  }
  auto outcome =
      SubmitSaga(**client, trip,
                 {.wait = !o.no_wait,
                  .wait_timeout = std::chrono::milliseconds(o.wait_ms),
                  .request_id = o.request_id});
  if (!outcome.ok()) {
    std::cerr << "travel_client: " << outcome.status().message() << "\n";
    return 1;
  }
  std::cout << StatusWord(outcome->status()) << " " << outcome->xid()
            << (outcome->reason().empty() ? "" : " " + outcome->reason())
            << "\n";
  if (outcome->status() == v1::GLOBAL_STATUS_COMMITTED) return 0;
  if (outcome->status() == v1::GLOBAL_STATUS_ROLLED_BACK) return 2;
  return 3;
}

int Level(const std::string& service, const std::string& key) {
  auto stub = travel::Travel::NewStub(
      grpc::CreateChannel(service, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  travel::LevelRequest request;
  request.set_key(key);
  travel::LevelReply reply;
  grpc::Status s = stub->Level(&context, request, &reply);
  if (!s.ok()) {
    std::cerr << "travel_client: " << s.error_message() << "\n";
    return 1;
  }
  std::cout << fmt::format("{} available {} booked {}\n", key,
                           reply.available(), reply.booked());
  return 0;
}

}  // namespace
}  // namespace baton::samples

int main(int argc, char** argv) {
  using baton::samples::BookOptions;
  std::string coordinator = "127.0.0.1:7420";
  BookOptions o;
  o.steps = {{"flight", {.key = "LH-400"}},
             {"hotel", {.key = "grand"}},
             {"car", {.key = "compact"}},
             {"payment", {.key = "alice", .units = 100}}};
  CLI::App app{"travel_client: book trips as sagas"};
  app.require_subcommand(1);
  app.add_option("--coordinator", coordinator, "batond address")
      ->capture_default_str();
  CLI::App* book = app.add_subcommand("book", "Book flight, hotel, car, pay");
  book->add_option("--trip", o.trip, "Names the saga (book-TRIP)");
  book->add_option("--flight", o.steps["flight"].key, "Flight to book");
  book->add_option("--hotel", o.steps["hotel"].key, "Hotel to book");
  book->add_option("--car", o.steps["car"].key, "Car class to book");
  book->add_option("--account", o.steps["payment"].key, "Account to charge");
  book->add_option("--amount", o.steps["payment"].units, "Price to charge");
  book->add_flag("--ordered", o.ordered,
                 "Book flight, then hotel, then car (default: in parallel)");
  book->add_option("--knob", o.knobs,
                   "STEP:NAME=VALUE misbehaviour, e.g. payment:act_fail=1, "
                   "car:act_retries=2, hotel:compensate_retries=3");
  book->add_option("--max-attempts", o.max_attempts, "Attempts per action");
  book->add_option("--backoff-ms", o.backoff_ms, "First retry delay");
  book->add_option("--step-timeout-ms", o.step_timeout_ms,
                   "Per attempt (0: the coordinator's default)");
  book->add_option("--timeout-ms", o.timeout_ms, "Whole saga (0: default)");
  book->add_option("--max-parallel", o.max_parallel, "0: no limit");
  book->add_flag("--forward", o.forward, "Forward recovery: never compensate");
  book->add_option("--request-id", o.request_id, "Idempotency key");
  book->add_flag("--no-wait", o.no_wait, "Answer once submitted");
  book->add_option("--wait-ms", o.wait_ms, "How long to wait for the outcome");
  book->add_option("--definition", o.definition_file,
                   "Run this JSON SagaDefinition instead of the built-in trip");
  std::string service, key;
  CLI::App* level = app.add_subcommand("level", "What a service has left");
  level->add_option("--service", service, "HOST:PORT of a travel_service")
      ->required();
  level->add_option("--key", key, "Flight, hotel, car or account")->required();
  CLI11_PARSE(app, argc, argv);
  if (*level) return baton::samples::Level(service, key);
  return baton::samples::Book(coordinator, o);
}
