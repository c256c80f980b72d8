#include "baton/postgres_barrier.h"

#include <charconv>

#include "fmt/format.h"
#include "participant_sdk/internal/postgres_pool.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

// One row per phase that happened: 't' (state "started" or "done"), 'c' for
// confirm, 'x' for cancel (with the time they resolved the branch).
constexpr std::string_view kBarrierTable = R"sql(
CREATE TABLE IF NOT EXISTS baton_barrier (
  xid         text NOT NULL,
  branch_id   bigint NOT NULL,
  phase       "char" NOT NULL,
  state       text NOT NULL DEFAULT '',
  resolved_at timestamptz,
  PRIMARY KEY (xid, branch_id, phase)
))sql";

constexpr char kTryStarted[] = "started";
constexpr char kTryDone[] = "done";

std::string PhaseLetter(TccPhase phase) {
  switch (phase) {
    case TccPhase::kTry:
      return "t";
    case TccPhase::kConfirm:
      return "c";
    case TccPhase::kCancel:
      return "x";
  }
  return "?";
}

class PgLocalTransaction : public LocalTransaction {
 public:
  explicit PgLocalTransaction(PGconn* conn) : conn(conn) {}
  PGconn* conn;
};

// What the table says about one branch.
struct Records {
  bool tried = false;
  bool try_done = false;
  bool confirmed = false;
  bool cancelled = false;
};

}  // namespace

class PostgresBarrier::Impl {
 public:
  explicit Impl(const PostgresBarrierOptions& options)
      : pool_(options.conninfo, {.max_idle = options.max_idle_connections,
                                 .max_open = options.max_connections,
                                 .acquire_timeout = options.connection_wait}) {}

  absl::Status Open();
  absl::StatusOr<BarrierResult> Run(const BarrierCall& call,
                                    const BarrierHook& hook);
  std::vector<std::pair<std::string, uint64_t>> Unresolved();
  absl::StatusOr<size_t> Purge(int64_t cutoff_unix_ms);

 private:
  absl::StatusOr<BarrierResult> RunOn(PGconn* conn, const BarrierCall& call,
                                      const BarrierHook& hook);
  absl::StatusOr<BarrierResult> RecordTryStarted(PGconn* conn,
                                                 const BarrierCall& call);
  absl::StatusOr<BarrierResult> RunTry(PGconn* conn, const BarrierCall& call,
                                       const BarrierHook& hook);
  absl::StatusOr<BarrierResult> RunResolution(PGconn* conn,
                                              const BarrierCall& call,
                                              const BarrierHook& hook);

  internal::PgPool pool_;
};

namespace {

// Opens a transaction holding the branch's advisory lock and reads its
// records. Another call for the same branch waits at the lock until this
// transaction ends, whichever process makes it.
absl::StatusOr<Records> BeginAndRead(PGconn* conn, const BarrierCall& call) {
  // READ COMMITTED whatever the server's default: each statement then
  // reads after the lock is granted, so the read below sees what the lock's
  // previous holder committed. Under REPEATABLE READ the snapshot would be
  // the lock statement's, taken before the wait.
  absl::StatusOr<PgResult> r =
      PgExec(conn, "BEGIN ISOLATION LEVEL READ COMMITTED");
  if (r.ok()) {
    r = PgExec(conn,
               "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, "
               "0))",
               {call.xid, std::to_string(call.branch_id)});
  }
  if (r.ok()) {
    r = PgExec(conn,
               "SELECT phase::text, state FROM baton_barrier "
               "WHERE xid = $1 AND branch_id = $2",
               {call.xid, std::to_string(call.branch_id)});
  }
  if (!r.ok()) return r.status();
  Records records;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    std::string_view phase = PQgetvalue(r->get(), i, 0);
    if (phase == "t") {
      records.tried = true;
      records.try_done =
          std::string_view(PQgetvalue(r->get(), i, 1)) == kTryDone;
    }
    if (phase == "c") records.confirmed = true;
    if (phase == "x") records.cancelled = true;
  }
  return records;
}

absl::Status Commit(PGconn* conn) { return PgExec(conn, "COMMIT").status(); }

}  // namespace

