// Writes the seed corpora of the fuzz targets into a directory (one
// subdirectory per target), from real messages and a real store: run it
// when the contract or the store layout changes, and commit the result
// under fuzz/corpus/. Usage: make_seeds DIR
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <leveldb/db.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "baton/v1/admin_service.pb.h"
#include "baton/v1/participant_service.pb.h"
#include "baton/v1/transaction_service.grpc.pb.h"
#include "coordinator/server.h"
#include "fuzz/fuzz_server.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = baton::v1;

void Write(const fs::path& dir, const std::string& name,
           const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

// The framing of SplitMessages.
std::string Framed(const std::vector<std::string>& messages) {
  std::string out;
  for (const std::string& m : messages) {
    out.push_back(static_cast<char>(m.size() >> 8));
    out.push_back(static_cast<char>(m.size() & 0xff));
    out += m;
  }
  return out;
}

// The framing of FuzzedDataProvider::ConsumeRandomLengthString.
void AppendRandomLengthString(const std::string& s, std::string* out) {
  for (char c : s) {
    out->push_back(c);
    if (c == '\\') out->push_back('\\');
  }
  out->append("\\x");
}

v1::SagaDefinition TwoStepSaga() {
  v1::SagaDefinition d;
  v1::SagaStep* flight = d.add_steps();
  flight->set_name("flight");
  flight->mutable_action()->set_resource("flights");
  flight->mutable_action()->set_payload("seat 12A");
  flight->mutable_compensation()->set_resource("flights");
  v1::SagaStep* hotel = d.add_steps();
  hotel->set_name("hotel");
  hotel->mutable_action()->set_resource("hotels");
  hotel->mutable_compensation()->set_resource("hotels");
  hotel->add_depends_on("flight");
  hotel->mutable_retry()->set_max_attempts(3);
  d.set_max_parallel(2);
  return d;
}

void XidSeeds(const fs::path& dir) {
  const char* seeds[] = {"1-2-3",
                         "0-0-0",
                         "4294967295-18446744073709551615-1",
                         "u/0000000000000001/1-2-3",
                         "f/00000192d1a4c000/2-5-9",
                         "01-2-3"};
  int i = 0;
  for (const char* s : seeds) Write(dir, "seed-" + std::to_string(i++), s);
}

void SagaJsonSeeds(const fs::path& dir) {
  std::string json;
  google::protobuf::util::MessageToJsonString(TwoStepSaga(), &json);
  Write(dir, "two-steps", "\x01" + json);
  Write(dir, "one-step-unchecked",
        std::string("\x00", 1) +
            R"({"steps":[{"name":"a","action":{"resource":"r"}}]})");
}

void RequestSeeds(const fs::path& dir) {
  v1::BeginRequest begin;
  begin.set_name("transfer");
  begin.set_protocol(v1::PROTOCOL_TCC);
  begin.set_timeout_ms(5000);
  v1::CommitRequest commit;
  commit.set_xid("1-1-1");
  commit.set_wait(true);
  v1::RegisterBranchRequest branch;
  branch.set_xid("1-1-1");
  branch.set_resource("bank-a");
  branch.set_application_data("debit 10");
  v1::SubmitSagaRequest saga;
  saga.set_name("trip");
  *saga.mutable_definition() = TwoStepSaga();
  v1::ListTransactionsRequest list;
  list.add_statuses(v1::GLOBAL_STATUS_COMMITTING);
  list.set_limit(10);
  v1::OperatorRequest force;
  force.set_xid("1-1-1");
  force.set_reason("stuck since the outage");
  force.set_actor("oncall");
  // Indexes into fuzz_requests.cc's kMethods.
  Write(dir, "begin", "\x00" + begin.SerializeAsString());
  Write(dir, "commit", "\x01" + commit.SerializeAsString());
  Write(dir, "register", "\x04" + branch.SerializeAsString());
  Write(dir, "saga", "\x06" + saga.SerializeAsString());
  Write(dir, "list", "\x08" + list.SerializeAsString());
  Write(dir, "force-rollback", "\x0c" + force.SerializeAsString());
}

void SessionSeeds(const fs::path& dir) {
  v1::ParticipantMessage hello;
  hello.mutable_hello()->set_service("bank");
  hello.mutable_hello()->set_instance_id("bank-1");
  hello.mutable_hello()->add_resources("fuzz-r");
  hello.mutable_hello()->set_reads_command_batches(true);
  v1::ParticipantMessage result;
  result.mutable_result()->set_command_id(1);
  result.mutable_result()->set_xid("1-1-1");
  result.mutable_result()->set_branch_id(1);
  result.mutable_result()->set_outcome(v1::COMMAND_OUTCOME_DONE);
  v1::ParticipantMessage in_doubt;
  v1::InDoubtBranch* b = in_doubt.mutable_in_doubt()->add_branches();
  b->set_xid("1-1-1");
  b->set_branch_id(2);
  b->set_resource("fuzz-r");
  Write(dir, "attach",
        std::string("\x00", 1) +
            Framed({hello.SerializeAsString(), result.SerializeAsString(),
                    in_doubt.SerializeAsString()}));
  Write(dir, "attach-after-hello",
        "\x02" + Framed({result.SerializeAsString()}));

  v1::PipelineRequest calls;
  v1::PipelineCall* begin = calls.add_calls();
  begin->set_call_id(1);
  begin->mutable_begin()->set_name("transfer");
  v1::PipelineCall* get = calls.add_calls();
  get->set_call_id(2);
  get->mutable_get_transaction()->set_xid("1-1-1");
  v1::PipelineRequest more;
  v1::PipelineCall* commit = more.add_calls();
  commit->set_call_id(3);
  commit->mutable_commit()->set_xid("1-1-1");
  Write(dir, "pipeline",
        "\x01" + Framed({calls.SerializeAsString(), more.SerializeAsString()}));
}

// A store with a committing 2PC (branches owed phase two), a rolled-back
// TCC, a running saga and the store's own metadata.
void StoreSeeds(const fs::path& dir, const fs::path& scratch) {
  const std::string data = scratch / "store";
  {
    baton::ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = data;
    std::unique_ptr<baton::Server> server;
    if (!baton::Server::Start(options, &server).ok()) std::abort();
    auto stub = v1::TransactionService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()),
                            grpc::InsecureChannelCredentials()));
    auto call = [](auto method) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
      method(&context);
    };
    for (v1::Protocol protocol : {v1::PROTOCOL_TWO_PHASE, v1::PROTOCOL_TCC}) {
      v1::BeginRequest begin;
      begin.set_name("transfer");
      begin.set_protocol(protocol);
      v1::BeginResponse begun;
      call([&](auto* c) { stub->Begin(c, begin, &begun); });
      for (const char* resource : {"bank-a", "bank-b"}) {
        v1::RegisterBranchRequest branch;
        branch.set_xid(begun.xid());
        branch.set_resource(resource);
        branch.set_application_data("move 10");
        v1::RegisterBranchResponse registered;
        call([&](auto* c) { stub->RegisterBranch(c, branch, &registered); });
      }
      if (protocol == v1::PROTOCOL_TWO_PHASE) {
        v1::CommitRequest commit;
        commit.set_xid(begun.xid());
        v1::CommitResponse committed;
        call([&](auto* c) { stub->Commit(c, commit, &committed); });
      } else {
        v1::RollbackRequest rollback;
        rollback.set_xid(begun.xid());
        rollback.set_reason("out of stock");
        v1::RollbackResponse rolled_back;
        call([&](auto* c) { stub->Rollback(c, rollback, &rolled_back); });
      }
    }
    v1::SubmitSagaRequest saga;
    saga.set_name("trip");
    *saga.mutable_definition() = TwoStepSaga();
    v1::SubmitSagaResponse submitted;
    call([&](auto* c) { stub->SubmitSaga(c, saga, &submitted); });
    server->Shutdown();
  }
  leveldb::DB* raw = nullptr;
  if (!leveldb::DB::Open(leveldb::Options(), data, &raw).ok()) std::abort();
  std::unique_ptr<leveldb::DB> db(raw);
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator({}));
  std::string input;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    AppendRandomLengthString(it->key().ToString(), &input);
    AppendRandomLengthString(it->value().ToString(), &input);
  }
  Write(dir, "real-store", input);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  baton::fuzz::QuietLogs();
  const fs::path out = argv[1];
  const fs::path scratch = fs::temp_directory_path() / "baton-make-seeds";
  fs::remove_all(scratch);
  XidSeeds(out / "xid");
  SagaJsonSeeds(out / "saga_json");
  RequestSeeds(out / "requests");
  SessionSeeds(out / "sessions");
  StoreSeeds(out / "store", scratch);
  fs::remove_all(scratch);
  return 0;
}
