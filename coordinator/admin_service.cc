#include "coordinator/admin_service.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>

#include "common/grpc_status.h"
#include "common/limits.h"
#include "coordinator/authz.h"
#include "coordinator/message_size.h"
#include "fmt/format.h"
#include "protocols/instants.h"
#include "protocols/saga.h"
#include "protocols/transitions.h"

namespace baton {
namespace {

constexpr uint32_t kDefaultLimit = 100;
constexpr uint32_t kMaxLimit = 1000;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Filter of ListTransactions, applied to records from memory and the store.
class Filter {
 public:
  explicit Filter(const v1::ListTransactionsRequest& r) : request_(r) {
    for (int s : r.statuses())
      statuses_.insert(static_cast<v1::GlobalStatus>(s));
    if (statuses_.empty()) {
      statuses_ = {v1::GLOBAL_STATUS_BEGUN, v1::GLOBAL_STATUS_COMMITTING,
                   v1::GLOBAL_STATUS_ROLLING_BACK,
                   v1::GLOBAL_STATUS_COMMIT_STUCK,
                   v1::GLOBAL_STATUS_ROLLBACK_STUCK};
    }
  }

  bool WantsFinished() const {
    return statuses_.contains(v1::GLOBAL_STATUS_COMMITTED) ||
           statuses_.contains(v1::GLOBAL_STATUS_ROLLED_BACK);
  }

  bool Matches(const v1::Transaction& t) const {
    if (!statuses_.contains(t.status())) return false;
    if (request_.protocol() != v1::PROTOCOL_UNSPECIFIED &&
        t.protocol() != request_.protocol()) {
      return false;
    }
    if (!request_.name().empty() && t.name() != request_.name()) return false;
    if (request_.begun_before_unix_ms() != 0 &&
        t.begun_unix_ms() >= request_.begun_before_unix_ms()) {
      return false;
    }
    if (request_.resource().empty()) return true;
    if (saga::UsesResource(t, request_.resource())) return true;
    return std::any_of(t.branches().begin(), t.branches().end(),
                       [&](const v1::Branch& b) {
                         return b.resource() == request_.resource();
                       });
  }

