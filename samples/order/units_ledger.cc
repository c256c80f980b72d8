#include "samples/order/units_ledger.h"

#include "fmt/format.h"
#include "samples/counters.h"

namespace baton::samples {
namespace {

// A phase two's outcome after `moved`: a store that cannot be read now may
// be readable at the next attempt.
PhaseTwoResult DoneUnless(const absl::Status& moved) {
  return moved.ok() ? PhaseTwoResult::Done()
                    : PhaseTwoResult::Retry(moved.ToString());
}

// The action context carries the key and the units.
bool Parse(const TccContext& branch, std::string* key, int64_t* units) {
  auto k = branch.action.find("key");
  auto u = branch.action.find("units");
  if (k == branch.action.end() || u == branch.action.end()) return false;
  *key = k->second;
  *units = std::stoll(u->second);
  return true;
}

}  // namespace

absl::Status UnitsLedger::Open(const std::string& dir,
                               const std::map<std::string, int64_t>& seed,
                               std::unique_ptr<UnitsLedger>* out) {
  leveldb::Options options;
  options.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, dir, &raw);
  if (!s.ok()) return absl::UnavailableError(s.ToString());
  std::unique_ptr<UnitsLedger> ledger(
      new UnitsLedger(std::unique_ptr<leveldb::DB>(raw)));
  std::string ignored;
  if (raw->Get(leveldb::ReadOptions(), "seeded", &ignored).IsNotFound()) {
    leveldb::WriteBatch batch;
    for (const auto& [key, units] : seed) {
      batch.Put("available/" + key, std::to_string(units));
    }
    batch.Put("seeded", "1");
    leveldb::WriteOptions sync;
    sync.sync = true;
    s = raw->Write(sync, &batch);
    if (!s.ok()) return absl::UnavailableError(s.ToString());
  }
  *out = std::move(ledger);
  return absl::OkStatus();
}

absl::StatusOr<UnitsLedger::Level> UnitsLedger::GetLevel(
    const std::string& key) {
  return Level{ReadCounter(db_.get(), "available/" + key),
               ReadCounter(db_.get(), "held/" + key),
               ReadCounter(db_.get(), "spent/" + key)};
}

absl::Status UnitsLedger::Try(const TccContext& branch,
                              LocalTransaction& local) {
  std::string key;
  int64_t units;
  if (!Parse(branch, &key, &units) || units <= 0) {
    return absl::InvalidArgumentError("reserve needs a key and positive units");
  }
  absl::StatusOr<int64_t> read = ReadCounter(local, "available/" + key);
  if (!read.ok()) return read.status();
  const int64_t available = *read;
  if (available < units) {
    return absl::FailedPreconditionError(fmt::format(
        "insufficient {}: {} available, {} requested", key, available, units));
  }
  return AddToCounters(local, key, {{"available", -units}, {"held", units}});
}

PhaseTwoResult UnitsLedger::Confirm(const TccContext& branch,
                                    LocalTransaction& local) {
  std::string key;
  int64_t units;
  if (!Parse(branch, &key, &units)) return PhaseTwoResult::Failed("no action");
  if (branch.action.count("refuse_confirm")) {
    return PhaseTwoResult::Failed(fmt::format(
        "confirm of {} units of {} refused by the service", units, key));
  }
  return DoneUnless(
      AddToCounters(local, key, {{"held", -units}, {"spent", units}}));
}

PhaseTwoResult UnitsLedger::Cancel(const TccContext& branch,
                                   LocalTransaction& local) {
  // A try that only started wrote nothing here: all its writes share one
  // batch with its completion record.
  if (branch.try_state != TryState::kCompleted) return PhaseTwoResult::Done();
  std::string key;
  int64_t units;
  if (!Parse(branch, &key, &units)) return PhaseTwoResult::Failed("no action");
  return DoneUnless(
      AddToCounters(local, key, {{"held", -units}, {"available", units}}));
}

}  // namespace baton::samples
