#include "baton/leveldb_barrier.h"

#include <charconv>
#include <chrono>
#include <memory>

#include "common/failpoint.h"
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

// Records, in a group, what each write of a batch leaves its key holding.
class KeysOf : public leveldb::WriteBatch::Handler {
 public:
  explicit KeysOf(
      std::map<std::string, std::optional<std::string>, std::less<>>* keys)
      : keys_(keys) {}
  void Put(const leveldb::Slice& key, const leveldb::Slice& value) override {
    (*keys_)[key.ToString()] = value.ToString();
  }
  void Delete(const leveldb::Slice& key) override {
    (*keys_)[key.ToString()] = std::nullopt;
  }

 private:
  std::map<std::string, std::optional<std::string>, std::less<>>* keys_;
};

}  // namespace

class LevelDbBarrier::Local : public LocalTransaction {
 public:
  explicit Local(LevelDbBarrier* barrier) : barrier(barrier) {}
  LevelDbBarrier* const barrier;
  leveldb::WriteBatch batch;
};

LevelDbBarrier::LevelDbBarrier(leveldb::DB* db)
    : db_(db), open_(std::make_unique<Group>()) {
  open_->number = 1;
}

LevelDbBarrier::~LevelDbBarrier() = default;

leveldb::WriteBatch* LevelDbBarrier::Batch(LocalTransaction& local) {
  return &static_cast<Local&>(local).batch;
}

leveldb::Status LevelDbBarrier::Get(LocalTransaction& local,
                                    const std::string& key,
                                    std::string* value) {
  LevelDbBarrier* barrier = static_cast<Local&>(local).barrier;
  barrier->mu_.AssertHeld();  // Hooks run under it.
  return barrier->GetLocked(key, value);
}

leveldb::Status LevelDbBarrier::GetLocked(const std::string& key,
                                          std::string* value) {
  for (const Group* group : {open_.get(), syncing_.get()}) {
    if (group == nullptr) continue;
    auto it = group->keys.find(key);
    if (it == group->keys.end()) continue;
    if (!it->second) return leveldb::Status::NotFound(key);
    *value = *it->second;
    return leveldb::Status::OK();
  }
  return db_->Get(leveldb::ReadOptions(), key, value);
}

uint64_t LevelDbBarrier::AppendLocked(const leveldb::WriteBatch& batch) {
  open_->batch.Append(batch);
  KeysOf keys(&open_->keys);
  (void)batch.Iterate(&keys);  // A batch built here always parses.
  return open_->number;
}

absl::Status LevelDbBarrier::WaitDurableLocked(uint64_t number) {
  while (durable_ < number && failed_.ok()) {
    if (syncing_ != nullptr) {
      synced_[number % 2].Wait(&mu_);
      continue;
    }
    syncing_ = std::move(open_);
    open_ = std::make_unique<Group>();
    open_->number = syncing_->number + 1;
    Group* group = syncing_.get();
    mu_.Unlock();
    // Hooks go on meanwhile, into the next group.
    absl::Status s = failpoint::Hit("barrier_before_sync");
    if (s.ok()) {
      leveldb::WriteOptions options;
      options.sync = true;
      leveldb::Status written = db_->Write(options, &group->batch);
      if (!written.ok()) s = absl::UnavailableError(written.ToString());
    }
    if (s.ok()) failpoint::Hit("barrier_after_sync").IgnoreError();
    mu_.Lock();
    ++syncs_;
    if (s.ok()) {
      durable_ = group->number;
    } else {
      failed_ = absl::UnavailableError(fmt::format(
          "the barrier's synced write failed ({}); it acknowledges nothing "
          "more: restart the service once the cause is fixed (what it "
          "acknowledged before is durable)",
          std::string(s.message())));
    }
    const uint64_t ended = group->number;
    syncing_.reset();
    if (failed_.ok()) {
      synced_[ended % 2].SignalAll();
      synced_[(ended + 1) % 2].Signal();  // The next group's writer.
    } else {
      for (absl::CondVar& waiters : synced_) waiters.SignalAll();
    }
  }
  return failed_;
}

uint64_t LevelDbBarrier::syncs() {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

uint64_t LevelDbBarrier::LastAcceptedLocked() const {
  return open_->keys.empty() ? open_->number - 1 : open_->number;
}

absl::Status LevelDbBarrier::WriteLocked(const leveldb::WriteBatch& batch) {
  return WaitDurableLocked(AppendLocked(batch));
}

absl::StatusOr<BarrierResult> LevelDbBarrier::Run(const BarrierCall& call,
                                                  const BarrierHook& hook) {
  absl::MutexLock lock(&mu_);
  const std::pair<std::string, uint64_t> branch(call.xid, call.branch_id);
  while (busy_.contains(branch)) branch_free_.Wait(&mu_);
  if (!failed_.ok()) return failed_;
  busy_.insert(branch);
  absl::StatusOr<BarrierResult> result = RunLocked(call, hook);
  busy_.erase(branch);
  // Not synced_: its waiters wait for a write, and would wake for nothing.
  branch_free_.SignalAll();
  return result;
}

absl::StatusOr<BarrierResult> LevelDbBarrier::RunLocked(
    const BarrierCall& call, const BarrierHook& hook) {
  auto get = [&](char phase,
                 std::string* value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return GetLocked(RecordKey(call.xid, call.branch_id, phase), value).ok();
  };
  std::string try_value, ignored;
  bool tried = get('t', &try_value);
  bool cancelled = get('x', &ignored);
  Local local(this);
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
    if (!tried && !call.local_only) {
      leveldb::WriteBatch started;
      started.Put(own_key, kTryStarted);
      if (absl::Status s = WriteLocked(started); !s.ok()) return s;
    }
    if (absl::Status s = hook(local, TryState::kNone); !s.ok()) return s;
    local.batch.Put(own_key, kTryDone);
    if (absl::Status s = WriteLocked(local.batch); !s.ok()) return s;
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
    if (absl::Status s = WriteLocked(local.batch); !s.ok()) return s;
    return BarrierResult::kEmptyCancel;
  }
  TryState state =
      try_value == kTryDone ? TryState::kCompleted : TryState::kStarted;
  if (absl::Status s = hook(local, state); !s.ok()) return s;
  if (absl::Status s = WriteLocked(local.batch); !s.ok()) return s;
  return BarrierResult::kRan;
}

std::vector<std::pair<std::string, uint64_t>> LevelDbBarrier::Unresolved() {
  absl::MutexLock lock(&mu_);
  // What is accepted goes to disk first, so the scan below sees it.
  WaitDurableLocked(LastAcceptedLocked()).IgnoreError();
  std::vector<std::pair<std::string, uint64_t>> out;
  // One snapshot for the scan and its lookups: a group another call writes
  // meanwhile is either all in it or not at all.
  const leveldb::Snapshot* snapshot = db_->GetSnapshot();
  leveldb::ReadOptions at;
  at.snapshot = snapshot;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(at));
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
    bool resolved = db_->Get(at, RecordKey(xid, branch, 'c'), &ignored).ok() ||
                    db_->Get(at, RecordKey(xid, branch, 'x'), &ignored).ok();
    if (!resolved) out.emplace_back(xid, branch);
  }
  it.reset();
  db_->ReleaseSnapshot(snapshot);
  return out;
}

absl::StatusOr<size_t> LevelDbBarrier::PurgeResolvedBefore(
    int64_t cutoff_unix_ms) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = WaitDurableLocked(LastAcceptedLocked()); !s.ok()) {
    return s;
  }
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
  if (absl::Status s = WriteLocked(batch); !s.ok()) return s;
  return purged;
}

}  // namespace baton