 private:
  const v1::ListTransactionsRequest& request_;
  std::set<v1::GlobalStatus> statuses_;
};

// Page tokens: "L:<begun ms>:<xid>" while listing unfinished transactions,
// "F:<finished ms>:<xid>" once into finished ones.
struct PageToken {
  char phase = 'L';
  int64_t ms = -1;
  std::string xid;
};

bool ParsePageToken(const std::string& text, PageToken* token) {
  if (text.empty()) return true;
  size_t second = text.find(':', 2);
  if (text.size() < 5 || (text[0] != 'L' && text[0] != 'F') || text[1] != ':' ||
      second == std::string::npos) {
    return false;
  }
  token->phase = text[0];
  auto [p, ec] =
      std::from_chars(text.data() + 2, text.data() + second, token->ms);
  token->xid = text.substr(second + 1);
  return ec == std::errc() && p == text.data() + second;
}

grpc::Status ValidateOperatorRequest(const v1::OperatorRequest& request,
                                     bool needs_reason) {
  auto invalid = [](std::string message) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
  };
  if (request.xid().empty()) return invalid("xid is required");
  if (request.xid().size() > limits::kMaxNameBytes) {
    return invalid(fmt::format("xid is {} bytes; at most {}",
                               request.xid().size(), limits::kMaxNameBytes));
  }
  if (needs_reason && request.reason().empty()) {
    return invalid(
        "a reason is required (--reason): it goes in the audit "
        "record");
  }
  if (request.reason().size() > limits::kMaxReasonBytes ||
      request.actor().size() > limits::kMaxNameBytes) {
    return invalid(
        fmt::format("reason or actor too long: at most {} and {} "
                    "bytes",
                    limits::kMaxReasonBytes, limits::kMaxNameBytes));
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AdminServiceImpl::Authorize(const Context& context) const {
  if (policy_ != nullptr && policy_->IsAdmin(PeerOf(context))) {
    return grpc::Status::OK;
  }
  if (admin_token_.empty()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "the admin API is off: batond listens for it "
                        "beyond loopback, where it needs a token an operator "
                        "chose (--admin-token-file or BATON_ADMIN_TOKEN) or "
                        "admin identities in --authz-policy");
  }
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  std::string_view given =
      it == metadata.end()
          ? ""
          : std::string_view(it->second.data(), it->second.size());
  if (!ConstantTimeEquals(given, "Bearer " + admin_token_)) {
    CountRefusal("admin", given.empty() ? "no_token" : "wrong_token",
                 fmt::format("an admin call from {} without the admin token",
                             context.peer()),
                 manager_->log_summary());
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "admin calls need the admin token");
  }
  return grpc::Status::OK;
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* AdminServiceImpl::Read(
    Context* context, const Bytes* request, Bytes* response,
    std::function<grpc::Status(const Request&, Response*)> fill) {
  return wire::ServeUnary<Request, Response>(
      context, request, response,
      [this, context, fill = std::move(fill)](const Request& r,
                                              wire::Finish<Response> finish) {
        reads_.Post([this, context, fill, r, finish = std::move(finish)] {
          Response out;
          grpc::Status s = Authorize(*context);
          if (s.ok()) s = fill(r, &out);
          instants::Shift(&out, manager_->timeline()->WallOffsetMs());
          finish(s, out);
        });
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetStats(Context* context,
                                                     const Bytes* request,
                                                     Bytes* response) {
  return Read<v1::GetStatsRequest, v1::GetStatsResponse>(
      context, request, response,
      [this](const auto& r, auto* out) { return FillStats(r, out); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTransactions(
    Context* context, const Bytes* request, Bytes* response) {
  using Response = v1::ListTransactionsResponse;
  return wire::ServeUnary<v1::ListTransactionsRequest, Response>(
      context, request, response,
      [this, context](const v1::ListTransactionsRequest& r,
                      wire::Finish<Response> finish) {
        reads_.Post([this, context, r, finish = std::move(finish)] {
          List(*context, r, finish);
        });
      });
}

void AdminServiceImpl::List(
    const Context& context, const v1::ListTransactionsRequest& r,
    const wire::Finish<v1::ListTransactionsResponse>& finish) {
  auto out = std::make_shared<v1::ListTransactionsResponse>();
  grpc::Status s = Authorize(context);
  // Records keep the coordinator's time; people give the wall clock's.
  const int64_t offset = manager_->timeline()->WallOffsetMs();
  v1::ListTransactionsRequest on_timeline = r;
  instants::Shift(&on_timeline, -offset);
  if (s.ok()) s = FillList(on_timeline, out.get());
  if (!s.ok()) return finish(s, *out);
  instants::Shift(out.get(), offset);
  // What memory showed may still be on its way to the disk.
  committer_->Submit(StoreBatch(), [finish, out](const absl::Status& synced) {
    finish(ToGrpcStatus(synced), *out);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListParticipants(
    Context* context, const Bytes* request, Bytes* response) {
  return Read<v1::ListParticipantsRequest, v1::ListParticipantsResponse>(
      context, request, response,
      [this](const auto&, auto* out) { return FillParticipants(out); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::Operate(Context* context,
                                                    const Bytes* request,
                                                    Bytes* response,
                                                    bool needs_reason,
                                                    OperatorCall call) {
  return wire::ServeUnary<v1::OperatorRequest, v1::OperatorResponse>(
      context, request, response,
      [this, context, needs_reason, call = std::move(call)](
          const v1::OperatorRequest& r,
          wire::Finish<v1::OperatorResponse> finish) {
        grpc::Status status = Authorize(*context);
        if (status.ok()) status = ValidateOperatorRequest(r, needs_reason);
        if (!status.ok()) return finish(status, v1::OperatorResponse());
        operator_actions::Request action{
            .reason = r.reason(),
            .actor = r.actor(),
            .override_unprepared = r.override_unprepared()};
        call(r, action,
             [finish = std::move(finish), timeline = manager_->timeline()](
                 const absl::Status& s, const v1::Transaction& t) {
               v1::OperatorResponse out;
               absl::Status fit = s;
               if (s.ok()) {
                 *out.mutable_transaction() = t;
                 fit = FitTransaction(
                     out.mutable_transaction(),
                     PeerReceiveBytes(0) - kMessageOverheadBytes);
                 instants::Shift(&out, timeline->WallOffsetMs());
               }
               finish(ToRichGrpcStatus(fit), out);
             });
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RunAction(
    Context* context, const Bytes* request, Bytes* response,
    TransactionManager::OperatorAction action) {
  using Action = TransactionManager::OperatorAction;
  bool forces =
      action == Action::kForceCommit || action == Action::kForceRollback;
  return Operate(
      context, request, response, /*needs_reason=*/forces,
      [this, action](const v1::OperatorRequest& r, auto op, auto reply) {
        manager_->Operate(r.xid(), action, op, std::move(reply));
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ForceCommit(Context* context,
                                                        const Bytes* request,
                                                        Bytes* response) {
  return RunAction(context, request, response,
                   TransactionManager::OperatorAction::kForceCommit);
}

grpc::ServerUnaryReactor* AdminServiceImpl::ForceRollback(Context* context,
                                                          const Bytes* request,
                                                          Bytes* response) {
  return RunAction(context, request, response,
                   TransactionManager::OperatorAction::kForceRollback);
}

grpc::ServerUnaryReactor* AdminServiceImpl::Retry(Context* context,
                                                  const Bytes* request,
                                                  Bytes* response) {
  return RunAction(context, request, response,
                   TransactionManager::OperatorAction::kRetry);
}

grpc::ServerUnaryReactor* AdminServiceImpl::Pause(Context* context,
                                                  const Bytes* request,
                                                  Bytes* response) {
  return RunAction(context, request, response,
                   TransactionManager::OperatorAction::kPause);
}

grpc::ServerUnaryReactor* AdminServiceImpl::Resume(Context* context,
                                                   const Bytes* request,
                                                   Bytes* response) {
  return RunAction(context, request, response,
                   TransactionManager::OperatorAction::kResume);
}

grpc::ServerUnaryReactor* AdminServiceImpl::Forget(Context* context,
                                                   const Bytes* request,
                                                   Bytes* response) {
  return Operate(context, request, response, /*needs_reason=*/true,
                 [this](const v1::OperatorRequest& r, auto op, auto reply) {
                   if (!r.force()) {
                     return reply(
                         absl::InvalidArgumentError(
                             "forget drops the record for good; confirm with "
                             "force (batonctl forget --force)"),
                         v1::Transaction());
                   }
                   manager_->Forget(r.xid(), op, std::move(reply));
                 });
}

grpc::ServerUnaryReactor* AdminServiceImpl::DrainShard(Context* context,
                                                       const Bytes* request,
                                                       Bytes* response) {
  using Response = v1::DrainShardResponse;
  return wire::ServeUnary<v1::DrainShardRequest, Response>(
      context, request, response,
      [this, context](const v1::DrainShardRequest& r,
                      wire::Finish<Response> finish) {
        grpc::Status status = Authorize(*context);
        if (status.ok() && (r.reason().size() > limits::kMaxReasonBytes ||
                            r.actor().size() > limits::kMaxNameBytes)) {
          status = grpc::Status(
              grpc::StatusCode::INVALID_ARGUMENT,
              fmt::format("reason or actor too long: at most {} and {} bytes",
                          limits::kMaxReasonBytes, limits::kMaxNameBytes));
        }
        if (!status.ok()) return finish(status, Response());
        std::string why = fmt::format(
            "by {}: {}", r.actor().empty() ? "an operator" : r.actor(),
            r.reason().empty() ? "no reason given" : r.reason());
        const uint32_t shard = r.shard();
        const bool draining = !r.undo();
        manager_->Drain(shard, draining, why,
                        [this, shard, draining,
                         finish = std::move(finish)](const absl::Status& s) {
                          Response out;
                          if (s.ok()) {
                            out.set_shard(shard);
                            out.set_draining(draining);
                            out.set_unfinished(manager_->LiveByShard()[shard]);
                          }
                          finish(ToRichGrpcStatus(s), out);
                        });
      });
}

grpc::Status AdminServiceImpl::FillStats(const v1::GetStatsRequest& request,
                                         v1::GetStatsResponse* response) {
  StoreStats stats = store_->Stats();
  response->set_store_syncs(stats.syncs);
  response->set_store_batches(stats.batches);
  response->set_live_transactions(manager_->LiveCount());
  response->set_cpu_seconds(CpuSeconds());
  response->set_resident_bytes(ResidentBytes());
  response->set_pid(static_cast<uint32_t>(getpid()));
  TransactionManager::Summary summary = manager_->Summarize();
  for (const auto& [key, count] : summary.Counts()) {
    v1::StatusCount* c = response->add_unfinished();
    c->set_status(key.first);
    c->set_protocol(key.second);
    c->set_count(count);
  }
  response->set_retry_backlog(summary.RetryBacklog());
  response->set_oldest_unfinished_xid(summary.oldest_xid);
  response->set_oldest_unfinished_begun_unix_ms(summary.oldest_begun_unix_ms);
  if (absl::Status failed = committer_->failure(); !failed.ok()) {
    response->set_store_error(failed.ToString());
  }
  for (v1::SecondCounts& second : rates_->Recent(request.recent_seconds())) {
    response->add_recent()->Swap(&second);
  }
  return grpc::Status::OK;
}

// Lists unfinished transactions (from memory, by shard and then creation
// order) and then, if
// asked, finished ones (from the store, by finish time). A page stops at the
// limit once one more match exists; its token is where the last one stood.
grpc::Status AdminServiceImpl::FillList(
    const v1::ListTransactionsRequest& request,
    v1::ListTransactionsResponse* response) {
  if (absl::Status failed = committer_->failure(); !failed.ok()) {
    return ToGrpcStatus(failed);
  }
  PageToken token;
  if (!ParsePageToken(request.page_token(), &token)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "page_token is not one this coordinator issued");
  }
  uint32_t limit = request.limit() == 0 ? kDefaultLimit
                                        : std::min(request.limit(), kMaxLimit);
  Filter filter(request);
  std::string last_position;
  const size_t max_bytes = PeerReceiveBytes(0) - kMessageOverheadBytes;
  size_t bytes = 0;
  absl::Status refused;  // A record that fits no reply.
  // Adds `t` unless the page is full (by count, or by bytes: the reply must
  // fit what a default client reads); then ends the page. False: stop.
  auto add = [&](const v1::Transaction& t, std::string position) {
    v1::Transaction copy = t;
    if (absl::Status fit = FitTransaction(&copy, max_bytes); !fit.ok()) {
      refused = fit;
      return false;
    }
    size_t size = copy.ByteSizeLong() + limits::kRepeatedElementFramingBytes;
    if (static_cast<uint32_t>(response->transactions_size()) == limit ||
        (response->transactions_size() > 0 && bytes + size > max_bytes)) {
      response->set_next_page_token(last_position);
      return false;
    }
    bytes += size;
    *response->add_transactions() = std::move(copy);
    last_position = std::move(position);
    return true;
  };
  if (token.phase == 'L') {
    bool full = false;
    manager_->ReadLive(token.xid, [&](const v1::Transaction& t) {
      if (!filter.Matches(t)) return true;
      full = !add(t, fmt::format("L:{}:{}", t.begun_unix_ms(), t.xid()));
      return !full;
    });
    if (full) return ToGrpcStatus(refused);
    if (!filter.WantsFinished()) return grpc::Status::OK;
    token = PageToken{'F', -1, ""};
  }
  FinishedRef after{token.xid, token.ms};
  bool has_after = token.ms >= 0;
  for (;;) {
    std::vector<FinishedRef> refs;
    absl::Status s = store_->ScanFinished(has_after ? &after : nullptr,
                                          INT64_MAX, limit, &refs);
    if (!s.ok()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          std::string(s.message()));
    }
    for (const FinishedRef& ref : refs) {
      after = ref;
      has_after = true;
      v1::Transaction t;
      if (!store_->Get(ref.xid, &t).ok() || !filter.Matches(t)) continue;
      if (!add(t, fmt::format("F:{}:{}", ref.finished_ms, ref.xid))) {
        return ToGrpcStatus(refused);
      }
    }
    if (refs.size() < limit) return grpc::Status::OK;
  }
}

grpc::Status AdminServiceImpl::FillParticipants(
    v1::ListParticipantsResponse* response) {
  for (const AttachedParticipant& p : registry_->List()) {
    v1::Participant* out = response->add_participants();
    out->set_service(p.hello.service());
    out->set_instance_id(p.hello.instance_id());
    *out->mutable_resources() = p.hello.resources();
    out->set_attached_unix_ms(p.attached_unix_ms);
    out->set_last_seen_unix_ms(p.last_seen_unix_ms);
    out->set_commands_in_flight(p.in_flight);
  }
  return grpc::Status::OK;
}

}  // namespace baton
