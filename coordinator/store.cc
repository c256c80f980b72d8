#include "coordinator/store.h"

#include <algorithm>

#include "absl/strings/cord.h"
#include "coordinator/xid.h"
#include "protocols/transitions.h"

namespace baton {

void StoreBatch::PutTransaction(const v1::Transaction& txn,
                                int64_t previous_due_ms,
                                std::string owned_meta_key) {
  v1::Transaction copy = txn;
  PutTransactionParts(&copy, previous_due_ms, std::move(owned_meta_key),
                      Parts());
}

void StoreBatch::PutTransactionParts(v1::Transaction* txn,
                                     int64_t previous_due_ms,
                                     std::string owned_meta_key,
                                     const Parts& parts) {
  Op op{.kind = Op::kPutTransaction,
        .key = txn->xid(),
        .terminal = IsTerminal(txn->status()),
        .due_ms = txn->next_action_unix_ms(),
        .previous_due_ms = previous_due_ms,
        .finished_ms = txn->finished_unix_ms(),
        .owned_meta_key = std::move(owned_meta_key)};
  auto add_branch = [&](const v1::Branch& b) {
    op.branches.emplace_back(b.branch_id(), b.SerializeAsString());
  };
  if (parts.all_branches) {
    for (const v1::Branch& b : txn->branches()) add_branch(b);
  } else {
    std::vector<uint64_t> ids = parts.branches;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (uint64_t id : ids) {
      if (id >= 1 && id <= static_cast<uint64_t>(txn->branches_size())) {
        add_branch(txn->branches(static_cast<int>(id - 1)));
      }
    }
  }
  bool saga = txn->has_saga();
  if (saga && parts.definition) {
    op.definition = txn->saga().definition().SerializeAsString();
  }
  // The record's own fields: the large ones swapped out, not copied.
  google::protobuf::RepeatedPtrField<v1::Branch> branches;
  branches.Swap(txn->mutable_branches());
  v1::SagaDefinition definition;
  if (saga) definition.Swap(txn->mutable_saga()->mutable_definition());
  op.value = txn->SerializeAsString();
  branches.Swap(txn->mutable_branches());
  if (saga) definition.Swap(txn->mutable_saga()->mutable_definition());
  ops_.push_back(std::move(op));
}

void StoreBatch::DeleteTransaction(const std::string& xid, int64_t finished_ms,
                                   int64_t unfinished_due_ms) {
  ops_.push_back(Op{.kind = Op::kDeleteTransaction,
                    .key = xid,
                    .previous_due_ms = unfinished_due_ms,
                    .finished_ms = finished_ms});
}

void StoreBatch::PutMeta(const std::string& key, const std::string& value) {
  ops_.push_back(Op{.kind = Op::kPutMeta, .key = key, .value = value});
}

namespace {
constexpr char kShardNotLeased[] = "baton.store/shard-not-leased";
}  // namespace

absl::Status ShardNotLeasedError(std::string_view message) {
  absl::Status status = absl::FailedPreconditionError(std::string(message));
  status.SetPayload(kShardNotLeased, absl::Cord("1"));
  return status;
}

bool IsShardNotLeased(const absl::Status& status) {
  return status.GetPayload(kShardNotLeased).has_value();
}

absl::Status TransactionStore::ScanShardUnfinished(
    uint32_t shard, const std::function<bool(const v1::Transaction&)>& fn) {
  return ScanUnfinished([&](const v1::Transaction& txn) {
    XidParts parts;
    return !ParseXid(txn.xid(), &parts) || parts.node != shard || fn(txn);
  });
}

void StoreBatch::DeleteMeta(const std::string& key) {
  ops_.push_back(Op{.kind = Op::kDeleteMeta, .key = key});
}

}  // namespace baton
