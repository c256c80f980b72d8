// The PostgreSQL backend of TransactionStore (postgres_store.h).

#include "coordinator/postgres_store.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "baton/postgres.h"
#include "common/failpoint.h"
#include "coordinator/pg_binary.h"
#include "coordinator/postgres_schema.h"
#include "coordinator/postgres_writes.h"
#include "coordinator/stored_record.h"
#include "coordinator/xid.h"
#include "fmt/format.h"
#include "participant_sdk/internal/postgres_pool.h"
#include "spdlog/spdlog.h"

namespace baton {
namespace {

using postgres_store::BatchShards;
using postgres_store::EnsureSchema;
using postgres_store::GroupParams;
using postgres_store::kCheckFences;
using postgres_store::PrepareWrites;
using postgres_store::RequireSynchronousCommit;
using postgres_store::ShardOf;
using postgres_store::StatementName;

// The fault point between a write's fencing check and its commit.
constexpr char kFencedUncommitted[] = "store_between_fence_check_and_commit";

// The SQLSTATE batond_check_fences raises.
constexpr char kLeaseLost[] = "BF001";

// A failure PostgreSQL reports with the transaction rolled back for sure
// (deadlock, serialization, lock timeout): nothing was written, so the
// group may go again.
bool RolledBack(const absl::Status& s) {
  const std::string state = PgSqlState(s);
  return state == "40P01" || state == "40001" || state == "55P03";
}

// A record with its branches and definition, as one row.
constexpr char kRecordColumns[] =
    "t.xid, t.record, t.definition, (SELECT array_agg(b.branch ORDER BY "
    "b.branch_id) FROM batond_branches b WHERE b.xid = t.xid)";

// Runs one statement with binary parameters and binary results.
absl::StatusOr<PgResult> Query(PGconn* conn, const char* sql,
                               pg::Params params) {
  const char* const* values = params.values();
  PgResult result(PQexecParams(conn, sql, params.size(), params.types(), values,
                               params.lengths(), params.formats(), 1));
  if (absl::Status s = PgCheck(conn, result.get()); !s.ok()) return s;
  return result;
}

// The record in `row` of a result with kRecordColumns.
absl::Status ReadRecord(const PGresult* result, int row, v1::Transaction* txn) {
  const std::string xid(pg::GetBytes(result, row, 0));
  const std::string where = "batond_transactions row " + xid;
  if (absl::Status s =
          ParseStoredRecord(xid, pg::GetBytes(result, row, 1), where, txn);
      !s.ok()) {
    return s;
  }
  std::vector<std::string_view> branches;
  if (absl::Status s = pg::GetBytesArray(result, row, 3, &branches); !s.ok()) {
    return absl::DataLossError(
        fmt::format("branches of {}: {}", xid, std::string(s.message())));
  }
  for (size_t i = 0; i < branches.size(); ++i) {
    const std::string branch_where =
        fmt::format("batond_branches row ({}, {})", xid, i + 1);
    if (absl::Status s = AppendStoredBranch(branches[i], branch_where, txn);
        !s.ok()) {
      return s;
    }
  }
  if (!txn->has_saga()) return absl::OkStatus();
  if (pg::IsNull(result, row, 2)) {
    return absl::DataLossError(
        fmt::format("{} is corrupt: a saga without its definition", where));
  }
  return ParseStoredDefinition(pg::GetBytes(result, row, 2),
                               where + " (definition)", txn);
}

// What the writing session needs, on every connection it opens.
absl::Status SetUpWriter(PGconn* writer) {
  absl::Status s = RequireSynchronousCommit(writer);
  // A writer stopped inside a transaction (SIGSTOP, a stalled network)
  // would hold its leases' locks, and a takeover would wait on it for good.
  if (s.ok()) {
    s = PgExec(writer, "SET idle_in_transaction_session_timeout = '5s'")
            .status();
  }
  if (s.ok()) s = PrepareWrites(writer);
  return s;
}

class PostgresStore : public TransactionStore {
 public:
  PostgresStore(std::string conninfo, PgConn writer, const ShardFences* fences)
      : fences_(fences),
        writer_(std::move(writer)),
        readers_(std::move(conninfo),
                 internal::PgPoolLimits{.max_idle = 4, .max_open = 8}) {}

