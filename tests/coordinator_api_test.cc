// The TransactionService contract against a real batond process: status
// codes, idempotence, timeouts, restarts and retention.
#define BOOST_TEST_MODULE coordinator_api
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>

#include "baton/v1/transaction_service.grpc.pb.h"
#include "health.grpc.pb.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

struct Coordinator {
  explicit Coordinator(const std::vector<std::string>& flags = {}) {
    cluster.StartCoordinator({}, flags);
  }
  TransactionClient& client() { return cluster.client(); }

  std::string Begin(uint32_t timeout_ms = 30'000) {
    v1::BeginRequest request;
    request.set_name("api-test");
    request.set_timeout_ms(timeout_ms);
    auto response = client().BeginRaw(request);
    BOOST_REQUIRE(response.ok());
    return response->xid();
  }

  absl::StatusOr<uint64_t> Register(const std::string& xid,
                                    const std::string& request_id = "") {
    v1::RegisterBranchRequest request;
    request.set_xid(xid);
    request.set_resource("nobody-serves-this");
    request.set_request_id(request_id);
    return client().RegisterBranch(request);
  }

  BankCluster cluster;
};

bool Says(const absl::Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

BOOST_AUTO_TEST_CASE(wrong_input_gets_the_right_code_and_a_clear_message) {
  Coordinator c;
  auto unknown = c.client().Commit("0-99-1", false);
  BOOST_TEST(absl::IsNotFound(unknown.status()));
  BOOST_TEST(Says(unknown.status(), "0-99-1"));
  auto malformed = c.client().GetTransaction("banana");
  BOOST_TEST(absl::IsInvalidArgument(malformed.status()));
  BOOST_TEST(Says(malformed.status(), "malformed"));

  v1::BeginRequest no_name;
  BOOST_TEST(absl::IsInvalidArgument(c.client().BeginRaw(no_name).status()));
  v1::BeginRequest too_long;
  too_long.set_name("x");
  too_long.set_timeout_ms(25u * 3600 * 1000);
  BOOST_TEST(absl::IsInvalidArgument(c.client().BeginRaw(too_long).status()));

  std::string xid = c.Begin();
  v1::RegisterBranchRequest big;
  big.set_xid(xid);
  big.set_resource("r");
  big.set_application_data(std::string(65 * 1024, 'x'));
  auto refused = c.client().RegisterBranch(big);
  BOOST_TEST(absl::IsInvalidArgument(refused.status()));
  BOOST_TEST(Says(refused.status(), "application_data"));
  BOOST_TEST(absl::IsNotFound(
      c.client().ReportBranch(xid, 7, v1::PHASE_ONE_OUTCOME_PREPARED, "")));
}

// Sagas come whole through SubmitSaga; the 2PC calls refuse them plainly.
BOOST_AUTO_TEST_CASE(sagas_are_submitted_whole_and_refuse_2pc_calls) {
  Coordinator c;
  v1::BeginRequest begin;
  begin.set_name("trip");
  begin.set_timeout_ms(30'000);
  begin.set_protocol(v1::PROTOCOL_SAGA);
  auto refused = c.client().BeginRaw(begin);
  BOOST_TEST(absl::IsInvalidArgument(refused.status()));
  BOOST_TEST(Says(refused.status(), "SubmitSaga"), refused.status());

  v1::SubmitSagaRequest cyclic;
  cyclic.set_name("trip");
  cyclic.set_timeout_ms(30'000);
  for (auto [name, dep] : {std::pair{"flight", "hotel"}, {"hotel", "flight"}}) {
    v1::SagaStep* step = cyclic.mutable_definition()->add_steps();
    step->set_name(name);
    step->mutable_action()->set_resource("nobody-serves-this");
    step->add_depends_on(dep);
  }
  auto bad = c.client().SubmitSagaRaw(cyclic);
  BOOST_TEST(absl::IsInvalidArgument(bad.status()));
  BOOST_TEST(Says(bad.status(), "cycle"), bad.status());

  v1::SubmitSagaRequest ok = cyclic;
  ok.mutable_definition()->mutable_steps(0)->clear_depends_on();
  ok.set_wait(false);
  auto submitted = c.client().SubmitSagaRaw(ok);
  BOOST_REQUIRE_MESSAGE(submitted.ok(), submitted.status());
  const std::string xid = submitted->xid();
  auto commit = c.client().Commit(xid, false);
  BOOST_TEST(absl::IsFailedPrecondition(commit.status()));
  BOOST_TEST(Says(commit.status(), "commits by itself"), commit.status());
  auto branch = c.Register(xid);
  BOOST_TEST(absl::IsFailedPrecondition(branch.status()));
  BOOST_TEST(Says(branch.status(), "takes no branches"), branch.status());

  // Nobody serves the steps, so nothing ran; the caller's rollback
  // compensates nothing and finishes at once.
  auto rolled = c.client().Rollback(xid, "changed my mind", true);
  BOOST_REQUIRE_MESSAGE(rolled.ok(), rolled.status());
  BOOST_TEST(*rolled == v1::GLOBAL_STATUS_ROLLED_BACK);
  auto record = c.client().GetTransaction(xid);
  BOOST_REQUIRE(record.ok());
  BOOST_TEST(record->reason() == "changed my mind");
  for (const v1::StepProgress& step : record->saga().steps()) {
    BOOST_TEST(step.status() == v1::STEP_STATUS_SKIPPED);
  }
}

BOOST_AUTO_TEST_CASE(decisions_are_idempotent_and_exclusive) {
  Coordinator c;
  std::string committed = c.Begin();
  auto first = c.client().Commit(committed, true);
  BOOST_REQUIRE(first.ok());
  BOOST_TEST(*first == v1::GLOBAL_STATUS_COMMITTED);
  BOOST_TEST(c.client().Commit(committed, false).ok());  // A retry.
  auto rollback = c.client().Rollback(committed, "too late", false);
  BOOST_TEST(absl::IsFailedPrecondition(rollback.status()));
  BOOST_TEST(absl::IsFailedPrecondition(c.Register(committed).status()));

  std::string rolled_back = c.Begin();
  BOOST_TEST(c.client().Rollback(rolled_back, "changed my mind", true).ok());
  BOOST_TEST(c.client().Rollback(rolled_back, "again", false).ok());
  auto commit = c.client().Commit(rolled_back, false);
  BOOST_TEST(absl::IsFailedPrecondition(commit.status()));
  BOOST_TEST(Says(commit.status(), "changed my mind"));
}

BOOST_AUTO_TEST_CASE(begin_and_register_are_idempotent_by_request_id) {
  Coordinator c;
  v1::BeginRequest request;
  request.set_name("retry-me");
  request.set_request_id("req-42");
  auto a = c.client().BeginRaw(request);
  auto b = c.client().BeginRaw(request);
  BOOST_REQUIRE(a.ok());
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(a->xid() == b->xid());

  auto first = c.Register(a->xid(), "branch-req-1");
  auto again = c.Register(a->xid(), "branch-req-1");
  auto other = c.Register(a->xid(), "branch-req-2");
  BOOST_REQUIRE(first.ok());
  BOOST_TEST(*first == *again);
  BOOST_TEST(*other == *first + 1);
  auto txn = c.client().GetTransaction(a->xid());
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->branches_size() == 2);
}

BOOST_AUTO_TEST_CASE(commit_with_an_unreported_branch_rolls_back_instead) {
  Coordinator c;
  std::string xid = c.Begin();
  BOOST_REQUIRE(c.Register(xid).ok());
  auto commit = c.client().Commit(xid, false);
  BOOST_TEST(absl::IsAborted(commit.status()));
  BOOST_TEST(Says(commit.status(), "never reported prepared"));
  auto txn = c.client().GetTransaction(xid);
  BOOST_REQUIRE(txn.ok());
  // Nobody serves the resource: the rollback waits for a participant.
  BOOST_TEST(txn->status() == v1::GLOBAL_STATUS_ROLLING_BACK);
}

BOOST_AUTO_TEST_CASE(an_open_transaction_past_its_deadline_rolls_back) {
  Coordinator c;
  std::string xid = c.Begin(/*timeout_ms=*/200);
  BOOST_TEST(c.cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK, 10s));
  auto txn = c.client().GetTransaction(xid);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->reason() == "timeout");
  BOOST_TEST(absl::IsFailedPrecondition(c.Register(xid).status()));
}

