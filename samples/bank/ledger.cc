#include "samples/bank/ledger.h"

#include <charconv>

#include "fmt/format.h"
#include "leveldb/write_batch.h"

namespace baton::samples {
namespace {

std::string BalanceKey(const std::string& account) { return "b/" + account; }
std::string HoldKey(const BranchContext& b) {
  return fmt::format("h/{}/{}", b.xid, b.branch_id);
}

leveldb::WriteOptions Synced() {
  leveldb::WriteOptions options;
  options.sync = true;
  return options;
}

}  // namespace

std::string Ledger::EncodeMove(const std::string& account, int64_t delta) {
  return fmt::format("{}:{}", account, delta);
}

bool Ledger::DecodeMove(const std::string& data, std::string* account,
                        int64_t* delta) {
  size_t colon = data.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *account = data.substr(0, colon);
  const char* end = data.data() + data.size();
  auto [ptr, ec] = std::from_chars(data.data() + colon + 1, end, *delta);
  return ec == std::errc() && ptr == end;
}

absl::Status Ledger::Open(const std::string& dir,
                          const std::map<std::string, int64_t>& seed,
                          std::unique_ptr<Ledger>* out) {
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, dir, &raw);
  if (!s.ok()) return absl::UnavailableError(s.ToString());
  std::unique_ptr<Ledger> ledger(new Ledger(std::unique_ptr<leveldb::DB>(raw)));
  std::string ignored;
  if (ledger->db_->Get(leveldb::ReadOptions(), "m/seeded", &ignored)
          .IsNotFound()) {
    leveldb::WriteBatch batch;
    for (const auto& [account, balance] : seed) {
      batch.Put(BalanceKey(account), std::to_string(balance));
    }
    batch.Put("m/seeded", "1");
    s = ledger->db_->Write(Synced(), &batch);
    if (!s.ok()) return absl::UnavailableError(s.ToString());
  }
  // Rebuild the in-memory view of holds from their records.
  std::unique_ptr<leveldb::Iterator> it(
      ledger->db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek("h/"); it->Valid() && it->key().starts_with("h/"); it->Next()) {
    std::string account;
    int64_t delta;
    if (DecodeMove(it->value().ToString(), &account, &delta)) {
      if (delta < 0) ledger->held_[account] -= delta;
      ++ledger->open_holds_;
    }
  }
  *out = std::move(ledger);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Ledger::ReadBalanceLocked(const std::string& account) {
  std::string value;
  leveldb::Status s =
      db_->Get(leveldb::ReadOptions(), BalanceKey(account), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(fmt::format("no account '{}'", account));
  }
  if (!s.ok()) return absl::UnavailableError(s.ToString());
  return std::stoll(value);
}

absl::Status Ledger::Prepare(const BranchContext& branch) {
  std::string account;
  int64_t delta;
  if (!DecodeMove(branch.application_data, &account, &delta)) {
    return absl::InvalidArgumentError("malformed move " +
                                      branch.application_data);
  }
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<int64_t> balance = ReadBalanceLocked(account);
  if (!balance.ok()) return balance.status();
  int64_t available = *balance - held_[account];
  if (delta < 0 && available + delta < 0) {
    return absl::FailedPreconditionError(fmt::format(
        "insufficient funds: {} has {} available, the debit needs {}", account,
        available, -delta));
  }
  leveldb::Status s =
      db_->Put(Synced(), HoldKey(branch), branch.application_data);
  if (!s.ok()) return absl::UnavailableError(s.ToString());
  if (delta < 0) held_[account] -= delta;
  ++open_holds_;
  return absl::OkStatus();
}

PhaseTwoResult Ledger::Resolve(const BranchContext& branch, bool apply) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string move;
  leveldb::Status s = db_->Get(leveldb::ReadOptions(), HoldKey(branch), &move);
  if (s.IsNotFound()) return PhaseTwoResult::Done();  // Resolved before.
  if (!s.ok()) return PhaseTwoResult::Retry(s.ToString());
  std::string account;
  int64_t delta;
  if (!DecodeMove(move, &account, &delta)) {
    return PhaseTwoResult::Failed("corrupt hold record " + move);
  }
  leveldb::WriteBatch batch;
  batch.Delete(HoldKey(branch));
  if (apply) {
    absl::StatusOr<int64_t> balance = ReadBalanceLocked(account);
    if (!balance.ok())
      return PhaseTwoResult::Retry(balance.status().ToString());
    batch.Put(BalanceKey(account), std::to_string(*balance + delta));
  }
  s = db_->Write(Synced(), &batch);
  if (!s.ok()) return PhaseTwoResult::Retry(s.ToString());
  if (delta < 0) held_[account] += delta;
  --open_holds_;
  return PhaseTwoResult::Done();
}

PhaseTwoResult Ledger::Commit(const BranchContext& branch) {
  return Resolve(branch, /*apply=*/true);
}

PhaseTwoResult Ledger::Rollback(const BranchContext& branch) {
  return Resolve(branch, /*apply=*/false);
}

std::vector<InDoubtBranch> Ledger::Recover() {
  std::vector<InDoubtBranch> branches;
  std::unique_ptr<leveldb::Iterator> it(
      db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek("h/"); it->Valid() && it->key().starts_with("h/"); it->Next()) {
    // h/<xid>/<branch>
    std::string key = it->key().ToString();
    size_t slash = key.rfind('/');
    InDoubtBranch branch{key.substr(2, slash - 2), 0};
    std::from_chars(key.data() + slash + 1, key.data() + key.size(),
                    branch.branch_id);
    branches.push_back(std::move(branch));
  }
  return branches;
}

absl::StatusOr<Ledger::Balance> Ledger::GetBalance(const std::string& account) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<int64_t> balance = ReadBalanceLocked(account);
  if (!balance.ok()) return balance.status();
  return Balance{*balance, held_[account], open_holds_};
}

}  // namespace baton::samples