  absl::Status Apply(const std::vector<const StoreBatch*>& batches) override {
    std::vector<absl::Status> refused;
    absl::Status s = ApplyFenced(batches, &refused);
    for (const absl::Status& r : refused) {
      if (s.ok() && !r.ok()) s = r;
    }
    return s;
  }

  // A batch of a shard whose lease is gone is refused, and the rest are
  // sent again without it: at most once per shard in the group.
  absl::Status ApplyFenced(const std::vector<const StoreBatch*>& batches,
                           std::vector<absl::Status>* refused) override {
    absl::MutexLock lock(&write_mu_);
    if (!failed_.ok()) return failed_;
    refused->assign(batches.size(), absl::OkStatus());
    std::vector<std::vector<int32_t>> shards(batches.size());
    if (fences_ != nullptr) {
      for (size_t i = 0; i < batches.size(); ++i) {
        shards[i] = BatchShards(*batches[i]);
      }
    }
    for (int attempt = 0;; ++attempt) {
      std::vector<const StoreBatch*> sending;
      std::map<int32_t, int64_t> fencings;
      for (size_t i = 0; i < batches.size(); ++i) {
        if (!(*refused)[i].ok()) continue;
        for (int32_t shard : shards[i]) {
          std::optional<int64_t> fencing =
              shard < 0 ? std::nullopt
                        : fences_->Get(static_cast<uint32_t>(shard));
          if (!fencing) {
            (*refused)[i] = ShardNotLeasedError(fmt::format(
                "shard {} is not leased by this node; nothing was written",
                shard));
            break;
          }
          fencings[shard] = *fencing;
        }
        if ((*refused)[i].ok()) sending.push_back(batches[i]);
      }
      if (sending.empty()) return absl::OkStatus();
      absl::Status s = Write(sending, fencings);
      if (RolledBack(s) && attempt < 3) continue;
      if (PgSqlState(s) != kLeaseLost) return s;
      // Nothing was written. Which shards were taken is read again, since
      // the refusal names only the first ones it met.
      absl::StatusOr<std::set<int32_t>> lost = LostShards(fencings);
      if (!lost.ok()) return Fail(lost.status());
      if (lost->empty() || attempt >= 3) {
        return ShardNotLeasedError(std::string(s.message()));
      }
      for (size_t i = 0; i < batches.size(); ++i) {
        for (int32_t shard : shards[i]) {
          if ((*refused)[i].ok() && lost->contains(shard)) {
            (*refused)[i] = ShardNotLeasedError(fmt::format(
                "shard {}: its lease was taken over; nothing was written",
                shard));
          }
        }
      }
    }
  }

  absl::Status Get(const std::string& xid, v1::Transaction* txn) override {
    absl::StatusOr<internal::PgPool::Lease> conn = readers_.Acquire();
    if (!conn.ok()) return conn.status();
    pg::Params params;
    params.Text(xid);
    absl::StatusOr<PgResult> r = Query(
        conn->get(),
        fmt::format("SELECT {} FROM batond_transactions t WHERE t.xid = $1",
                    kRecordColumns)
            .c_str(),
        std::move(params));
    if (!r.ok()) return Annotated(r.status(), "read transaction " + xid);
    if (PQntuples(r->get()) == 0) {
      return absl::NotFoundError(fmt::format("no transaction {}", xid));
    }
    return ReadRecord(r->get(), 0, txn);
  }

  // Pages through the partial index in its own order, (shard, due, xid):
  // within a shard, earliest next action first.
  absl::Status ScanUnfinished(
      const std::function<bool(const v1::Transaction&)>& fn) override {
    return Scan(std::nullopt, fn);
  }

  absl::Status ScanShardUnfinished(
      uint32_t shard,
      const std::function<bool(const v1::Transaction&)>& fn) override {
    return Scan(static_cast<int32_t>(shard), fn);
  }

