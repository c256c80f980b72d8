#include "baton/postgres_xa_resource.h"

#include <charconv>
#include <chrono>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/steady_cond_var.h"
#include "fmt/format.h"
#include "participant_sdk/internal/postgres_pool.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

// PostgreSQL's GIDSIZE is 200 bytes with the terminating NUL.
constexpr size_t kMaxGidBytes = 199;
constexpr size_t kMaxResourceNameBytes = 64;
// SQLSTATE undefined_object: COMMIT/ROLLBACK PREPARED of an unknown gid.
constexpr char kNoSuchGid[] = "42704";
// What PostgreSQL answers when this session may not finish the gid:
// feature_not_supported when it was prepared in another database, and
// insufficient_privilege when by another role.
constexpr char kOtherDatabase[] = "0A000";
constexpr char kOtherRole[] = "42501";

constexpr std::string_view kBranchTable = R"sql(
CREATE TABLE IF NOT EXISTS baton_branches (
  gid         text PRIMARY KEY,
  xid         text NOT NULL,
  branch_id   bigint NOT NULL,
  resource    text NOT NULL,
  prepared_at timestamptz NOT NULL DEFAULT now()
))sql";

bool ValidResourceName(const std::string& name) {
  if (name.empty() || name.size() > kMaxResourceNameBytes) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string PreparationsDisabled(PGconn* conn) {
  return fmt::format(
      "PostgreSQL at {} has max_prepared_transactions = 0; set it to at "
      "least the number of concurrent branches (e.g. 100) and restart the "
      "server",
      PgDescribe(conn));
}

absl::Status CheckCanPrepare(PGconn* conn) {
  absl::StatusOr<PgResult> r =
      PgExec(conn, "SELECT current_setting('max_prepared_transactions')::int");
  if (!r.ok()) return r.status();
  if (std::atoi(PQgetvalue(r->get(), 0, 0)) == 0) {
    return absl::FailedPreconditionError(PreparationsDisabled(conn));
  }
  return absl::OkStatus();
}

}  // namespace

class PostgresXaResource::Impl {
 public:
  Impl(const PostgresXaOptions& options, PostgresBranchWork work)
      : options_(options),
        work_(std::move(work)),
        pool_(options.conninfo, {.max_idle = options.max_idle_connections,
                                 .max_open = options.max_connections,
                                 .acquire_timeout = options.connection_wait}),
        prefix_("baton/" + options.resource + "/") {}
  ~Impl() { StopPurging(); }

  absl::Status Open();
  std::optional<std::string> Gid(const std::string& xid,
                                 uint64_t branch_id) const;
  absl::Status Prepare(const BranchContext& branch);
  PhaseTwoResult Finish(const BranchContext& branch, bool commit);
  std::vector<InDoubtBranch> Recover();
  absl::StatusOr<size_t> Purge(int64_t cutoff_unix_ms);
  // Runs Purge every purge_interval until the resource is destroyed.
  void StartPurging();

 private:
  void PurgeLoop();
  // Waits out one purge interval; true if told to stop meanwhile.
  bool WaitOrStop();
  void StopPurging();

  absl::Status PrepareOn(PGconn* conn, const BranchContext& branch,
                         const std::string& gid);
  PhaseTwoResult ResolveGone(PGconn* conn, const std::string& gid, bool commit);
  PhaseTwoResult Misconfigured(PGconn* conn, const std::string& gid,
                               bool commit, const absl::Status& refusal);

  const PostgresXaOptions options_;
  const PostgresBranchWork work_;
  internal::PgPool pool_;
  const std::string prefix_;  // "baton/<resource>/", the start of every gid.

  absl::Mutex purge_mu_;
  SteadyCondVar purge_wake_;
  bool stopping_ ABSL_GUARDED_BY(purge_mu_) = false;
  std::thread purger_;
};

