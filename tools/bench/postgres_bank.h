#ifndef BATON_TOOLS_BENCH_POSTGRES_BANK_H_
#define BATON_TOOLS_BENCH_POSTGRES_BANK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "baton/postgres_xa_resource.h"
#include "baton/tcc.h"
#include "tools/bench/load_driver.h"

// The bank that `2pc --postgres` and `tcc --postgres` move money in: each
// participant's own database holds an accounts table, and a transfer takes 1
// from an account of one and gives it to an account of another, as the bank
// sample does. The same updates as one local transaction per transfer are the
// floor.
namespace baton::bench {

// Accounts per database: enough that concurrent transfers rarely wait on
// one another's row locks (a prepared branch holds its row until phase
// two), which would measure contention, not commits.
constexpr int kBankAccounts = 100'000;

// Connections each participant's PostgresXaResource or PostgresBarrier may
// hold, all kept when idle (closing and opening them per branch would be
// measured too).
constexpr size_t kParticipantPostgresConnections = 64;

// The account branch `index` of transaction `xid` moves, distinct for the
// branches of one transaction (a branch waiting on a row its own
// transaction's prepared branch holds would wait for the timeout), and how
// much: -1 on even branches, +1 on odd, 0 on the last of an odd count, so
// every transfer sums to 0.
int TransferAccount(const std::string& xid, int index);
int TransferDelta(int index, int branches);

// Creates the accounts table in `conninfo`'s database, each account with a
// balance of 1,000,000.
absl::Status CreateAccounts(const std::string& conninfo);

// A branch's application data: "<account> <delta>".
std::string TransferData(int account, int delta);
// The branch's SQL: its application data's update of one account.
PostgresBranchWork TransferWork();

// The same transfer as TCC hooks behind a PostgresBarrier: a try holds a
// debit's amount (held), confirm settles, cancel gives it back. Their
// action is TransferAction of the branch's transfer data (empty if it is
// not "<account> <delta>", which the hooks refuse). The try declares itself
// local (TccResource::TryIsLocal) if `try_is_local`; it is, either way.
std::unique_ptr<TccResource> MakeTransferTcc(bool try_is_local);
ActionValues TransferAction(const std::string& data);

// Closed loop, `options.concurrency` connections at once: BEGIN, the
// debit of one account, the credit of another, COMMIT, on `conninfo`.
LoadResult RunLocalTransfers(const std::string& conninfo,
                             const LoadOptions& options);

// WAL flushes of the whole server so far (pg_stat_wal.wal_sync).
absl::StatusOr<int64_t> WalFlushes(const std::string& conninfo);

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_POSTGRES_BANK_H_
