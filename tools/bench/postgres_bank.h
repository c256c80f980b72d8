#ifndef BATON_TOOLS_BENCH_POSTGRES_BANK_H_
#define BATON_TOOLS_BENCH_POSTGRES_BANK_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "baton/postgres_xa_resource.h"
#include "tools/bench/load_driver.h"

// The bank that `2pc --postgres` moves money in: each participant's own
// database holds an accounts table, and a transfer takes 1 from an account
// of one and gives it to an account of another, as the bank sample does.
// The same updates as one local transaction per transfer are the floor.
namespace baton::bench {

// Accounts per database: enough that concurrent transfers rarely wait on
// one another's row locks (a prepared branch holds its row until phase
// two), which would measure contention, not commits.
constexpr int kBankAccounts = 100'000;

// Creates the accounts table in `conninfo`'s database, each account with a
// balance of 1,000,000.
absl::Status CreateAccounts(const std::string& conninfo);

// A branch's application data: "<account> <delta>".
std::string TransferData(int account, int delta);
// The branch's SQL: its application data's update of one account.
PostgresBranchWork TransferWork();

// Closed loop, `options.concurrency` connections at once: BEGIN, the
// debit of one account, the credit of another, COMMIT, on `conninfo`.
LoadResult RunLocalTransfers(const std::string& conninfo,
                             const LoadOptions& options);

// WAL flushes of the whole server so far (pg_stat_wal.wal_sync).
absl::StatusOr<int64_t> WalFlushes(const std::string& conninfo);

}  // namespace baton::bench

#endif  // BATON_TOOLS_BENCH_POSTGRES_BANK_H_