absl::Status PostgresXaResource::Impl::Open() {
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  if (absl::Status s = CheckCanPrepare(conn->get()); !s.ok()) return s;
  return internal::CreateTablesOnce(conn->get(), "baton_branches",
                                    {kBranchTable});
}

std::optional<std::string> PostgresXaResource::Impl::Gid(
    const std::string& xid, uint64_t branch_id) const {
  std::string gid = fmt::format("{}{}/{}", prefix_, branch_id, xid);
  if (gid.size() > kMaxGidBytes) return std::nullopt;
  return gid;
}

absl::Status PostgresXaResource::Impl::Prepare(const BranchContext& branch) {
  std::optional<std::string> gid = Gid(branch.xid, branch.branch_id);
  if (!gid) {
    return absl::InvalidArgumentError(fmt::format(
        "xid '{}' is too long for a PostgreSQL gid ({} bytes at most with "
        "the prefix '{}')",
        branch.xid, kMaxGidBytes, prefix_));
  }
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  absl::Status s = PrepareOn(conn->get(), branch, *gid);
  if (!s.ok() && PQtransactionStatus(conn->get()) != PQTRANS_IDLE) {
    // If this fails too, the lease closes the connection, which also ends
    // the transaction.
    PgExec(conn->get(), "ROLLBACK").IgnoreError();
  }
  return s;
}

absl::Status PostgresXaResource::Impl::PrepareOn(PGconn* conn,
                                                 const BranchContext& branch,
                                                 const std::string& gid) {
  absl::StatusOr<PgResult> r = PgExec(conn, "BEGIN");
  if (r.ok()) {
    r = PgExec(conn, "SELECT set_config('lock_timeout', $1, true)",
               {std::to_string(options_.lock_timeout.count())});
  }
  if (r.ok()) {
    r = PgExec(
        conn,
        "INSERT INTO baton_branches (gid, xid, branch_id, resource) "
        "VALUES ($1, $2, $3, $4)",
        {gid, branch.xid, std::to_string(branch.branch_id), options_.resource});
  }
  if (!r.ok()) return r.status();
  if (absl::Status s = work_(conn, branch); !s.ok()) return s;

  absl::StatusOr<std::string> literal = internal::PgLiteral(conn, gid);
  if (!literal.ok()) return literal.status();
  r = PgExec(conn, "PREPARE TRANSACTION " + *literal);
  if (!r.ok()) {
    std::string message(r.status().message());
    if (message.find("prepared transactions are disabled") !=
        std::string::npos) {
      return absl::FailedPreconditionError(PreparationsDisabled(conn));
    }
    // A deferred constraint fails here rather than in the work. Keep its
    // code and SQLSTATE (PgSqlState), as for an error from the work.
    absl::Status failed(
        r.status().code(),
        fmt::format("PREPARE TRANSACTION {} failed: {}", gid, message));
    r.status().ForEachPayload(
        [&failed](absl::string_view url, const absl::Cord& payload) {
          failed.SetPayload(url, payload);
        });
    return failed;
  }
  // In a transaction that already failed (the work swallowed an error),
  // PostgreSQL answers PREPARE with a rollback rather than an error.
  if (std::string_view(PQcmdStatus(r->get())) != "PREPARE TRANSACTION") {
    return absl::AbortedError(fmt::format(
        "branch {} of {} was not prepared: a statement in it had failed, so "
        "PostgreSQL rolled it back",
        branch.branch_id, branch.xid));
  }
  return absl::OkStatus();
}