  // One snapshot for every page: what fn writes meanwhile (an adopted
  // record's new due time) must not bring a record round again.
  absl::Status Scan(std::optional<int32_t> only,
                    const std::function<bool(const v1::Transaction&)>& fn) {
    absl::StatusOr<internal::PgPool::Lease> conn = readers_.Acquire();
    if (!conn.ok()) return conn.status();
    absl::Status s =
        PgExec(conn->get(), "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .status();
    if (s.ok()) s = ScanPages(conn->get(), only, fn);
    PgExec(conn->get(), s.ok() ? "COMMIT" : "ROLLBACK").IgnoreError();
    return s;
  }

  absl::Status ScanPages(
      PGconn* conn, std::optional<int32_t> only,
      const std::function<bool(const v1::Transaction&)>& fn) {
    const std::string sql = fmt::format(
        "SELECT {} FROM batond_transactions t WHERE NOT t.terminal AND "
        "(t.shard, t.due_ms, t.xid) > ($1, $2, $3) {}"
        "ORDER BY t.shard, t.due_ms, t.xid LIMIT 500",
        kRecordColumns, only ? "AND t.shard = $1 " : "");
    int64_t shard = only ? *only : INT32_MIN, due = INT64_MIN;
    std::string xid;
    for (;;) {
      pg::Params params;
      params.Int8(shard);
      params.Int8(due);
      params.Text(xid);
      absl::StatusOr<PgResult> r = Query(conn, sql.c_str(), std::move(params));
      if (!r.ok()) return Annotated(r.status(), "scan unfinished");
      const int rows = PQntuples(r->get());
      for (int row = 0; row < rows; ++row) {
        v1::Transaction txn;
        if (absl::Status s = ReadRecord(r->get(), row, &txn); !s.ok()) {
          return s;
        }
        xid = txn.xid();
        shard = ShardOf(xid);
        due = txn.next_action_unix_ms();
        if (!fn(txn)) return absl::OkStatus();
      }
      if (rows < 500) return absl::OkStatus();
    }
  }

  absl::Status ScanFinished(const FinishedRef* after, int64_t cutoff_ms,
                            size_t limit,
                            std::vector<FinishedRef>* out) override {
    absl::StatusOr<internal::PgPool::Lease> conn = readers_.Acquire();
    if (!conn.ok()) return conn.status();
    pg::Params params;
    params.Int8(cutoff_ms);
    params.Int8(after == nullptr ? INT64_MIN : after->finished_ms);
    params.Text(after == nullptr ? "" : after->xid);
    params.Int8(static_cast<int64_t>(limit));
    absl::StatusOr<PgResult> r = Query(
        conn->get(),
        "SELECT xid, finished_ms, owned_meta_key FROM batond_transactions "
        "WHERE terminal AND finished_ms < $1 AND (finished_ms, xid) > ($2, $3) "
        "ORDER BY finished_ms, xid LIMIT $4",
        std::move(params));
    if (!r.ok()) return Annotated(r.status(), "scan finished");
    for (int row = 0; row < PQntuples(r->get()); ++row) {
      out->push_back(FinishedRef{
          .xid = std::string(pg::GetBytes(r->get(), row, 0)),
          .finished_ms = pg::GetInt8(r->get(), row, 1),
          .owned_meta_key = std::string(pg::GetBytes(r->get(), row, 2))});
    }
    return absl::OkStatus();
  }

  absl::Status GetMeta(const std::string& key, std::string* value) override {
    absl::StatusOr<internal::PgPool::Lease> conn = readers_.Acquire();
    if (!conn.ok()) return conn.status();
    pg::Params params;
    params.Bytes(key);
    absl::StatusOr<PgResult> r =
        Query(conn->get(), "SELECT value FROM batond_meta WHERE key = $1",
              std::move(params));
    if (!r.ok()) return Annotated(r.status(), "read meta " + Printable(key));
    if (PQntuples(r->get()) == 0) {
      return absl::NotFoundError(
          fmt::format("read meta {}: not found", Printable(key)));
    }
    *value = std::string(pg::GetBytes(r->get(), 0, 0));
    return absl::OkStatus();
  }

  // Only once every shard was let go (the leased mode does so first), so
  // nothing written before the failure is assumed any more.
  absl::Status Revive() override {
    absl::MutexLock lock(&write_mu_);
    if (failed_.ok()) return absl::OkStatus();
    PQreset(writer_.get());
    absl::Status s = PgCheck(writer_.get(), nullptr);
    if (PQstatus(writer_.get()) == CONNECTION_OK)
      s = SetUpWriter(writer_.get());
    if (!s.ok()) return s;
    spdlog::info("store: writing to PostgreSQL at {} again",
                 PgDescribe(writer_.get()));
    failed_ = absl::OkStatus();
    return failed_;
  }

  StoreStats Stats() const override {
    return {.syncs = syncs_.load(std::memory_order_relaxed),
            .batches = batches_.load(std::memory_order_relaxed),
            .bytes = bytes_.load(std::memory_order_relaxed)};
  }

 private:
  // One database transaction for `batches`, checking `fencings` first
  // (none: no check). Sticky on any failure but a refused check.
  absl::Status Write(const std::vector<const StoreBatch*>& batches,
                     const std::map<int32_t, int64_t>& fencings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    std::vector<std::optional<pg::Params>> params = GroupParams(batches);
    if (!fencings.empty()) {
      std::vector<int32_t> shards;
      std::vector<int64_t> numbers;
      for (const auto& [shard, fencing] : fencings) {
        shards.push_back(shard);
        numbers.push_back(fencing);
      }
      pg::Params& check = params[kCheckFences].emplace();
      check.Int4Array(shards);
      check.Int8Array(numbers);
    }
    uint64_t bytes = 0;
    absl::Status s = Commit(&params, &bytes);
    syncs_.fetch_add(1, std::memory_order_relaxed);
    batches_.fetch_add(batches.size(), std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
    // A refused check, or a transaction the server rolled back, is an
    // outcome known: nothing was written.
    if (s.ok() || PgSqlState(s) == kLeaseLost || RolledBack(s)) return s;
    return Fail(s);
  }

  absl::Status Fail(const absl::Status& s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    failed_ = absl::Status(
        s.code(),
        fmt::format("store write to PostgreSQL at {} failed ({}); "
                    "refusing every write until restarted",
                    PgDescribe(writer_.get()), std::string(s.message())));
    return failed_;
  }

  // Of `fencings`, the shards whose number is no longer the one held.
  absl::StatusOr<std::set<int32_t>> LostShards(
      const std::map<int32_t, int64_t>& fencings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    pg::Params params;
    std::vector<int32_t> shards;
    std::vector<int64_t> numbers;
    for (const auto& [shard, fencing] : fencings) {
      shards.push_back(shard);
      numbers.push_back(fencing);
    }
    params.Int4Array(shards);
    params.Int8Array(numbers);
    absl::StatusOr<PgResult> r =
        Query(writer_.get(),
              "SELECT m.shard FROM unnest($1::int4[], $2::int8[]) AS m(shard, "
              "fencing) LEFT JOIN batond_shard_leases l USING (shard) "
              "WHERE l.fencing IS DISTINCT FROM m.fencing",
              std::move(params));
    if (!r.ok()) return r.status();
    std::set<int32_t> lost;
    for (int row = 0; row < PQntuples(r->get()); ++row) {
      lost.insert(pg::GetInt4(r->get(), row, 0));
    }
    return lost;
  }

  static absl::Status Annotated(const absl::Status& s, std::string_view what) {
    return absl::Status(s.code(),
                        fmt::format("{}: {}", what, std::string(s.message())));
  }

  // BEGIN, the statements, COMMIT: sent together and answered together.
  absl::Status Commit(std::vector<std::optional<pg::Params>>* params,
                      uint64_t* bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    PGconn* conn = writer_.get();
    if (PQenterPipelineMode(conn) != 1) {
      return absl::UnavailableError(
          fmt::format("cannot start a pipeline: {}", PQerrorMessage(conn)));
    }
    int sent = 0;
    bool queued = PQsendQueryParams(conn, "BEGIN", 0, nullptr, nullptr, nullptr,
                                    nullptr, 0) == 1;
    sent += queued;
    for (size_t i = 0; queued && i < params->size(); ++i) {
      std::optional<pg::Params>& p = (*params)[i];
      if (!p) continue;
      for (int k = 0; k < p->size(); ++k) *bytes += p->lengths()[k];
      queued =
          PQsendQueryPrepared(conn, StatementName(i), p->size(), p->values(),
                              p->lengths(), p->formats(), 1) == 1;
      sent += queued;
    }
    absl::Status first;
    // Tests hold the window between a checked write and its commit open
    // (the check's locks held, the session idle in its transaction, as a
    // stalled node would leave it); otherwise one round trip carries it
    // all.
    if (queued && (*params)[kCheckFences] &&
        failpoint::Armed(kFencedUncommitted)) {
      queued = PQpipelineSync(conn) == 1;
      if (queued) first = ReadResults(conn, sent);
      if (queued && PQstatus(conn) == CONNECTION_OK) {
        PgResult(PQgetResult(conn));  // The sync's.
      }
      sent = 0;
      if (absl::Status s = failpoint::Hit(kFencedUncommitted);
          first.ok() && !s.ok()) {
        first = s;
      }
      queued = queued && first.ok();
    }
    if (queued) {
      queued = PQsendQueryParams(conn, "COMMIT", 0, nullptr, nullptr, nullptr,
                                 nullptr, 0) == 1;
      sent += queued;
    }
    if (!queued && first.ok()) first = PgCheck(conn, nullptr);
    if (PQpipelineSync(conn) != 1 && first.ok()) first = PgCheck(conn, nullptr);
    if (absl::Status s = ReadResults(conn, sent); first.ok()) first = s;
    // The sync's own result, then the pipeline is idle again.
    if (PQstatus(conn) == CONNECTION_OK) PgResult(PQgetResult(conn));
    if (PQstatus(conn) != CONNECTION_OK && first.ok()) {
      first = PgCheck(conn, nullptr);
    }
    if (PQexitPipelineMode(conn) != 1 && first.ok()) {
      first = absl::UnavailableError(fmt::format(
          "the pipeline did not end cleanly: {}", PQerrorMessage(conn)));
    }
    if (!first.ok() && PQtransactionStatus(conn) != PQTRANS_IDLE) {
      PgExec(conn, "ROLLBACK").IgnoreError();
    }
    return first;
  }

  // The results of the next `count` statements of the pipeline: the first
  // failure among them.
  static absl::Status ReadResults(PGconn* conn, int count) {
    absl::Status first;
    for (int i = 0; i < count && PQstatus(conn) == CONNECTION_OK; ++i) {
      while (PGresult* raw = PQgetResult(conn)) {
        PgResult result(raw);
        if (absl::Status s = PgCheck(conn, raw); first.ok() && !s.ok()) {
          first = s;
        }
      }
    }
    return first;
  }

  const ShardFences* const fences_;
  absl::Mutex write_mu_;
  PgConn writer_ ABSL_GUARDED_BY(write_mu_);
  absl::Status failed_ ABSL_GUARDED_BY(write_mu_);  // Sticky once set.
  internal::PgPool readers_;
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace

absl::Status OpenPostgresStore(const std::string& conninfo,
                               std::unique_ptr<TransactionStore>* store,
                               const ShardFences* fences) {
  absl::StatusOr<PgConn> conn = PgConnect(conninfo);
  if (!conn.ok()) return conn.status();
  PGconn* writer = conn->get();
  absl::Status s = EnsureSchema(writer);
  if (s.ok()) s = SetUpWriter(writer);
  if (!s.ok()) {
    return absl::Status(
        s.code(), fmt::format("cannot open the store in PostgreSQL at {}: {}",
                              PgDescribe(writer), std::string(s.message())));
  }
  *store = std::make_unique<PostgresStore>(conninfo, std::move(*conn), fences);
  return absl::OkStatus();
}

}  // namespace baton