absl::Status PostgresBarrier::Impl::Open() {
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  return internal::CreateTablesOnce(conn->get(), "baton_barrier",
                                    {kBarrierTable});
}

absl::StatusOr<BarrierResult> PostgresBarrier::Impl::Run(
    const BarrierCall& call, const BarrierHook& hook) {
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  absl::StatusOr<BarrierResult> result = RunOn(conn->get(), call, hook);
  if (PQtransactionStatus(conn->get()) != PQTRANS_IDLE) {
    PgExec(conn->get(), "ROLLBACK").IgnoreError();
  }
  return result;
}

absl::StatusOr<BarrierResult> PostgresBarrier::Impl::RunOn(
    PGconn* conn, const BarrierCall& call, const BarrierHook& hook) {
  if (call.phase != TccPhase::kTry) return RunResolution(conn, call, hook);
  if (call.local_only) return RunTry(conn, call, hook);
  // The try is recorded as started in a transaction of its own, committed
  // before the hook runs: a try that dies half-way still gets its cancel.
  absl::StatusOr<BarrierResult> started = RecordTryStarted(conn, call);
  if (!started.ok() || *started == BarrierResult::kDuplicate) return started;
  return RunTry(conn, call, hook);
}

absl::StatusOr<BarrierResult> PostgresBarrier::Impl::RecordTryStarted(
    PGconn* conn, const BarrierCall& call) {
  absl::StatusOr<Records> records = BeginAndRead(conn, call);
  if (!records.ok()) return records.status();
  if (records->cancelled) {
    return absl::FailedPreconditionError(fmt::format(
        "branch {} of {} was cancelled before its try arrived; the late try "
        "is refused",
        call.branch_id, call.xid));
  }
  if (records->try_done) return BarrierResult::kDuplicate;
  if (!records->tried) {
    absl::StatusOr<PgResult> r =
        PgExec(conn,
               "INSERT INTO baton_barrier (xid, branch_id, phase, state) "
               "VALUES ($1, $2, 't', $3)",
               {call.xid, std::to_string(call.branch_id), kTryStarted});
    if (!r.ok()) return r.status();
  }
  if (absl::Status s = Commit(conn); !s.ok()) return s;
  return BarrierResult::kRan;
}

absl::StatusOr<BarrierResult> PostgresBarrier::Impl::RunTry(
    PGconn* conn, const BarrierCall& call, const BarrierHook& hook) {
  // Read again under the lock: a cancel or a twin try may have come between.
  absl::StatusOr<Records> records = BeginAndRead(conn, call);
  if (!records.ok()) return records.status();
  if (records->cancelled) {
    return absl::FailedPreconditionError(fmt::format(
        "branch {} of {} was cancelled {} its try; the late try is refused",
        call.branch_id, call.xid,
        call.local_only ? "before" : "while it started"));
  }
  if (records->try_done) return BarrierResult::kDuplicate;
  PgLocalTransaction local(conn);
  if (absl::Status s = hook(local, TryState::kNone); !s.ok()) return s;
  // A local try has no row, unless an attempt without the flag left one.
  absl::StatusOr<PgResult> r =
      PgExec(conn,
             records->tried
                 ? "UPDATE baton_barrier SET state = $3 "
                   "WHERE xid = $1 AND branch_id = $2 AND phase = 't'"
                 : "INSERT INTO baton_barrier (xid, branch_id, phase, state) "
                   "VALUES ($1, $2, 't', $3)",
             {call.xid, std::to_string(call.branch_id), kTryDone});
  if (!r.ok()) return r.status();
  if (absl::Status s = Commit(conn); !s.ok()) return s;
  return BarrierResult::kRan;
}