PhaseTwoResult PostgresXaResource::Impl::Finish(const BranchContext& branch,
                                                bool commit) {
  std::optional<std::string> gid = Gid(branch.xid, branch.branch_id);
  if (!gid) {
    // Prepare refuses such xids, so nothing of this branch was ever written.
    return commit ? PhaseTwoResult::Failed("xid too long: never prepared")
                  : PhaseTwoResult::Done();
  }
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  if (!conn.ok()) return PhaseTwoResult::Retry(conn.status().ToString());
  absl::StatusOr<std::string> literal = internal::PgLiteral(conn->get(), *gid);
  if (!literal.ok()) return PhaseTwoResult::Retry(literal.status().ToString());
  absl::StatusOr<PgResult> r =
      PgExec(conn->get(),
             (commit ? "COMMIT PREPARED " : "ROLLBACK PREPARED ") + *literal);
  if (r.ok()) return PhaseTwoResult::Done();
  std::string state = PgSqlState(r.status());
  if (state == kOtherDatabase || state == kOtherRole) {
    return Misconfigured(conn->get(), *gid, commit, r.status());
  }
  if (state != kNoSuchGid) {
    // Unreachable server, or the gid is busy being finished by another
    // session: either way the next attempt will know more.
    return PhaseTwoResult::Retry(r.status().ToString());
  }
  return ResolveGone(conn->get(), *gid, commit);
}

// Still a retry: another instance of the resource, set up right, may be the
// next to get the command. But no retry here can succeed, so the message
// says what to fix, and it is logged as an error.
PhaseTwoResult PostgresXaResource::Impl::Misconfigured(
    PGconn* conn, const std::string& gid, bool commit,
    const absl::Status& refusal) {
  std::string message = fmt::format(
      "{} {} refused ({}): every instance of resource '{}' must connect to "
      "the database, as the role, that prepared its branches; this one is "
      "database '{}' as '{}'",
      commit ? "COMMIT PREPARED" : "ROLLBACK PREPARED", gid,
      std::string(refusal.message()), options_.resource, PQdb(conn),
      PQuser(conn));
  spdlog::error("{}", message);
  return PhaseTwoResult::Retry(std::move(message));
}

// The gid is not prepared (any more). Its branch row was written in the
// prepared transaction, so it exists exactly when that transaction
// committed. COMMIT PREPARED makes the commit visible before it forgets the
// gid, so a fresh read here cannot miss a commit that just happened.
PhaseTwoResult PostgresXaResource::Impl::ResolveGone(PGconn* conn,
                                                     const std::string& gid,
                                                     bool commit) {
  absl::StatusOr<PgResult> row =
      PgExec(conn, "SELECT 1 FROM baton_branches WHERE gid = $1", {gid});
  if (!row.ok()) return PhaseTwoResult::Retry(row.status().ToString());
  bool committed = PQntuples(row->get()) > 0;
  if (commit == committed) return PhaseTwoResult::Done();
  if (commit) {
    return PhaseTwoResult::Failed(
        fmt::format("cannot commit {}: it is not prepared and has no branch "
                    "row, so it was rolled back (or never prepared)",
                    gid));
  }
  return PhaseTwoResult::Failed(fmt::format(
      "cannot roll back {}: its branch row shows it already committed", gid));
}

std::vector<InDoubtBranch> PostgresXaResource::Impl::Recover() {
  std::vector<InDoubtBranch> branches;
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  absl::StatusOr<PgResult> r =
      conn.ok() ? PgExec(conn->get(),
                         "SELECT gid FROM pg_prepared_xacts WHERE database = "
                         "current_database() AND left(gid, $2::int) = $1",
                         {prefix_, std::to_string(prefix_.size())})
                : absl::StatusOr<PgResult>(conn.status());
  if (!r.ok()) {
    spdlog::error("resource {}: cannot list prepared transactions: {}",
                  options_.resource, r.status().ToString());
    return branches;
  }
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    // <prefix><branch id>/<xid>
    std::string_view rest(PQgetvalue(r->get(), i, 0));
    rest.remove_prefix(prefix_.size());
    InDoubtBranch branch;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(),
                                     branch.branch_id);
    if (ec != std::errc() || end == rest.data() + rest.size() || *end != '/') {
      spdlog::warn("resource {}: ignoring unparsable gid {}", options_.resource,
                   PQgetvalue(r->get(), i, 0));
      continue;
    }
    branch.xid = std::string(end + 1, rest.data() + rest.size());
    branches.push_back(std::move(branch));
  }
  return branches;
}

