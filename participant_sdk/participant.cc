#include "baton/participant.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/client.h"
#include "baton/saga.h"
#include "baton/v1/participant_service.grpc.pb.h"
#include "common/failpoint.h"
#include "common/limits.h"
#include "common/steady_cond_var.h"
#include "fmt/format.h"
#include "participant_sdk/internal/rpc.h"
#include "participant_sdk/internal/saga_adapter.h"
#include "participant_sdk/internal/tcc_adapter.h"
#include "participant_sdk/internal/worker_pool.h"
#include "protocols/tcc.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

using Stream =
    grpc::ClientReaderWriter<v1::ParticipantMessage, v1::CoordinatorMessage>;

class ParticipantImpl : public Participant {
 public:
  ParticipantImpl(const ParticipantOptions& options,
                  std::unique_ptr<TransactionClient> client)
      : options_(options),
        client_(std::move(client)),
        stub_(v1::ParticipantService::NewStub(
            internal::MakeCoordinatorChannel(options.coordinator))),
        workers_(options.worker_threads) {}

  ~ParticipantImpl() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    wake_.SignalAll();
    if (attach_thread_.joinable()) attach_thread_.join();
    if (purge_thread_.joinable()) purge_thread_.join();
    if (recovery_thread_.joinable()) recovery_thread_.join();
  }

  absl::Status AddXaResource(const std::string& name,
                             XaResource* resource) override {
    if (name.empty() || resource == nullptr) {
      return absl::InvalidArgumentError(
          "resource name and handler are required");
    }
    if (attach_thread_.joinable()) {
      return absl::FailedPreconditionError("add resources before Start()");
    }
    if (!resources_.emplace(name, resource).second) {
      return absl::InvalidArgumentError(
          fmt::format("resource '{}' was already added", name));
    }
    return absl::OkStatus();
  }

  absl::Status Start() override {
    if (resources_.empty()) {
      return absl::FailedPreconditionError("add at least one resource first");
    }
    if (attach_thread_.joinable()) return absl::OkStatus();
    attach_thread_ = std::thread([this] { AttachLoop(); });
    if (!tcc_adapters_.empty() || !saga_adapters_.empty())
      purge_thread_ = std::thread([this] { PurgeBarriers(); });
    if (options_.recovery_interval.count() > 0 &&
        resources_.size() > barrier_guarded_.size()) {
      recovery_thread_ = std::thread([this] { RecoverPeriodically(); });
    }
    return absl::OkStatus();
  }

  bool WaitAttached(std::chrono::milliseconds timeout) override {
    absl::MutexLock lock(&mu_);
    return wake_.WaitFor(
        &mu_, timeout,
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return attached_; });
  }

  absl::Status AddTccResource(const std::string& name, TccResource* resource,
                              BarrierStore* barrier) override {
    if (resource == nullptr || barrier == nullptr) {
      return absl::InvalidArgumentError(
          "TCC resource and barrier are required");
    }
    auto adapter = std::make_unique<internal::TccAdapter>(resource, barrier);
    absl::Status s = AddXaResource(name, adapter.get());
    if (s.ok()) {
      tcc_adapters_.push_back(std::move(adapter));
      barrier_guarded_.insert(name);
    }
    return s;
  }

  absl::Status AddSagaResource(const std::string& name, SagaResource* resource,
                               BarrierStore* barrier) override {
    if (resource == nullptr || barrier == nullptr) {
      return absl::InvalidArgumentError(
          "saga resource and barrier are required");
    }
    auto adapter = std::make_unique<internal::SagaAdapter>(resource, barrier);
    absl::Status s = AddXaResource(name, adapter.get());
    if (s.ok()) {
      saga_adapters_.push_back(std::move(adapter));
      barrier_guarded_.insert(name);
    }
    return s;
  }

  absl::StatusOr<uint64_t> Enlist(
      const std::string& xid, const std::string& resource,
      const std::string& application_data) override {
    return RunPhaseOne(xid, resource, v1::BRANCH_TYPE_XA, application_data);
  }

  absl::StatusOr<uint64_t> Try(const std::string& xid,
                               const std::string& resource,
                               const ActionValues& action) override {
    return RunPhaseOne(xid, resource, v1::BRANCH_TYPE_TCC,
                       tcc::EncodeActionContext(action));
  }

  const std::string& instance_id() const override {
    return options_.instance_id;
  }

 private:
  void AttachLoop();
  // Runs one stream until it breaks. Returns true if it got attached.
  bool RunStream();
  absl::StatusOr<uint64_t> RunPhaseOne(const std::string& xid,
                                       const std::string& resource,
                                       v1::BranchType type,
                                       const std::string& application_data);
  // Waits out `interval`; true if the participant is stopping.
  bool WaitOrStop(std::chrono::milliseconds interval);
  void PurgeBarriers();
  void RecoverPeriodically();
  // Sends what the resources list in doubt over the current stream; only
  // the XA resources (no barrier-guarded ones) unless `all`.
  void ReportInDoubt(bool all);
  void Execute(const v1::BranchCommand& command);
  PhaseTwoResult RunHandler(XaResource* resource,
                            const v1::BranchCommand& command);
  void SendResult(v1::BranchResult result);
  v1::ParticipantMessage TakeUnsentResults()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(results_mu_);
  absl::Mutex& BranchLock(const std::string& xid, uint64_t branch_id) {
    size_t h = std::hash<std::string>()(xid) ^ (branch_id * 0x9e3779b97f4a7c15);
    return branch_locks_[h % branch_locks_.size()];
  }

  const ParticipantOptions options_;
  std::unique_ptr<TransactionClient> client_;
  std::unique_ptr<v1::ParticipantService::Stub> stub_;
  std::map<std::string, XaResource*> resources_;  // Fixed after Start.
  // TCC and saga adapters among resources_: their in-doubt list is a scan
  // of every barrier record, so only an attach runs it.
  std::set<std::string> barrier_guarded_;
  std::vector<std::unique_ptr<internal::TccAdapter>> tcc_adapters_;
  std::vector<std::unique_ptr<internal::SagaAdapter>> saga_adapters_;
  // A branch's handlers run one at a time.
  std::array<absl::Mutex, 64> branch_locks_;

  absl::Mutex mu_;
  SteadyCondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool attached_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // Writes too.

  absl::Mutex results_mu_;  // Never held with mu_.
  std::deque<v1::BranchResult> unsent_results_ ABSL_GUARDED_BY(results_mu_);
  bool writing_results_ ABSL_GUARDED_BY(results_mu_) = false;
  // The coordinator reads BranchResults.
  bool batch_results_ ABSL_GUARDED_BY(results_mu_) = false;

  internal::WorkerPool workers_;  // After the state its tasks use.
  std::thread attach_thread_;
  std::thread purge_thread_;
  std::thread recovery_thread_;
};

