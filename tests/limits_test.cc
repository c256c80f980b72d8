// What a hostile or broken peer can cost a real batond through its streams
// and its largest inputs: each gets a bounded share and a clear status, and
// everyone else is served meanwhile. docs/SECURITY.md "Limits".
#define BOOST_TEST_MODULE limits

#include <grpcpp/grpcpp.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "baton/saga.h"
#include "baton/v1/participant_service.grpc.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "common/child_process.h"
#include "tests/support/bank_cluster.h"
#include "tests/support/raw_participant.h"

namespace baton::testing {
namespace {

int Code(const grpc::Status& s) { return static_cast<int>(s.error_code()); }
int Code(grpc::StatusCode c) { return static_cast<int>(c); }
bool Says(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The resident memory of process `pid`, in MiB.
int64_t ResidentMib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  int64_t kib = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> kib;
      break;
    }
  }
  return kib / 1024;
}

// Commits a transaction whose one branch `participant` serves, answering
// its command: proof that batond still serves callers and participants.
void CommitThrough(BankCluster& cluster, RawParticipant& participant,
                   const std::string& resource) {
  auto branch = BeginWithPreparedBranch(&cluster.client(), resource);
  BOOST_REQUIRE_MESSAGE(branch.ok(), branch.status());
  BOOST_REQUIRE(cluster.client().Commit(branch->xid, /*wait=*/false).ok());
  auto command = participant.NextCommand(20s);
  BOOST_REQUIRE(command.has_value());
  BOOST_REQUIRE(participant.Answer(*command, v1::COMMAND_OUTCOME_DONE));
  BOOST_TEST(cluster.WaitForStatus(branch->xid, v1::GLOBAL_STATUS_COMMITTED));
}

