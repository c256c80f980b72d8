#include "tools/bench/postgres_bank.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "baton/postgres.h"
#include "baton/postgres_barrier.h"
#include "fmt/format.h"

namespace baton::bench {

absl::Status CreateAccounts(const std::string& conninfo) {
  absl::StatusOr<PgConn> conn = PgConnect(conninfo);
  if (!conn.ok()) return conn.status();
  for (const std::string& sql :
       {std::string("CREATE TABLE IF NOT EXISTS accounts (id integer PRIMARY "
                    "KEY, balance bigint NOT NULL, held bigint NOT NULL "
                    "DEFAULT 0)"),
        fmt::format("INSERT INTO accounts SELECT i, 1000000 FROM "
                    "generate_series(0, {}) AS i ON CONFLICT DO NOTHING",
                    kBankAccounts - 1)}) {
    if (absl::StatusOr<PgResult> r = PgExec(conn->get(), sql); !r.ok()) {
      return r.status();
    }
  }
  return absl::OkStatus();
}

int TransferAccount(const std::string& xid, int index) {
  // 7919 is prime to kBankAccounts, so indices < kBankAccounts differ.
  const uint64_t start = std::hash<std::string>{}(xid);
  return static_cast<int>((start + uint64_t(index) * 7919) % kBankAccounts);
}

int TransferDelta(int index, int branches) {
  if (branches % 2 == 1 && index == branches - 1) return 0;
  return index % 2 == 0 ? -1 : 1;
}

std::string TransferData(int account, int delta) {
  return fmt::format("{} {}", account, delta);
}

namespace {

struct Transfer {
  std::string account;
  int64_t delta = 0;
};

absl::StatusOr<Transfer> ParseTransfer(const std::string& data) {
  Transfer transfer;
  size_t space = data.find(' ');
  if (space == std::string::npos ||
      !absl::SimpleAtoi(data.substr(space + 1), &transfer.delta)) {
    return absl::InvalidArgumentError("transfer data is '<account> <delta>'");
  }
  transfer.account = data.substr(0, space);
  return transfer;
}

// A TCC transfer: the try of a debit moves the amount from balance to
// held, confirm releases what it held and credits a credit's amount, and
// cancel gives a debit's amount back. Each hook is one UPDATE inside the
// barrier's transaction, so a try that did not complete did nothing.
class TransferTcc : public TccResource {
 public:
  explicit TransferTcc(bool local) : local_(local) {}
  absl::Status Try(const TccContext& c, LocalTransaction& local) override {
    return Update(c, local,
                  "UPDATE accounts SET balance = balance - $2, held = held + "
                  "$2 WHERE id = $1");
  }
  bool TryIsLocal() const override { return local_; }
  PhaseTwoResult Confirm(const TccContext& c,
                         LocalTransaction& local) override {
    return Finish(Update(c, local,
                         "UPDATE accounts SET balance = balance + $3, held = "
                         "held - $2 WHERE id = $1"));
  }
  PhaseTwoResult Cancel(const TccContext& c, LocalTransaction& local) override {
    if (c.try_state != TryState::kCompleted) return PhaseTwoResult::Done();
    return Finish(Update(c, local,
                         "UPDATE accounts SET balance = balance + $2, held = "
                         "held - $2 WHERE id = $1"));
  }

 private:
  // $1 the account, $2 what a debit holds, $3 what a credit gains.
  static absl::Status Update(const TccContext& c, LocalTransaction& local,
                             const char* sql) {
    auto account = c.action.find("account");
    auto delta = c.action.find("delta");
    if (account == c.action.end() || delta == c.action.end()) {
      return absl::InvalidArgumentError("a transfer needs account and delta");
    }
    absl::StatusOr<Transfer> t =
        ParseTransfer(account->second + " " + delta->second);
    if (!t.ok()) return t.status();
    std::vector<std::string> params = {
        t->account, std::to_string(std::max<int64_t>(-t->delta, 0))};
    if (std::string_view(sql).find("$3") != std::string_view::npos) {
      params.push_back(std::to_string(std::max<int64_t>(t->delta, 0)));
    }
    return PgExec(PostgresBarrier::Conn(local), sql, params).status();
  }
  static PhaseTwoResult Finish(const absl::Status& s) {
    return s.ok() ? PhaseTwoResult::Done()
                  : PhaseTwoResult::Retry(std::string(s.message()));
  }

