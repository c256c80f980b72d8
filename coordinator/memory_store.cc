#include "coordinator/memory_store.h"

#include "protocols/transitions.h"

namespace baton {

absl::Status MemoryStore::Apply(const std::vector<const StoreBatch*>& batches) {
  absl::MutexLock lock(&mu_);
  ++waiting_;
  mu_.Await(absl::Condition(
      +[](bool* held) { return !*held; }, &held_));
  --waiting_;
  for (const StoreBatch* batch : batches) {
    for (const StoreBatch::Op& op : batch->ops()) {
      switch (op.kind) {
        case StoreBatch::Op::kPutTransaction: {
          Stored& stored = records_[op.key];
          stored.fields = op.value;
          for (const auto& [id, bytes] : op.branches) {
            stored.branches[id] = bytes;
          }
          if (op.definition) stored.definition = *op.definition;
          stats_.bytes += op.value.size();
          break;
        }
        case StoreBatch::Op::kDeleteTransaction:
          records_.erase(op.key);
          break;
        case StoreBatch::Op::kPutMeta:
          meta_[op.key] = op.value;
          break;
        case StoreBatch::Op::kDeleteMeta:
          meta_.erase(op.key);
          break;
      }
    }
    ++stats_.batches;
  }
  ++stats_.syncs;
  return absl::OkStatus();
}

absl::Status MemoryStore::Get(const std::string& xid, v1::Transaction* txn) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(xid);
  if (it == records_.end()) return absl::NotFoundError(xid);
  Assemble(it->second, txn);
  return absl::OkStatus();
}

bool MemoryStore::Assemble(const Stored& stored, v1::Transaction* txn) const {
  if (!txn->ParseFromString(stored.fields)) return false;
  for (const auto& [id, bytes] : stored.branches) {
    txn->add_branches()->ParseFromString(bytes);
  }
  if (txn->has_saga()) {
    txn->mutable_saga()->mutable_definition()->ParseFromString(
        stored.definition);
  }
  return true;
}

absl::Status MemoryStore::ScanUnfinished(
    const std::function<bool(const v1::Transaction&)>& fn) {
  std::vector<v1::Transaction> unfinished;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [xid, stored] : records_) {
      v1::Transaction txn;
      Assemble(stored, &txn);
      if (!IsTerminal(txn.status())) unfinished.push_back(std::move(txn));
    }
  }
  std::stable_sort(unfinished.begin(), unfinished.end(),
                   [](const v1::Transaction& a, const v1::Transaction& b) {
                     return a.next_action_unix_ms() < b.next_action_unix_ms();
                   });
  for (const v1::Transaction& txn : unfinished) {
    if (!fn(txn)) break;
  }
  return absl::OkStatus();
}

absl::Status MemoryStore::ScanFinished(const FinishedRef*, int64_t, size_t,
                                       std::vector<FinishedRef>*) {
  return absl::UnimplementedError("MemoryStore keeps no finished index");
}

absl::Status MemoryStore::GetMeta(const std::string& key, std::string* value) {
  absl::MutexLock lock(&mu_);
  auto it = meta_.find(key);
  if (it == meta_.end()) return absl::NotFoundError(key);
  *value = it->second;
  return absl::OkStatus();
}

StoreStats MemoryStore::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void MemoryStore::Hold() {
  absl::MutexLock lock(&mu_);
  held_ = true;
}

void MemoryStore::Release() {
  absl::MutexLock lock(&mu_);
  held_ = false;
}

bool MemoryStore::WriteWaiting() {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](int* waiting) { return *waiting > 0; }, &waiting_),
      absl::Seconds(1));
}

}  // namespace baton