// Streams opened on a completion queue and left idle until Cancel.
class IdleStreams {
 public:
  explicit IdleStreams(const std::string& address)
      : channel_(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        participants_(v1::ParticipantService::NewStub(channel_)),
        callers_(v1::TransactionService::NewStub(channel_)) {}
  ~IdleStreams() { Cancel(); }

  void OpenAttach(int n) {
    for (int i = 0; i < n; ++i) {
      Call& c = Add();
      c.attach = participants_->PrepareAsyncAttach(&c.context, &cq_);
      c.attach->StartCall(&c);
      c.attach->Finish(&c.status, &c.status);
    }
  }
  void OpenPipelines(int n) {
    for (int i = 0; i < n; ++i) {
      Call& c = Add();
      c.pipeline = callers_->PrepareAsyncPipeline(&c.context, &cq_);
      c.pipeline->StartCall(&c);
      c.pipeline->Finish(&c.status, &c.status);
    }
  }

  // Waits until `count` streams have ended with `code`, for at most
  // `timeout`; the message of the last such is kept in `message`.
  bool WaitForEnded(grpc::StatusCode code, int count,
                    std::chrono::milliseconds timeout, std::string* message) {
    auto deadline = std::chrono::system_clock::now() + timeout;
    while (Ended(code, message) < count) {
      void* tag;
      bool ok;
      if (cq_.AsyncNext(&tag, &ok, deadline) !=
          grpc::CompletionQueue::NextStatus::GOT_EVENT) {
        return false;
      }
    }
    return true;
  }

  void Cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    for (auto& c : calls_) c->context.TryCancel();
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

 private:
  struct Call {
    grpc::ClientContext context;
    grpc::Status status{grpc::StatusCode::UNKNOWN, "open"};
    std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::ParticipantMessage,
                                                  v1::CoordinatorMessage>>
        attach;
    std::unique_ptr<
        grpc::ClientAsyncReaderWriter<v1::PipelineRequest, v1::PipelineReply>>
        pipeline;
  };
  Call& Add() {
    calls_.push_back(std::make_unique<Call>());
    return *calls_.back();
  }
  int Ended(grpc::StatusCode code, std::string* message) const {
    int n = 0;
    for (const auto& c : calls_) {
      if (c->status.error_code() == code &&
          c->status.error_message() != "open") {
        ++n;
        *message = c->status.error_message();
      }
    }
    return n;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ParticipantService::Stub> participants_;
  std::unique_ptr<v1::TransactionService::Stub> callers_;
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Call>> calls_;
  bool cancelled_ = false;
};

BOOST_AUTO_TEST_CASE(an_attach_that_never_says_hello_is_closed_in_time) {
  BankCluster cluster;
  cluster.StartCoordinator({}, {"--hello-timeout-ms", "500"});
  auto stub = v1::ParticipantService::NewStub(grpc::CreateChannel(
      cluster.CoordinatorAddress(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  auto stream = stub->Attach(&context);
  v1::CoordinatorMessage message;
  BOOST_TEST(!stream->Read(&message));
  grpc::Status s = stream->Finish();
  BOOST_TEST(Code(s) == Code(grpc::StatusCode::DEADLINE_EXCEEDED));
  BOOST_TEST(Says(s.error_message(), "no Hello within 500 ms"),
             s.error_message());
  BOOST_TEST(
      WaitFor([&] { return Says(cluster.Logs(), "no Hello within"); }, 10s));

  // A participant that does say Hello in time is served as ever.
  RawParticipant participant(cluster.CoordinatorAddress(),
                             {.resources = {"bank"}});
  BOOST_REQUIRE(participant.Attached());
  CommitThrough(cluster, participant, "bank");
}

BOOST_AUTO_TEST_CASE(thousands_of_idle_streams_are_capped_and_cost_little) {
  BankCluster cluster;
  cluster.StartCoordinator(
      {}, {"--max-attach-streams", "1501", "--max-pipeline-streams", "1500",
           "--hello-timeout-ms", "600000"});
  RawParticipant participant(cluster.CoordinatorAddress(),
                             {.resources = {"bank"}});
  BOOST_REQUIRE(participant.Attached());
  // The client's own Pipeline opens before the flood.
  CommitThrough(cluster, participant, "bank");
  const int64_t before_mib = ResidentMib(cluster.coordinator().pid());

  IdleStreams idle(cluster.CoordinatorAddress());
  idle.OpenAttach(2000);
  idle.OpenPipelines(2000);
  std::string message;
  BOOST_REQUIRE(idle.WaitForEnded(grpc::StatusCode::RESOURCE_EXHAUSTED, 1000,
                                  60s, &message));
  BOOST_TEST((Says(message, "--max-attach-streams") ||
              Says(message, "--max-pipeline-streams")),
             message);
  const int64_t after_mib = ResidentMib(cluster.coordinator().pid());
  BOOST_TEST_MESSAGE("batond resident memory: "
                     << before_mib << " MiB, " << after_mib
                     << " MiB with 3000 idle streams open");
  // A few KiB per stream, not megabytes (ASan builds inflate every
  // allocation, hence the margin).
  BOOST_TEST(after_mib - before_mib < 600);

  // The attached participant and callers are served all the while.
  CommitThrough(cluster, participant, "bank");
  BOOST_TEST(cluster.WaitForHealth(/*serving=*/true, 5s));

  // Once the idle streams go, their places are free again.
  idle.Cancel();
  BOOST_TEST(WaitFor(
      [&] {
        RawParticipant late(cluster.CoordinatorAddress(),
                            {.resources = {"late"}, .instance_id = "late-1"});
        return late.Attached(2s);
      },
      30s));
}

BOOST_AUTO_TEST_CASE(a_participant_that_never_reads_is_cut_off_not_buffered) {
  BankCluster cluster;
  cluster.StartCoordinator(
      {}, {"--participant-queue-mib", "1", "--participant-stall-ms", "1000"});
  // Says Hello, then never reads: grpc's windows and the socket fill, then
  // batond's queue for it.
  auto stub = v1::ParticipantService::NewStub(grpc::CreateChannel(
      cluster.CoordinatorAddress(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->Attach(&context);
  v1::ParticipantMessage hello;
  hello.mutable_hello()->set_service("stalled");
  hello.mutable_hello()->set_instance_id("stalled-1");
  hello.mutable_hello()->add_resources("slow");
  BOOST_REQUIRE(stream->Write(hello));

  const std::string data(60 << 10, 'd');
  std::vector<std::string> xids;
  for (int i = 0; i < 400; ++i) {
    auto branch = BeginWithPreparedBranch(&cluster.client(), "slow", data);
    BOOST_REQUIRE(branch.ok());
    BOOST_REQUIRE(cluster.client().Commit(branch->xid, /*wait=*/false).ok());
    xids.push_back(branch->xid);
    if (Says(cluster.Logs(), "is not reading its commands")) break;
  }
  BOOST_TEST(WaitFor(
      [&] { return Says(cluster.Logs(), "is not reading its commands"); },
      30s));
  const int64_t mib = ResidentMib(cluster.coordinator().pid());
  BOOST_TEST_MESSAGE("batond resident memory after the stall: " << mib
                                                                << " MiB");
  context.TryCancel();

  // A participant that reads gets every owed command (as fast as it reads
  // them: its queue fills too, but it makes progress), and all commit.
  RawParticipant reader(cluster.CoordinatorAddress(),
                        {.resources = {"slow"}, .instance_id = "reader-1"});
  BOOST_REQUIRE(reader.Attached());
  size_t answered = 0;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (answered < xids.size() &&
         std::chrono::steady_clock::now() < deadline) {
    if (auto c = reader.NextCommand(1s)) {
      reader.Answer(*c, v1::COMMAND_OUTCOME_DONE);
      ++answered;
    }
  }
  BOOST_TEST(answered >= xids.size());
  for (const std::string& xid : xids) {
    BOOST_TEST(cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_COMMITTED), xid);
  }
  BOOST_TEST(!Says(cluster.Logs(), "reader-1 (an anonymous peer) is not"));
  for (const std::string& xid : xids) {
    BOOST_TEST(cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_COMMITTED), xid);
  }
}

v1::SagaStep* AddStep(v1::SagaDefinition* d, const std::string& name) {
  v1::SagaStep* step = d->add_steps();
  step->set_name(name);
  step->mutable_action()->set_resource("nobody-serves-this");
  return step;
}

BOOST_AUTO_TEST_CASE(huge_and_deep_saga_definitions_get_clear_refusals) {
  BankCluster cluster;
  cluster.StartCoordinator();
  auto submit = [&](const v1::SagaDefinition& d) {
    v1::SubmitSagaRequest request;
    request.set_name("limits");
    *request.mutable_definition() = d;
    return cluster.client().SubmitSagaRaw(request);
  };

  // The deepest chain allowed, and the densest graph: every step after
  // every other. Both are accepted.
  v1::SagaDefinition chain, dense;
  for (int i = 0; i < 256; ++i) {
    v1::SagaStep* c = AddStep(&chain, "s" + std::to_string(i));
    if (i > 0) c->add_depends_on("s" + std::to_string(i - 1));
    v1::SagaStep* d = AddStep(&dense, "s" + std::to_string(i));
    for (int j = 0; j < i; ++j) d->add_depends_on("s" + std::to_string(j));
  }
  BOOST_TEST(submit(chain).ok());
  BOOST_TEST(submit(dense).ok());

  // One step too many.
  AddStep(&chain, "s256")->add_depends_on("s255");
  auto too_long = submit(chain);
  BOOST_TEST(absl::IsInvalidArgument(too_long.status()));
  BOOST_TEST(Says(std::string(too_long.status().message()), "257 steps"),
             too_long.status().ToString());

  // Payloads past the transaction's data limit (8 MiB in all).
  v1::SagaDefinition heavy;
  for (int i = 0; i < 160; ++i) {
    AddStep(&heavy, "h" + std::to_string(i))
        ->mutable_action()
        ->set_payload(std::string(60 << 10, 'p'));
  }
  auto too_heavy = submit(heavy);
  BOOST_TEST(absl::IsInvalidArgument(too_heavy.status()));
  BOOST_TEST(Says(std::string(too_heavy.status().message()), "payloads"),
             too_heavy.status().ToString());

  // JSON nested a hundred thousand deep: refused by the loader, which
  // must not recurse without bound.
  std::string deep = R"({"steps":[{"name":"a","action":{"resource":"r",)"
                     R"("payload":)" +
                     std::string(100'000, '[') + std::string(100'000, ']') +
                     "}}]}";
  auto parsed = ParseSagaJson(deep, nullptr);
  BOOST_TEST(absl::IsInvalidArgument(parsed.status()));
  BOOST_TEST(cluster.WaitForHealth(/*serving=*/true, 5s));
}

}  // namespace
}  // namespace baton::testing