  const bool local_;
};

}  // namespace

PostgresBranchWork TransferWork() {
  return [](PGconn* conn, const BranchContext& branch) -> absl::Status {
    absl::StatusOr<Transfer> t = ParseTransfer(branch.application_data);
    if (!t.ok()) return t.status();
    return PgExec(conn,
                  "UPDATE accounts SET balance = balance + $2 WHERE id = $1",
                  {t->account, std::to_string(t->delta)})
        .status();
  };
}

std::unique_ptr<TccResource> MakeTransferTcc(bool try_is_local) {
  return std::make_unique<TransferTcc>(try_is_local);
}

ActionValues TransferAction(const std::string& data) {
  absl::StatusOr<Transfer> t = ParseTransfer(data);
  if (!t.ok()) return {};
  return {{"account", t->account}, {"delta", std::to_string(t->delta)}};
}

namespace {

// One transfer as one local transaction; rows in id order, so two
// transfers never wait on each other in a cycle.
absl::Status LocalTransfer(PGconn* conn, int from, int to) {
  constexpr char kUpdate[] =
      "UPDATE accounts SET balance = balance + $2 WHERE id = $1";
  std::pair<int, int> first{from, -1}, second{to, 1};
  if (to < from) std::swap(first, second);
  for (const auto& [sql, params] :
       {std::pair<const char*, std::vector<std::string>>{"BEGIN", {}},
        {kUpdate, {std::to_string(first.first), std::to_string(first.second)}},
        {kUpdate,
         {std::to_string(second.first), std::to_string(second.second)}},
        {"COMMIT", {}}}) {
    if (absl::StatusOr<PgResult> r = PgExec(conn, sql, params); !r.ok()) {
      PgExec(conn, "ROLLBACK").IgnoreError();
      return r.status();
    }
  }
  return absl::OkStatus();
}

}  // namespace

LoadResult RunLocalTransfers(const std::string& conninfo,
                             const LoadOptions& options) {
  using Clock = std::chrono::steady_clock;
  LoadResult result;
  absl::Mutex mu;
  std::atomic<uint64_t> started{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + options.duration;
  auto more = [&] {
    if (options.operations > 0) return started++ < options.operations;
    return Clock::now() < end;
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < options.concurrency; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 random(i);
      std::uniform_int_distribution<int> account(0, kBankAccounts - 1);
      absl::StatusOr<PgConn> conn = PgConnect(conninfo);
      std::vector<int64_t> latencies;
      uint64_t errors = conn.ok() ? 0 : 1;
      std::string first_error = conn.ok() ? "" : conn.status().ToString();
      while (conn.ok() && more()) {
        const Clock::time_point began = Clock::now();
        absl::Status s =
            LocalTransfer(conn->get(), account(random), account(random));
        if (s.ok()) {
          latencies.push_back(
              std::chrono::duration_cast<std::chrono::microseconds>(
                  Clock::now() - began)
                  .count());
        } else if (errors++ == 0) {
          first_error = s.ToString();
        }
      }
      absl::MutexLock lock(&mu);
      result.completed += latencies.size() + errors;
      result.errors += errors;
      if (result.first_error.empty()) result.first_error = first_error;
      result.latencies_us.insert(result.latencies_us.end(), latencies.begin(),
                                 latencies.end());
    });
  }
  for (std::thread& t : threads) t.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(result.latencies_us.begin(), result.latencies_us.end());
  return result;
}

absl::StatusOr<int64_t> WalFlushes(const std::string& conninfo) {
  absl::StatusOr<PgConn> conn = PgConnect(conninfo);
  if (!conn.ok()) return conn.status();
  absl::StatusOr<PgResult> r =
      PgExec(conn->get(), "SELECT wal_sync FROM pg_stat_wal");
  if (!r.ok()) return r.status();
  return std::stoll(PQgetvalue(r->get(), 0, 0));
}

}  // namespace baton::bench