absl::StatusOr<BarrierResult> PostgresBarrier::Impl::RunResolution(
    PGconn* conn, const BarrierCall& call, const BarrierHook& hook) {
  absl::StatusOr<Records> records = BeginAndRead(conn, call);
  if (!records.ok()) return records.status();
  bool done = call.phase == TccPhase::kConfirm ? records->confirmed
                                               : records->cancelled;
  if (done) return BarrierResult::kDuplicate;
  if (call.phase == TccPhase::kConfirm && !records->tried) {
    return absl::FailedPreconditionError(
        fmt::format("confirm of branch {} of {}, whose try never ran here",
                    call.branch_id, call.xid));
  }
  bool empty_cancel = call.phase == TccPhase::kCancel && !records->tried;
  if (!empty_cancel) {
    PgLocalTransaction local(conn);
    TryState state =
        records->try_done ? TryState::kCompleted : TryState::kStarted;
    if (absl::Status s = hook(local, state); !s.ok()) return s;
  }
  absl::StatusOr<PgResult> r = PgExec(
      conn,
      "INSERT INTO baton_barrier (xid, branch_id, phase, resolved_at) "
      "VALUES ($1, $2, $3, now())",
      {call.xid, std::to_string(call.branch_id), PhaseLetter(call.phase)});
  if (!r.ok()) return r.status();
  if (absl::Status s = Commit(conn); !s.ok()) return s;
  return empty_cancel ? BarrierResult::kEmptyCancel : BarrierResult::kRan;
}

std::vector<std::pair<std::string, uint64_t>>
PostgresBarrier::Impl::Unresolved() {
  std::vector<std::pair<std::string, uint64_t>> out;
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  absl::StatusOr<PgResult> r =
      conn.ok()
          ? PgExec(conn->get(),
                   "SELECT t.xid, t.branch_id FROM baton_barrier t "
                   "WHERE t.phase = 't' AND NOT EXISTS ("
                   "  SELECT 1 FROM baton_barrier r WHERE r.xid = t.xid AND "
                   "  r.branch_id = t.branch_id AND r.phase IN ('c', 'x'))")
          : absl::StatusOr<PgResult>(conn.status());
  if (!r.ok()) {
    spdlog::error("barrier: cannot list unresolved branches: {}",
                  r.status().ToString());
    return out;
  }
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    uint64_t branch = 0;
    std::string_view id = PQgetvalue(r->get(), i, 1);
    std::from_chars(id.data(), id.data() + id.size(), branch);
    out.emplace_back(PQgetvalue(r->get(), i, 0), branch);
  }
  return out;
}

absl::StatusOr<size_t> PostgresBarrier::Impl::Purge(int64_t cutoff_unix_ms) {
  absl::StatusOr<internal::PgPool::Lease> conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  absl::StatusOr<PgResult> r = PgExec(
      conn->get(),
      "WITH old AS (SELECT DISTINCT xid, branch_id FROM baton_barrier "
      "             WHERE phase IN ('c', 'x') AND "
      "             resolved_at < to_timestamp($1::bigint / 1000.0)), "
      "     gone AS (DELETE FROM baton_barrier b USING old "
      "              WHERE b.xid = old.xid AND b.branch_id = old.branch_id "
      "              RETURNING b.xid, b.branch_id) "
      "SELECT count(*) FROM (SELECT DISTINCT xid, branch_id FROM gone) g",
      {std::to_string(cutoff_unix_ms)});
  if (!r.ok()) return r.status();
  return static_cast<size_t>(std::atoll(PQgetvalue(r->get(), 0, 0)));
}

absl::StatusOr<std::unique_ptr<PostgresBarrier>> PostgresBarrier::Open(
    const std::string& conninfo) {
  return Open(PostgresBarrierOptions{.conninfo = conninfo});
}

absl::StatusOr<std::unique_ptr<PostgresBarrier>> PostgresBarrier::Open(
    const PostgresBarrierOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status s = impl->Open(); !s.ok()) return s;
  return std::unique_ptr<PostgresBarrier>(new PostgresBarrier(std::move(impl)));
}

PostgresBarrier::PostgresBarrier(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
PostgresBarrier::~PostgresBarrier() = default;

PGconn* PostgresBarrier::Conn(LocalTransaction& local) {
  return static_cast<PgLocalTransaction&>(local).conn;
}

absl::StatusOr<BarrierResult> PostgresBarrier::Run(const BarrierCall& call,
                                                   const BarrierHook& hook) {
  return impl_->Run(call, hook);
}

std::vector<std::pair<std::string, uint64_t>> PostgresBarrier::Unresolved() {
  return impl_->Unresolved();
}

absl::StatusOr<size_t> PostgresBarrier::PurgeResolvedBefore(
    int64_t cutoff_unix_ms) {
  return impl_->Purge(cutoff_unix_ms);
}

}  // namespace baton