BOOST_AUTO_TEST_CASE(xids_stay_unique_across_restarts_and_records_survive) {
  Coordinator c;
  std::string before = c.Begin();
  BOOST_REQUIRE(c.client().Commit(before, true).ok());
  c.cluster.coordinator().Signal(SIGKILL);
  BOOST_TEST(c.cluster.coordinator().WaitExit(10s) >= 0);
  c.cluster.StartCoordinator();
  std::string after = c.Begin();
  BOOST_TEST(before != after);
  BOOST_TEST(before == "0-1-1");
  BOOST_TEST(after == "0-2-1");
  auto txn = c.client().GetTransaction(before);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(txn->status() == v1::GLOBAL_STATUS_COMMITTED);
}

BOOST_AUTO_TEST_CASE(an_open_transaction_is_rolled_back_by_a_restart) {
  Coordinator c;
  std::string xid = c.Begin();
  c.cluster.coordinator().Signal(SIGKILL);
  BOOST_TEST(c.cluster.coordinator().WaitExit(10s) >= 0);
  c.cluster.StartCoordinator();
  BOOST_TEST(c.cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK, 10s));
}

// A restarted batond listens while it loads its unfinished transactions.
// Until then health says NOT_SERVING, and a decision on a transaction not
// loaded yet is refused with UNAVAILABLE: acknowledging it on a copy would
// promise a commit the restart then rolls back.
BOOST_AUTO_TEST_CASE(calls_while_recovery_loads_are_refused_not_faked) {
  Coordinator c;
  std::string xid = c.Begin();
  c.cluster.coordinator().Signal(SIGKILL);
  BOOST_TEST(c.cluster.coordinator().WaitExit(10s) >= 0);
  c.cluster.LaunchCoordinator(
      {"BATON_FAILPOINTS=before_resume_unfinished=delay(5000)"});

  BOOST_REQUIRE_MESSAGE(c.cluster.WaitForHealth(false, 10s),
                        "never NOT_SERVING; batond said:\n"
                            << c.cluster.coordinator().Stderr());
  auto transactions = v1::TransactionService::NewStub(grpc::CreateChannel(
      c.cluster.CoordinatorAddress(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  v1::CommitRequest commit;
  commit.set_xid(xid);
  v1::CommitResponse reply;
  grpc::Status refused = transactions->Commit(&context, commit, &reply);
  BOOST_TEST((refused.error_code() == grpc::StatusCode::UNAVAILABLE),
             refused.error_message());
  BOOST_TEST(
      refused.error_message().find("still being loaded") != std::string::npos,
      refused.error_message());

  BOOST_REQUIRE(c.cluster.WaitForHealth(true, 20s));
  BOOST_TEST(c.cluster.WaitForStatus(xid, v1::GLOBAL_STATUS_ROLLED_BACK, 10s));
}

BOOST_AUTO_TEST_CASE(finished_records_are_purged_after_retention) {
  Coordinator c({"--finished-retention-s", "0"});
  std::string xid = c.Begin();
  BOOST_REQUIRE(c.client().Commit(xid, true).ok());
  BOOST_TEST(WaitFor(
      [&] { return absl::IsNotFound(c.client().GetTransaction(xid).status()); },
      10s));
}

BOOST_AUTO_TEST_CASE(serves_the_standard_health_service) {
  Coordinator c;
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      c.cluster.CoordinatorAddress(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = stub->Check(&context, request, &response);
  BOOST_TEST(s.ok(), s.error_message());
  BOOST_TEST(response.status() ==
             grpc::health::v1::HealthCheckResponse::SERVING);
}

// A 100 MiB message is refused by size, by gRPC before Baton parses
// anything, on a unary call and on the Pipeline; the node stays healthy
// and answers the next call.
BOOST_AUTO_TEST_CASE(a_100_mib_message_is_refused_and_costs_nothing_lasting) {
  Coordinator c;
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  auto stub = v1::TransactionService::NewStub(
      grpc::CreateCustomChannel(c.cluster.CoordinatorAddress(),
                                grpc::InsecureChannelCredentials(), args));
  v1::BeginRequest huge;
  huge.set_name(std::string(100 << 20, 'x'));
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::BeginResponse response;
    grpc::Status s = stub->Begin(&context, huge, &response);
    BOOST_TEST(static_cast<int>(s.error_code()) ==
               static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    auto stream = stub->Pipeline(&context);
    v1::PipelineRequest request;
    *request.add_calls()->mutable_begin() = huge;
    stream->Write(request);
    v1::PipelineReply response;
    while (stream->Read(&response)) {
    }
    grpc::Status s = stream->Finish();
    BOOST_TEST(static_cast<int>(s.error_code()) ==
               static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  }
  BOOST_TEST(c.cluster.WaitForHealth(/*serving=*/true, 5s));
  BOOST_TEST(!c.Begin().empty());
}

}  // namespace
}  // namespace baton::testing
