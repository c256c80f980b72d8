#include "baton/participant.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
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
#include "participant_sdk/internal/coordinator_link.h"
#include "participant_sdk/internal/phase_one.h"
#include "participant_sdk/internal/router.h"
#include "participant_sdk/internal/rpc.h"
#include "participant_sdk/internal/saga_adapter.h"
#include "participant_sdk/internal/tcc_adapter.h"
#include "participant_sdk/internal/worker_pool.h"
#include "protocols/tcc.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

class ParticipantImpl : public Participant {
 public:
  ParticipantImpl(const ParticipantOptions& options,
                  std::unique_ptr<TransactionClient> client)
      : options_(options),
        client_(std::move(client)),
        tls_(internal::ResolveTls(options.tls)),
        router_(internal::SeedList(options.coordinator, options.seeds),
                options.call_timeout, tls_),
        workers_(options.worker_threads) {}

  ~ParticipantImpl() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    wake_.SignalAll();
    if (follow_thread_.joinable()) follow_thread_.join();
    if (purge_thread_.joinable()) purge_thread_.join();
    if (recovery_thread_.joinable()) recovery_thread_.join();
    std::map<std::string, std::shared_ptr<internal::CoordinatorLink>> links;
    {
      absl::MutexLock lock(&links_mu_);
      links.swap(links_);
    }
    links.clear();  // Joins each link's thread.
  }

  absl::Status AddXaResource(const std::string& name,
                             XaResource* resource) override {
    if (name.empty() || resource == nullptr) {
      return absl::InvalidArgumentError(
          "resource name and handler are required");
    }
    if (started_) {
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
    if (started_) return absl::OkStatus();
    started_ = true;
    hello_.mutable_hello()->set_service(options_.service);
    hello_.mutable_hello()->set_instance_id(options_.instance_id);
    hello_.mutable_hello()->set_reads_command_batches(true);
    hello_.mutable_hello()->set_max_message_bytes(limits::kMaxMessageBytes);
    for (const auto& [name, resource] : resources_) {
      hello_.mutable_hello()->add_resources(name);
    }
    follow_thread_ = std::thread([this] { FollowTopology(); });
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
    return wake_.WaitFor(&mu_, timeout,
                         [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                           return AttachedEverywhere();
                         });
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
    absl::StatusOr<internal::PhaseOne::Branch> branch =
        PhaseOneBranch(xid, resource, v1::BRANCH_TYPE_XA, application_data);
    if (!branch.ok()) return branch.status();
    return phase_one_.Run(*branch);
  }

  absl::StatusOr<uint64_t> Try(const std::string& xid,
                               const std::string& resource,
                               const ActionValues& action) override {
    absl::StatusOr<internal::PhaseOne::Branch> branch = PhaseOneBranch(
        xid, resource, v1::BRANCH_TYPE_TCC, tcc::EncodeActionContext(action));
    if (!branch.ok()) return branch.status();
    return phase_one_.Run(*branch);
  }

  void EnlistAsync(const std::string& xid, const std::string& resource,
                   const std::string& application_data,
                   PhaseOneDone done) override {
    absl::StatusOr<internal::PhaseOne::Branch> branch =
        PhaseOneBranch(xid, resource, v1::BRANCH_TYPE_XA, application_data);
    if (!branch.ok()) return done(branch.status());
    phase_one_.RunAsync(*std::move(branch), std::move(done));
  }

  void TryAsync(const std::string& xid, const std::string& resource,
                const ActionValues& action, PhaseOneDone done) override {
    absl::StatusOr<internal::PhaseOne::Branch> branch = PhaseOneBranch(
        xid, resource, v1::BRANCH_TYPE_TCC, tcc::EncodeActionContext(action));
    if (!branch.ok()) return done(branch.status());
    phase_one_.RunAsync(*std::move(branch), std::move(done));
  }

  const std::string& instance_id() const override {
    return options_.instance_id;
  }

 private:
  using Link = internal::CoordinatorLink;

  // Keeps one link per node the topology names, until stopping.
  void FollowTopology();
  // Opens a link to every node the router knows and closes the rest.
  void SyncLinks();
  std::shared_ptr<Link> LinkAt(const std::string& address);
  // Whether there is a link to every node known and each is attached.
  bool AttachedEverywhere();
  // What phase one needs to know of a branch of `xid` on `resource`;
  // INVALID_ARGUMENT for a resource that was not added.
  absl::StatusOr<internal::PhaseOne::Branch> PhaseOneBranch(
      const std::string& xid, const std::string& resource, v1::BranchType type,
      const std::string& application_data) const {
    auto it = resources_.find(resource);
    if (it == resources_.end()) {
      return absl::InvalidArgumentError(fmt::format(
          "resource '{}' was not added to this participant", resource));
    }
    return internal::PhaseOne::Branch{
        xid,  resource,         it->second,
        type, application_data, options_.instance_id};
  }
  // Waits out `interval`; true if the participant is stopping.
  bool WaitOrStop(std::chrono::milliseconds interval);
  void PurgeBarriers();
  void RecoverPeriodically();
  // Sends what the resources list in doubt, each branch to the owner of its
  // xid's shard (to every node when the owner is unknown: a node ignores
  // transactions of shards it does not host). Only the XA resources (no
  // barrier-guarded ones) unless `all`; only what goes to `only` if set.
  void ReportInDoubt(bool all, Link* only);
  // Runs `command`, which came from the node at `from`, and answers there.
  void Execute(const v1::BranchCommand& command, const std::string& from);
  PhaseTwoResult RunHandler(XaResource* resource,
                            const v1::BranchCommand& command);
  absl::Mutex& BranchLock(const std::string& xid, uint64_t branch_id) {
    return branch_locks_.For(xid, branch_id);
  }

  const ParticipantOptions options_;
  std::unique_ptr<TransactionClient> client_;
  const TlsFiles tls_;
  internal::Router router_;
  std::map<std::string, XaResource*> resources_;  // Fixed after Start.
  // TCC and saga adapters among resources_: their in-doubt list is a scan
  // of every barrier record, so only an attach runs it.
  std::set<std::string> barrier_guarded_;
  std::vector<std::unique_ptr<internal::TccAdapter>> tcc_adapters_;
  std::vector<std::unique_ptr<internal::SagaAdapter>> saga_adapters_;
  internal::BranchLocks branch_locks_;
  bool started_ = false;          // Set by Start, on the caller's thread.
  v1::ParticipantMessage hello_;  // Fixed after Start.

  absl::Mutex mu_;  // Taken before links_mu_, never after.
  SteadyCondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex links_mu_;
  // By node address. Shared so a result can be written without the lock
  // while the topology drops the link.
  std::map<std::string, std::shared_ptr<Link>> links_
      ABSL_GUARDED_BY(links_mu_);

  internal::WorkerPool workers_;  // After the state its tasks use.
  // Its asynchronous runs use workers_, so it goes first.
  internal::PhaseOne phase_one_{client_.get(), &branch_locks_, &workers_};
  std::thread follow_thread_;
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

void ParticipantImpl::FollowTopology() {
  SyncLinks();
  while (!WaitOrStop(options_.topology_refresh)) {
    router_.Refresh(/*force=*/true);
    SyncLinks();
  }
}

void ParticipantImpl::SyncLinks() {
  std::vector<std::string> addresses = router_.Addresses();
  std::vector<std::shared_ptr<Link>> closed;
  {
    absl::MutexLock lock(&links_mu_);
    for (auto it = links_.begin(); it != links_.end();) {
      bool known = std::find(addresses.begin(), addresses.end(), it->first) !=
                   addresses.end();
      if (known) {
        ++it;
        continue;
      }
      spdlog::info("participant {}: node at {} left the topology",
                   options_.instance_id, it->first);
      closed.push_back(std::move(it->second));
      it = links_.erase(it);
    }
    for (const std::string& address : addresses) {
      if (links_.contains(address)) continue;
      links_[address] = std::make_shared<Link>(Link::Options{
          .address = address,
          .tls = tls_,
          .token = options_.token,
          .hello = hello_,
          .reconnect_initial = options_.reconnect_initial,
          .reconnect_max = options_.reconnect_max,
          .on_command =
              [this, address](v1::BranchCommand command) {
                workers_.Post([this, address, command = std::move(command)] {
                  Execute(command, address);
                });
              },
          .on_attached =
              [this](Link* link) { ReportInDoubt(/*all=*/true, link); },
          .on_state =
              [this] {
                absl::MutexLock lock(&mu_);
                wake_.SignalAll();
              },
      });
    }
  }
  closed.clear();  // Joins their threads, without the lock.
  absl::MutexLock lock(&mu_);
  wake_.SignalAll();
}

std::shared_ptr<internal::CoordinatorLink> ParticipantImpl::LinkAt(
    const std::string& address) {
  absl::MutexLock lock(&links_mu_);
  auto it = links_.find(address);
  return it == links_.end() ? nullptr : it->second;
}

bool ParticipantImpl::AttachedEverywhere() {
  absl::MutexLock lock(&links_mu_);
  if (links_.empty()) return false;
  for (const auto& [address, link] : links_) {
    if (!link->attached()) return false;
  }
  return true;
}

// A resource that could not list its prepared branches at attach (its
// database was down, say) would otherwise keep them, and their locks, until
// the next attach. Reporting a branch that is not in doubt is harmless: the
// coordinator answers only for transactions it has decided.
void ParticipantImpl::RecoverPeriodically() {
  while (!WaitOrStop(options_.recovery_interval)) {
    ReportInDoubt(/*all=*/false, /*only=*/nullptr);
  }
}

void ParticipantImpl::ReportInDoubt(bool all, Link* only) {
  constexpr int kPerMessage = 10000;
  // By destination address; "" for every node.
  std::map<std::string, v1::ParticipantMessage> outgoing;
  auto flush = [&](const std::string& to, v1::ParticipantMessage* message) {
    if (message->in_doubt().branches_size() == 0) return;
    if (only != nullptr) {
      only->Write(*message);
    } else if (!to.empty()) {
      if (std::shared_ptr<Link> link = LinkAt(to)) link->Write(*message);
    } else {
      std::vector<std::shared_ptr<Link>> every;
      {
        absl::MutexLock lock(&links_mu_);
        for (const auto& [address, link] : links_) every.push_back(link);
      }
      for (const auto& link : every) link->Write(*message);
    }
    message->Clear();
  };
  for (const auto& [name, resource] : resources_) {
    if (!all && barrier_guarded_.contains(name)) continue;
    for (const InDoubtBranch& branch : resource->Recover()) {
      std::optional<std::string> owner = router_.OwnerOf(branch.xid);
      std::string to = owner.value_or("");
      if (only != nullptr && owner && *owner != only->address()) continue;
      v1::ParticipantMessage& message = outgoing[to];
      v1::InDoubtBranch* b = message.mutable_in_doubt()->add_branches();
      b->set_xid(branch.xid);
      b->set_branch_id(branch.branch_id);
      b->set_resource(name);
      if (message.in_doubt().branches_size() == kPerMessage) {
        flush(to, &message);
      }
    }
  }
  for (auto& [to, message] : outgoing) flush(to, &message);
}

void ParticipantImpl::Execute(const v1::BranchCommand& command,
                              const std::string& from) {
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
  // A link the topology dropped meanwhile: the command's node resends it
  // to wherever this participant attaches next.
  if (std::shared_ptr<Link> link = LinkAt(from)) {
    link->SendResult(std::move(result));
  }
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
                                  .seeds = options.seeds,
                                  .call_timeout = options.call_timeout,
                                  .tls = options.tls,
                                  .token = options.token});
  if (!client.ok()) return client.status();
  return std::unique_ptr<Participant>(
      std::make_unique<ParticipantImpl>(resolved, std::move(*client)));
}

}  // namespace baton