absl::StatusOr<size_t> PostgresXaResource::Impl::Purge(int64_t cutoff_unix_ms) {
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  absl::StatusOr<PgResult> r =
      PgExec(conn->get(),
             "DELETE FROM baton_branches WHERE resource = $1 AND "
             "prepared_at < to_timestamp($2::bigint / 1000.0)",
             {options_.resource, std::to_string(cutoff_unix_ms)});
  if (!r.ok()) return r.status();
  return static_cast<size_t>(std::atoll(PQcmdTuples(r->get())));
}

void PostgresXaResource::Impl::StartPurging() {
  if (options_.branch_retention.count() <= 0) return;
  purger_ = std::thread([this] { PurgeLoop(); });
}

bool PostgresXaResource::Impl::WaitOrStop() {
  absl::MutexLock lock(&purge_mu_);
  return purge_wake_.WaitFor(
      &purge_mu_, options_.purge_interval,
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(purge_mu_) { return stopping_; });
}

void PostgresXaResource::Impl::PurgeLoop() {
  while (!WaitOrStop()) {
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    absl::StatusOr<size_t> purged =
        Purge(now_ms - options_.branch_retention.count());
    if (!purged.ok()) {
      spdlog::warn(
          "resource {}: purging old branch rows failed ({}); "
          "trying again in {} ms",
          options_.resource, purged.status().ToString(),
          options_.purge_interval.count());
    } else if (*purged > 0) {
      spdlog::debug("resource {}: purged {} branch row(s)", options_.resource,
                    *purged);
    }
  }
}

void PostgresXaResource::Impl::StopPurging() {
  {
    absl::MutexLock lock(&purge_mu_);
    stopping_ = true;
  }
  purge_wake_.SignalAll();
  if (purger_.joinable()) purger_.join();
}

absl::StatusOr<std::unique_ptr<PostgresXaResource>> PostgresXaResource::Open(
    const PostgresXaOptions& options, PostgresBranchWork work) {
  if (!ValidResourceName(options.resource)) {
    return absl::InvalidArgumentError(fmt::format(
        "PostgreSQL resource name '{}' must be 1 to {} characters of "
        "[A-Za-z0-9._-]; it is part of every gid",
        options.resource, kMaxResourceNameBytes));
  }
  if (!work) {
    return absl::InvalidArgumentError("the branch work function is empty");
  }
  auto impl = std::make_unique<Impl>(options, std::move(work));
  if (absl::Status s = impl->Open(); !s.ok()) return s;
  impl->StartPurging();
  return std::unique_ptr<PostgresXaResource>(
      new PostgresXaResource(std::move(impl)));
}

PostgresXaResource::PostgresXaResource(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
PostgresXaResource::~PostgresXaResource() = default;

std::optional<std::string> PostgresXaResource::Gid(const std::string& xid,
                                                   uint64_t branch_id) const {
  return impl_->Gid(xid, branch_id);
}

absl::Status PostgresXaResource::Prepare(const BranchContext& branch) {
  return impl_->Prepare(branch);
}

PhaseTwoResult PostgresXaResource::Commit(const BranchContext& branch) {
  return impl_->Finish(branch, /*commit=*/true);
}

PhaseTwoResult PostgresXaResource::Rollback(const BranchContext& branch) {
  return impl_->Finish(branch, /*commit=*/false);
}

std::vector<InDoubtBranch> PostgresXaResource::Recover() {
  return impl_->Recover();
}

absl::StatusOr<size_t> PostgresXaResource::PurgeBranchesBefore(
    int64_t cutoff_unix_ms) {
  return impl_->Purge(cutoff_unix_ms);
}

}  // namespace baton
