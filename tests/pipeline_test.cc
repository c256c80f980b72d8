// TransactionService.Pipeline against a real batond process: many calls in
// one message, answers matched by call id, per-call errors with the unary
// codes, the per-message limit, and calls cut off by a kill -9 of batond.
#define BOOST_TEST_MODULE pipeline
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <functional>
#include <future>
#include <map>
#include <set>

#include "baton/v1/transaction_service.grpc.pb.h"
#include "participant_sdk/internal/pipeline_client.h"
#include "participant_sdk/internal/rpc.h"
#include "tests/support/bank_cluster.h"

namespace baton::testing {
namespace {

using namespace std::chrono_literals;

v1::PipelineCall BeginCall(uint64_t id, const std::string& name) {
  v1::PipelineCall call;
  call.set_call_id(id);
  call.mutable_begin()->set_name(name);
  call.mutable_begin()->set_timeout_ms(30'000);
  return call;
}

// Sends `request` on a fresh stream and returns every result by call id,
// once `expected` results came (or the stream ended).
std::map<uint64_t, v1::PipelineResult> RoundTrip(
    const std::string& address, const v1::PipelineRequest& request,
    size_t expected) {
  auto stub = v1::TransactionService::NewStub(
      internal::MakeCoordinatorChannel(address, {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  auto stream = stub->Pipeline(&context);
  BOOST_REQUIRE(stream->Write(request));
  std::map<uint64_t, v1::PipelineResult> results;
  v1::PipelineReply reply;
  while (results.size() < expected && stream->Read(&reply)) {
    for (const v1::PipelineResult& r : reply.results()) {
      BOOST_TEST(results.count(r.call_id()) == 0u, "answered twice");
      results[r.call_id()] = r;
    }
  }
  stream->WritesDone();
  BOOST_TEST(stream->Finish().ok());
  return results;
}

std::chrono::steady_clock::time_point InTenSeconds() {
  return std::chrono::steady_clock::now() + 10s;
}

// Begins a transaction whose one branch nobody serves, reports it prepared,
// and sends Commit waiting for phase two, which never comes: the commit stays
// unanswered until the stream ends, and then `ended` gets its status.
// Returns the xid once the decision is durable.
std::string CommitThatWaits(BankCluster* cluster,
                            internal::PipelineClient* pipeline,
                            std::promise<grpc::Status>* ended) {
  v1::PipelineResult result;
  BOOST_REQUIRE(
      pipeline->CallAndWait(BeginCall(0, "waits"), InTenSeconds(), &result)
          .ok());
  std::string xid = result.begin().xid();
  v1::PipelineCall call;
  call.mutable_register_branch()->set_xid(xid);
  call.mutable_register_branch()->set_resource("nobody-serves-this");
  BOOST_REQUIRE(pipeline->CallAndWait(call, InTenSeconds(), &result).ok());
  call.Clear();
  call.mutable_report_branch()->set_xid(xid);
  call.mutable_report_branch()->set_branch_id(
      result.register_branch().branch_id());
  call.mutable_report_branch()->set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
  BOOST_REQUIRE(pipeline->CallAndWait(call, InTenSeconds(), &result).ok());
  call.Clear();
  call.mutable_commit()->set_xid(xid);
  call.mutable_commit()->set_wait(true);
  call.mutable_commit()->set_wait_timeout_ms(60'000);
  pipeline->Call(call, [ended](const grpc::Status& s, v1::PipelineResult*) {
    ended->set_value(s);
  });
  BOOST_REQUIRE(cluster->WaitForStatus(xid, v1::GLOBAL_STATUS_COMMITTING, 10s));
  return xid;
}

BOOST_AUTO_TEST_CASE(a_batch_of_calls_is_answered_call_by_call) {
  BankCluster cluster;
  cluster.StartCoordinator();
  v1::PipelineRequest request;
  for (uint64_t id = 100; id < 150; ++id) {
    *request.add_calls() = BeginCall(id, "batch");
  }
  v1::PipelineCall* unnamed = request.add_calls();  // INVALID_ARGUMENT
  *unnamed = BeginCall(7, "");
  v1::PipelineCall* unknown = request.add_calls();  // NOT_FOUND
  unknown->set_call_id(8);
  unknown->mutable_commit()->set_xid("0-99-1");
  request.add_calls()->set_call_id(9);  // No request at all.

  auto results = RoundTrip(cluster.CoordinatorAddress(), request, 53);
  BOOST_REQUIRE_EQUAL(results.size(), 53u);
  std::set<std::string> xids;
  for (uint64_t id = 100; id < 150; ++id) {
    const v1::PipelineResult& r = results[id];
    BOOST_TEST(r.code() == grpc::StatusCode::OK);
    BOOST_TEST(r.has_begin());
    xids.insert(r.begin().xid());
  }
  BOOST_TEST(xids.size() == 50u);
  BOOST_TEST(results[7].code() == grpc::StatusCode::INVALID_ARGUMENT);
  BOOST_TEST(results[7].message().find("name") != std::string::npos);
  BOOST_TEST(results[8].code() == grpc::StatusCode::NOT_FOUND);
  BOOST_TEST(results[8].message().find("0-99-1") != std::string::npos);
  BOOST_TEST(results[9].code() == grpc::StatusCode::INVALID_ARGUMENT);
  BOOST_TEST(results[9].message().find("no request") != std::string::npos);
  // Every Begin that was answered OK is durable and open.
  for (const std::string& xid : xids) {
    auto txn = cluster.GetTransaction(xid);
    BOOST_REQUIRE(txn.ok());
    BOOST_TEST(txn->status() == v1::GLOBAL_STATUS_BEGUN);
  }
}

BOOST_AUTO_TEST_CASE(calls_past_the_per_message_limit_are_refused_not_run) {
  BankCluster cluster;
  cluster.StartCoordinator();
  v1::PipelineRequest request;
  for (uint64_t id = 1; id <= 1030; ++id) {
    *request.add_calls() = BeginCall(id, "over");
  }
  auto results = RoundTrip(cluster.CoordinatorAddress(), request, 1030);
  BOOST_REQUIRE_EQUAL(results.size(), 1030u);
  for (uint64_t id = 1; id <= 1024; ++id) {
    BOOST_TEST(results[id].code() == grpc::StatusCode::OK);
  }
  for (uint64_t id = 1025; id <= 1030; ++id) {
    BOOST_TEST(results[id].code() == grpc::StatusCode::INVALID_ARGUMENT);
    BOOST_TEST(results[id].message().find("at most 1024") != std::string::npos);
  }
  // The refused ones did not begin anything: the next xid follows the 1024th.
  auto next = cluster.client().BeginRaw(BeginCall(0, "after").begin());
  BOOST_REQUIRE(next.ok());
  BOOST_TEST(next->xid() == "0-1-1025");
}

// Past 4096 unanswered calls batond stops reading the stream until answers
// drain; nothing is lost or refused on the way.
BOOST_AUTO_TEST_CASE(too_many_unanswered_calls_hold_back_reading) {
  BankCluster cluster;
  cluster.StartCoordinator();
  auto stub = v1::TransactionService::NewStub(
      internal::MakeCoordinatorChannel(cluster.CoordinatorAddress(), {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  auto stream = stub->Pipeline(&context);
  constexpr int kTransactions = 5000;
  uint64_t next_id = 0;
  // Sends one call per transaction, 1000 to a message; returns the results
  // in call order, reading until `extra` more results came too.
  auto exchange = [&](const std::function<void(int, v1::PipelineCall*)>& fill,
                      int count) {
    uint64_t first = next_id + 1;
    for (int i = 0; i < count; i += 1000) {
      v1::PipelineRequest request;
      for (int j = i; j < std::min(count, i + 1000); ++j) {
        v1::PipelineCall* call = request.add_calls();
        fill(j, call);
        call->set_call_id(++next_id);
      }
      BOOST_REQUIRE(stream->Write(request));
    }
    std::vector<v1::PipelineResult> results(count);
    v1::PipelineReply reply;
    for (int answered = 0; answered < count;) {
      BOOST_REQUIRE(stream->Read(&reply));
      for (const v1::PipelineResult& r : reply.results()) {
        results[r.call_id() - first] = r;
        ++answered;
      }
    }
    return results;
  };
  auto begun =
      exchange([](int, v1::PipelineCall* c) { *c = BeginCall(0, "held-back"); },
               kTransactions);
  auto registered = exchange(
      [&](int i, v1::PipelineCall* c) {
        c->mutable_register_branch()->set_xid(begun[i].begin().xid());
        c->mutable_register_branch()->set_resource("nobody-serves-this");
      },
      kTransactions);
  exchange(
      [&](int i, v1::PipelineCall* c) {
        c->mutable_report_branch()->set_xid(begun[i].begin().xid());
        c->mutable_report_branch()->set_branch_id(
            registered[i].register_branch().branch_id());
        c->mutable_report_branch()->set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
      },
      kTransactions);

  // Waiting commits stay unanswered for 4 s (nobody serves phase two), far
  // longer than sending them takes, so after the fifth message batond holds
  // 5000 and reads no further.
  for (int i = 0; i < kTransactions; i += 1000) {
    v1::PipelineRequest request;
    for (int j = i; j < i + 1000; ++j) {
      v1::PipelineCall* call = request.add_calls();
      call->set_call_id(++next_id);
      call->mutable_commit()->set_xid(begun[j].begin().xid());
      call->mutable_commit()->set_wait(true);
      call->mutable_commit()->set_wait_timeout_ms(4000);
    }
    BOOST_REQUIRE(stream->Write(request));
  }
  v1::PipelineRequest late;
  *late.add_calls() = BeginCall(++next_id, "late");
  BOOST_REQUIRE(stream->Write(late));
  int commits_before_late = 0;
  bool late_answered = false;
  int committing = 0;
  v1::PipelineReply reply;
  while (!late_answered || commits_before_late + committing < kTransactions) {
    BOOST_REQUIRE(stream->Read(&reply));
    for (const v1::PipelineResult& r : reply.results()) {
      BOOST_TEST(r.code() == grpc::StatusCode::OK);
      if (r.call_id() == next_id) {
        late_answered = true;
      } else if (late_answered) {
        ++committing;
      } else {
        ++commits_before_late;
      }
    }
  }
  // The late call was read only once answers brought the count below 4096.
  BOOST_TEST(commits_before_late >= kTransactions - 4096 + 1);
  stream->WritesDone();
  BOOST_TEST(stream->Finish().ok());
}

// A call unanswered when batond dies ends with UNAVAILABLE (so the SDK
// retries it), and the same client reaches the restarted batond, where the
// decision it made before the kill is still there.
BOOST_AUTO_TEST_CASE(a_kill_ends_unanswered_calls_and_the_client_reconnects) {
  BankCluster cluster;
  cluster.StartCoordinator();
  internal::PipelineClient pipeline(
      internal::MakeCoordinatorChannel(cluster.CoordinatorAddress(), {}));
  std::promise<grpc::Status> cut_off;
  std::string xid = CommitThatWaits(&cluster, &pipeline, &cut_off);
  cluster.coordinator().Signal(SIGKILL);
  std::future<grpc::Status> ended = cut_off.get_future();
  BOOST_REQUIRE(ended.wait_for(10s) == std::future_status::ready);
  BOOST_TEST(ended.get().error_code() == grpc::StatusCode::UNAVAILABLE);

  BOOST_TEST(cluster.coordinator().WaitExit(10s) >= 0);
  cluster.StartCoordinator();
  v1::PipelineCall call;
  call.mutable_get_transaction()->set_xid(xid);
  v1::PipelineResult result;
  BOOST_REQUIRE(pipeline.CallAndWait(call, InTenSeconds(), &result).ok());
  BOOST_TEST(result.get_transaction().transaction().status() ==
             v1::GLOBAL_STATUS_COMMITTING);
}

// A call too large for one message is refused before it is sent, and the
// stream the other calls share stays up.
BOOST_AUTO_TEST_CASE(an_oversized_call_is_refused_without_breaking_the_stream) {
  BankCluster cluster;
  cluster.StartCoordinator();
  internal::PipelineClient pipeline(
      internal::MakeCoordinatorChannel(cluster.CoordinatorAddress(), {}));
  v1::PipelineResult result;
  BOOST_REQUIRE(
      pipeline.CallAndWait(BeginCall(0, "before"), InTenSeconds(), &result)
          .ok());
  std::string xid = result.begin().xid();

  v1::PipelineCall huge;
  huge.mutable_register_branch()->set_xid(xid);
  huge.mutable_register_branch()->set_resource("r");
  huge.mutable_register_branch()->set_application_data(
      std::string(17 * 1024 * 1024, 'x'));
  grpc::Status refused = pipeline.CallAndWait(huge, InTenSeconds(), &result);
  BOOST_TEST(refused.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  BOOST_TEST(refused.error_message().find("must fit in") != std::string::npos);

  v1::PipelineCall get;
  get.mutable_get_transaction()->set_xid(xid);
  BOOST_REQUIRE(pipeline.CallAndWait(get, InTenSeconds(), &result).ok());
  BOOST_TEST(result.get_transaction().transaction().branches_size() == 0);
}

// Destroying the client ends its unanswered calls with CANCELLED, at once.
BOOST_AUTO_TEST_CASE(destroying_the_client_cancels_its_unanswered_calls) {
  BankCluster cluster;
  cluster.StartCoordinator();
  std::promise<grpc::Status> ended;
  {
    internal::PipelineClient pipeline(
        internal::MakeCoordinatorChannel(cluster.CoordinatorAddress(), {}));
    CommitThatWaits(&cluster, &pipeline, &ended);
  }
  std::future<grpc::Status> status = ended.get_future();
  BOOST_REQUIRE(status.wait_for(0s) == std::future_status::ready);
  BOOST_TEST(status.get().error_code() == grpc::StatusCode::CANCELLED);
}

// Unary calls stay served, for clients that turn the pipeline off.
BOOST_AUTO_TEST_CASE(the_sdk_works_the_same_without_the_pipeline) {
  BankCluster cluster;
  cluster.StartCoordinator();
  auto client = TransactionClient::Connect(
      {.coordinator = cluster.CoordinatorAddress(), .pipeline = false});
  BOOST_REQUIRE(client.ok());
  auto txn = (*client)->Begin("unary", 10s);
  BOOST_REQUIRE(txn.ok());
  BOOST_REQUIRE((*txn)->Commit(true).ok());
  BOOST_TEST((*txn)->status() == v1::GLOBAL_STATUS_COMMITTED);
  auto missing = (*client)->Commit("0-99-1", false);
  BOOST_TEST(absl::IsNotFound(missing.status()));
}

}  // namespace
}  // namespace baton::testing
