#include "baton/leveldb_barrier.h"

#include <charconv>
#include <chrono>
#include <memory>

#include "fmt/format.h"

namespace baton {
namespace {

// barrier/b/<xid>/<branch>/<t|c|x>: the try ("started" or "done"), the
//                                   confirm and the cancel (time written).
// barrier/p/<resolved:16 hex>/<xid>/<branch>: resolved branches, by time.
constexpr char kRecordPrefix[] = "barrier/b/";
constexpr char kPurgePrefix[] = "barrier/p/";
constexpr char kTryStarted[] = "started";
constexpr char kTryDone[] = "done";

char PhaseLetter(TccPhase phase) {
  switch (phase) {
    case TccPhase::kTry:
      return 't';
    case TccPhase::kConfirm:
      return 'c';
    case TccPhase::kCancel:
      return 'x';
  }
  return '?';
}

std::string RecordKey(const std::string& xid, uint64_t branch, char phase) {
  return fmt::format("{}{}/{}/{}", kRecordPrefix, xid, branch, phase);
}

std::string PurgeKey(int64_t ms, const std::string& xid, uint64_t branch) {
  return fmt::format("{}{:016x}/{}/{}", kPurgePrefix, static_cast<uint64_t>(ms),
                     xid, branch);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Splits "<xid>/<branch>" (the tail of a key).
bool SplitBranch(std::string_view tail, std::string* xid, uint64_t* branch) {
  size_t slash = tail.rfind('/');
  if (slash == std::string_view::npos) return false;
  *xid = std::string(tail.substr(0, slash));
  auto [p, ec] = std::from_chars(tail.data() + slash + 1,
                                 tail.data() + tail.size(), *branch);
  return ec == std::errc() && p == tail.data() + tail.size();
}

class LevelDbLocalTransaction : public LocalTransaction {
 public:
  explicit LevelDbLocalTransaction(leveldb::DB* db) : db(db) {}
  leveldb::DB* db;
  leveldb::WriteBatch batch;
};

}  // namespace

leveldb::WriteBatch* LevelDbBarrier::Batch(LocalTransaction& local) {
  return &static_cast<LevelDbLocalTransaction&>(local).batch;
}

leveldb::DB* LevelDbBarrier::Db(LocalTransaction& local) {
  return static_cast<LevelDbLocalTransaction&>(local).db;
}

absl::Status LevelDbBarrier::Write(leveldb::WriteBatch* batch) {
  leveldb::WriteOptions options;
  options.sync = true;
  leveldb::Status s = db_->Write(options, batch);
  return s.ok() ? absl::OkStatus() : absl::UnavailableError(s.ToString());
}

absl::StatusOr<BarrierResult> LevelDbBarrier::Run(const BarrierCall& call,
                                                  const BarrierHook& hook) {
  absl::MutexLock lock(&mu_);
  return RunLocked(call, hook);
}

absl::StatusOr<BarrierResult> LevelDbBarrier::RunLocked(
    const BarrierCall& call, const BarrierHook& hook) {
  auto get = [&](char phase, std::string* value) {
    return db_
        ->Get(leveldb::ReadOptions(),
              RecordKey(call.xid, call.branch_id, phase), value)
        .ok();
  };
  std::string try_value, ignored;
  bool tried = get('t', &try_value);
  bool cancelled = get('x', &ignored);
  LevelDbLocalTransaction local(db_);
  const std::string own_key =
      RecordKey(call.xid, call.branch_id, PhaseLetter(call.phase));

  if (call.phase == TccPhase::kTry) {
    if (cancelled) {
      return absl::FailedPreconditionError(fmt::format(
          "branch {} of {} was cancelled before its try arrived; the late try "
          "is refused",
          call.branch_id, call.xid));
    }
    if (try_value == kTryDone) return BarrierResult::kDuplicate;
    if (!tried) {
      leveldb::WriteBatch started;
      started.Put(own_key, kTryStarted);
      if (absl::Status s = Write(&started); !s.ok()) return s;
    }
    if (absl::Status s = hook(local, TryState::kNone); !s.ok()) return s;
    local.batch.Put(own_key, kTryDone);
    if (absl::Status s = Write(&local.batch); !s.ok()) return s;
    return BarrierResult::kRan;
  }

  if (get(PhaseLetter(call.phase), &ignored)) return BarrierResult::kDuplicate;
  int64_t now = NowMs();
  local.batch.Put(own_key, std::to_string(now));
  local.batch.Put(PurgeKey(now, call.xid, call.branch_id), "");
  if (call.phase == TccPhase::kConfirm && !tried) {
    return absl::FailedPreconditionError(
        fmt::format("confirm of branch {} of {}, whose try never ran here",
                    call.branch_id, call.xid));
  }
  if (call.phase == TccPhase::kCancel && !tried) {
    if (absl::Status s = Write(&local.batch); !s.ok()) return s;
    return BarrierResult::kEmptyCancel;
  }
  TryState state =
      try_value == kTryDone ? TryState::kCompleted : TryState::kStarted;
  if (absl::Status s = hook(local, state); !s.ok()) return s;
  if (absl::Status s = Write(&local.batch); !s.ok()) return s;
  return BarrierResult::kRan;
}

std::vector<std::pair<std::string, uint64_t>> LevelDbBarrier::Unresolved() {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  std::unique_ptr<leveldb::Iterator> it(
      db_->NewIterator(leveldb::ReadOptions()));
  const std::string prefix = kRecordPrefix;
  std::string ignored;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    if (!key.ends_with("/t")) continue;
    std::string xid;
    uint64_t branch;
    if (!SplitBranch(key.substr(prefix.size(), key.size() - prefix.size() - 2),
                     &xid, &branch)) {
      continue;
    }
    bool resolved =
        db_->Get(leveldb::ReadOptions(), RecordKey(xid, branch, 'c'), &ignored)
            .ok() ||
        db_->Get(leveldb::ReadOptions(), RecordKey(xid, branch, 'x'), &ignored)
            .ok();
    if (!resolved) out.emplace_back(xid, branch);
  }
  return out;
}

absl::StatusOr<size_t> LevelDbBarrier::PurgeResolvedBefore(
    int64_t cutoff_unix_ms) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<leveldb::Iterator> it(
      db_->NewIterator(leveldb::ReadOptions()));
  leveldb::WriteBatch batch;
  size_t purged = 0;
  const std::string prefix = kPurgePrefix;
  const std::string end = PurgeKey(cutoff_unix_ms, "", 0);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) &&
                         it->key().ToString() < end;
       it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    std::string xid;
    uint64_t branch;
    if (!SplitBranch(key.substr(prefix.size() + 17), &xid, &branch)) continue;
    for (char phase : {'t', 'c', 'x'})
      batch.Delete(RecordKey(xid, branch, phase));
    batch.Delete(it->key());
    ++purged;
  }
  if (purged == 0) return purged;
  if (absl::Status s = Write(&batch); !s.ok()) return s;
  return purged;
}

}  // namespace baton