// Like every interval here, it is waited on the monotonic clock, so a step
// of the wall clock neither cuts it short nor stretches it.
bool ParticipantImpl::WaitOrStop(std::chrono::milliseconds interval) {
  absl::MutexLock lock(&mu_);
  return wake_.WaitFor(
      &mu_, interval,
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
}

void ParticipantImpl::PurgeBarriers() {
  while (!WaitOrStop(options_.barrier_purge_interval)) {
    auto cutoff = std::chrono::system_clock::now() - options_.barrier_retention;
    int64_t cutoff_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            cutoff.time_since_epoch())
                            .count();
    std::vector<BarrierStore*> barriers;
    for (const auto& a : tcc_adapters_) barriers.push_back(a->barrier());
    for (const auto& a : saga_adapters_) barriers.push_back(a->barrier());
    for (BarrierStore* barrier : barriers) {
      absl::StatusOr<size_t> purged = barrier->PurgeResolvedBefore(cutoff_ms);
      if (!purged.ok()) {
        spdlog::warn("barrier purge failed: {}", purged.status().ToString());
      }
    }
  }
}

void ParticipantImpl::AttachLoop() {
  std::chrono::milliseconds backoff = options_.reconnect_initial;
  for (;;) {
    if (RunStream()) backoff = options_.reconnect_initial;
    if (WaitOrStop(backoff)) return;
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

bool ParticipantImpl::RunStream() {
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    context_ = &context;
  }
  std::unique_ptr<Stream> stream = stub_->Attach(&context);
  v1::ParticipantMessage hello;
  hello.mutable_hello()->set_service(options_.service);
  hello.mutable_hello()->set_instance_id(options_.instance_id);
  hello.mutable_hello()->set_reads_command_batches(true);
  hello.mutable_hello()->set_max_message_bytes(limits::kMaxMessageBytes);
  for (const auto& [name, resource] : resources_) {
    hello.mutable_hello()->add_resources(name);
  }
  v1::CoordinatorMessage message;
  bool attached =
      stream->Write(hello) && stream->Read(&message) && message.has_welcome();
  if (attached) {
    {
      absl::MutexLock lock(&results_mu_);
      batch_results_ = message.welcome().reads_result_batches();
    }
    absl::MutexLock lock(&mu_);
    stream_ = stream.get();
    attached_ = true;
    wake_.SignalAll();
    spdlog::info("participant {} attached to coordinator node {}",
                 options_.instance_id, message.welcome().coordinator_node());
  }
  if (attached) ReportInDoubt(/*all=*/true);
  while (attached && stream->Read(&message)) {
    if (message.has_command()) {
      workers_.Post([this, command = message.command()] { Execute(command); });
    }
    for (v1::BranchCommand& command :
         *message.mutable_commands()->mutable_commands()) {
      workers_.Post([this, command = std::move(command)] { Execute(command); });
    }
  }
  {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    attached_ = false;
    context_ = nullptr;
  }
  grpc::Status status = stream->Finish();
  spdlog::warn("participant {} stream to the coordinator ended: {}",
               options_.instance_id, status.error_message());
  return attached;
}

// A resource that could not list its prepared branches at attach (its
// database was down, say) would otherwise keep them, and their locks, until
// the next attach. Reporting a branch that is not in doubt is harmless: the
// coordinator answers only for transactions it has decided.
void ParticipantImpl::RecoverPeriodically() {
  while (!WaitOrStop(options_.recovery_interval)) {
    bool attached;
    {
      absl::MutexLock lock(&mu_);
      attached = attached_;
    }
    if (attached) ReportInDoubt(/*all=*/false);
  }
}

void ParticipantImpl::ReportInDoubt(bool all) {
  constexpr int kPerMessage = 10000;
  v1::ParticipantMessage message;
  auto flush = [&] {
    if (message.in_doubt().branches_size() == 0) return;
    absl::MutexLock lock(&mu_);
    if (stream_ != nullptr) stream_->Write(message);
    message.Clear();
  };
  for (const auto& [name, resource] : resources_) {
    if (!all && barrier_guarded_.contains(name)) continue;
    for (const InDoubtBranch& branch : resource->Recover()) {
      v1::InDoubtBranch* b = message.mutable_in_doubt()->add_branches();
      b->set_xid(branch.xid);
      b->set_branch_id(branch.branch_id);
      b->set_resource(name);
      if (message.in_doubt().branches_size() == kPerMessage) flush();
    }
  }
  flush();
}

void ParticipantImpl::Execute(const v1::BranchCommand& command) {
  v1::BranchResult result;
  result.set_command_id(command.command_id());
  result.set_xid(command.xid());
  result.set_branch_id(command.branch_id());
  result.set_action(command.action());
  auto it = resources_.find(command.resource());
  PhaseTwoResult outcome = it == resources_.end()
                               ? PhaseTwoResult::Retry(fmt::format(
                                     "resource '{}' is not served by {}",
                                     command.resource(), options_.instance_id))
                               : RunHandler(it->second, command);
  switch (outcome.outcome) {
    case PhaseTwoResult::Outcome::kDone:
      result.set_outcome(v1::COMMAND_OUTCOME_DONE);
      break;
    case PhaseTwoResult::Outcome::kRetry:
      result.set_outcome(v1::COMMAND_OUTCOME_RETRY);
      break;
    case PhaseTwoResult::Outcome::kFailed:
      result.set_outcome(v1::COMMAND_OUTCOME_FAILED);
      break;
  }
  // The coordinator keeps no more than this, and 1024 results of this size
  // still fit one message.
  result.set_message(limits::TruncatedReason(outcome.message));
  SendResult(std::move(result));
}

PhaseTwoResult ParticipantImpl::RunHandler(XaResource* resource,
                                           const v1::BranchCommand& command) {
  BranchContext branch{command.xid(), command.branch_id(), command.resource(),
                       command.application_data(), command.attempt()};
  bool commit = command.action() == v1::BRANCH_ACTION_COMMIT;
  absl::MutexLock lock(&BranchLock(branch.xid, branch.branch_id));
  absl::Status injected = failpoint::Hit(
      commit ? "participant_before_commit" : "participant_before_rollback");
  if (!injected.ok()) {
    return PhaseTwoResult::Retry(std::string(injected.message()));
  }
  PhaseTwoResult result = PhaseTwoResult::Retry("handler threw");
  try {
    result = commit ? resource->Commit(branch) : resource->Rollback(branch);
  } catch (const std::exception& e) {
    result = PhaseTwoResult::Retry(fmt::format("handler threw: {}", e.what()));
  } catch (...) {
    result = PhaseTwoResult::Retry("handler threw a non-standard exception");
  }
  failpoint::Hit(commit ? "participant_after_commit"
                        : "participant_after_rollback")
      .IgnoreError();
  return result;
}

// The first worker to find no write in flight writes, for itself and for
// every result queued while it wrote; the others return at once. A burst of
// results so costs a few writes, not one blocking write each.
void ParticipantImpl::SendResult(v1::BranchResult result) {
  results_mu_.Lock();
  unsent_results_.push_back(std::move(result));
  if (writing_results_) {
    results_mu_.Unlock();
    return;
  }
  writing_results_ = true;
  while (!unsent_results_.empty()) {
    results_mu_.Unlock();
    failpoint::Hit("participant_before_result_write").IgnoreError();
    results_mu_.Lock();
    v1::ParticipantMessage message = TakeUnsentResults();
    results_mu_.Unlock();
    {
      absl::MutexLock lock(&mu_);
      // With no stream the coordinator resends the command after
      // reattaching.
      if (stream_ != nullptr) stream_->Write(message);
    }
    results_mu_.Lock();
  }
  writing_results_ = false;
  results_mu_.Unlock();
}

v1::ParticipantMessage ParticipantImpl::TakeUnsentResults() {
  constexpr int kMaxResultsPerMessage = 1024;
  v1::ParticipantMessage message;
  if (unsent_results_.size() == 1 || !batch_results_) {
    message.mutable_result()->Swap(&unsent_results_.front());
    unsent_results_.pop_front();
    return message;
  }
  while (!unsent_results_.empty() &&
         message.results().results_size() < kMaxResultsPerMessage) {
    message.mutable_results()->add_results()->Swap(&unsent_results_.front());
    unsent_results_.pop_front();
  }
  return message;
}

absl::StatusOr<uint64_t> ParticipantImpl::RunPhaseOne(
    const std::string& xid, const std::string& resource_name,
    v1::BranchType type, const std::string& application_data) {
  auto it = resources_.find(resource_name);
  if (it == resources_.end()) {
    return absl::InvalidArgumentError(fmt::format(
        "resource '{}' was not added to this participant", resource_name));
  }
  v1::RegisterBranchRequest request;
  request.set_xid(xid);
  request.set_resource(resource_name);
  request.set_type(type);
  request.set_application_data(application_data);
  request.set_request_id(internal::NewRequestId());
  request.set_instance_id(options_.instance_id);
  absl::StatusOr<uint64_t> branch_id = client_->RegisterBranch(request);
  if (!branch_id.ok()) return branch_id.status();

  BranchContext branch{xid, *branch_id, resource_name, application_data, 0};
  if (type == v1::BRANCH_TYPE_TCC) {
    // Before the branch lock, so a cancel can overtake a slow try.
    failpoint::Hit("participant_before_try").IgnoreError();
  }
  absl::Status prepared;
  {
    absl::MutexLock lock(&BranchLock(xid, *branch_id));
    try {
      prepared = it->second->Prepare(branch);
    } catch (const std::exception& e) {
      prepared =
          absl::InternalError(fmt::format("Prepare threw: {}", e.what()));
    }
  }
  failpoint::Hit("participant_after_prepare").IgnoreError();
  // The coordinator keeps no more of the reason than this, and refuses a
  // longer one.
  std::string error = limits::TruncatedReason(
      std::string_view(prepared.message().data(), prepared.message().size()));
  absl::Status reported =
      client_->ReportBranch(xid, *branch_id,
                            prepared.ok() ? v1::PHASE_ONE_OUTCOME_PREPARED
                                          : v1::PHASE_ONE_OUTCOME_FAILED,
                            error);
  if (!prepared.ok()) return prepared;
  // A repeated report is OK whatever happened since, so these two mean the
  // transaction was rolled back without this branch's report, or is gone:
  // release what Prepare holds now rather than wait for a rollback command
  // that may never come. Any other error leaves the branch prepared and in
  // doubt, which the coordinator resolves (a command, or its answer to the
  // in-doubt report at the next attach).
  if (absl::IsFailedPrecondition(reported) || absl::IsNotFound(reported)) {
    absl::MutexLock lock(&BranchLock(xid, *branch_id));
    it->second->Rollback(branch);
  }
  if (!reported.ok()) return reported;
  return *branch_id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Participant>> Participant::Create(
    const ParticipantOptions& options) {
  if (options.service.empty()) {
    return absl::InvalidArgumentError("ParticipantOptions.service is empty");
  }
  if (options.worker_threads < 1) {
    return absl::InvalidArgumentError("worker_threads must be at least 1");
  }
  ParticipantOptions resolved = options;
  if (resolved.instance_id.empty()) {
    resolved.instance_id = fmt::format("{}-{}-{}", options.service, getpid(),
                                       internal::NewRequestId().substr(0, 8));
  }
  absl::StatusOr<std::unique_ptr<TransactionClient>> client =
      TransactionClient::Connect({.coordinator = options.coordinator,
                                  .call_timeout = options.call_timeout});
  if (!client.ok()) return client.status();
  return std::unique_ptr<Participant>(
      std::make_unique<ParticipantImpl>(resolved, std::move(*client)));
}

}  // namespace baton
