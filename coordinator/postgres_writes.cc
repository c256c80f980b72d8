#include "coordinator/postgres_writes.h"

#include <algorithm>
#include <map>
#include <string>

#include "baton/postgres.h"
#include "coordinator/xid.h"
#include "fmt/format.h"

namespace baton::postgres_store {
namespace {

// The writes of one Apply, each a multi-row statement over arrays.
struct Statement {
  const char* name;
  const char* sql;
};
constexpr Statement kCheckFencesSql = {"baton_check_fences",
                                       "SELECT batond_check_fences($1, $2)"};
constexpr Statement kDropRecordsSql = {
    "baton_drop_records",
    "WITH gone AS (DELETE FROM batond_branches WHERE xid = ANY($1)) "
    "DELETE FROM batond_transactions WHERE xid = ANY($1)"};
constexpr Statement kPutRecordsSql = {
    "baton_put_records",
    "INSERT INTO batond_transactions AS t (xid, shard, record, definition, "
    "terminal, due_ms, finished_ms, owned_meta_key) "
    "SELECT * FROM unnest($1::text[], $2::int4[], $3::bytea[], $4::bytea[], "
    "$5::bool[], $6::int8[], $7::int8[], $8::bytea[]) "
    "ON CONFLICT (xid) DO UPDATE SET record = EXCLUDED.record, "
    "definition = COALESCE(EXCLUDED.definition, t.definition), "
    "terminal = EXCLUDED.terminal, due_ms = EXCLUDED.due_ms, "
    "finished_ms = EXCLUDED.finished_ms, "
    "owned_meta_key = EXCLUDED.owned_meta_key"};
constexpr Statement kPutBranchesSql = {
    "baton_put_branches",
    "INSERT INTO batond_branches (xid, branch_id, branch) "
    "SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[]) "
    "ON CONFLICT (xid, branch_id) DO UPDATE SET branch = EXCLUDED.branch"};
constexpr Statement kDropMetaSql = {
    "baton_drop_meta", "DELETE FROM batond_meta WHERE key = ANY($1)"};
constexpr Statement kPutMetaSql = {
    "baton_put_meta",
    "INSERT INTO batond_meta (key, value) "
    "SELECT * FROM unnest($1::bytea[], $2::bytea[]) "
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"};
// By WriteStatement.
constexpr Statement kWrites[kWriteStatements] = {
    kCheckFencesSql, kDropRecordsSql, kPutRecordsSql,
    kPutBranchesSql, kDropMetaSql,    kPutMetaSql};

// What a group leaves of each record and meta key, in key order (so
// concurrent writers lock rows in one order). Ops apply in order: a delete
// resets a record, so a later put starts from nothing, as it would have.
struct RecordWrite {
  bool reset = false;
  const StoreBatch::Op* put = nullptr;  // The last put, if any.
  std::map<uint64_t, std::string_view> branches;
  std::optional<std::string_view> definition;
};
struct GroupWrites {
  std::map<std::string_view, RecordWrite> records;
  std::map<std::string_view, std::optional<std::string_view>> meta;
};

GroupWrites Collapse(const std::vector<const StoreBatch*>& batches) {
  GroupWrites out;
  for (const StoreBatch* batch : batches) {
    for (const StoreBatch::Op& op : batch->ops()) {
      switch (op.kind) {
        case StoreBatch::Op::kPutTransaction: {
          RecordWrite& w = out.records[op.key];
          w.put = &op;
          for (const auto& [id, bytes] : op.branches) w.branches[id] = bytes;
          if (op.definition) w.definition = *op.definition;
          break;
        }
        case StoreBatch::Op::kDeleteTransaction:
          out.records[op.key] = RecordWrite{.reset = true};
          break;
        case StoreBatch::Op::kPutMeta:
          out.meta[op.key] = op.value;
          break;
        case StoreBatch::Op::kDeleteMeta:
          out.meta[op.key] = std::nullopt;
          break;
      }
    }
  }
  return out;
}

// Parameters of each statement, empty where it has nothing to do; the
// fencing check is the caller's.
std::vector<std::optional<pg::Params>> WriteParams(const GroupWrites& g) {
  std::vector<std::string_view> reset, xids, branch_xids;
  std::vector<int32_t> shards;
  std::vector<std::optional<std::string_view>> records, definitions, owned,
      branches;
  std::vector<bool> terminal;
  std::vector<int64_t> due, finished, branch_ids;
  for (const auto& [xid, w] : g.records) {
    if (w.reset) reset.push_back(xid);
    if (w.put == nullptr) continue;
    xids.push_back(xid);
    shards.push_back(ShardOf(xid));
    records.push_back(w.put->value);
    definitions.push_back(w.definition);
    terminal.push_back(w.put->terminal);
    due.push_back(w.put->due_ms);
    finished.push_back(w.put->finished_ms);
    owned.push_back(w.put->owned_meta_key);
    for (const auto& [id, bytes] : w.branches) {
      branch_xids.push_back(xid);
      branch_ids.push_back(static_cast<int64_t>(id));
      branches.push_back(bytes);
    }
  }
  std::vector<std::optional<std::string_view>> dropped_keys, keys, values;
  for (const auto& [key, value] : g.meta) {
    (value ? keys : dropped_keys).push_back(key);
    if (value) values.push_back(*value);
  }
  std::vector<std::optional<pg::Params>> out(kWriteStatements);
  if (!reset.empty()) out[kDropRecords].emplace().TextArray(reset);
  if (!xids.empty()) {
    pg::Params& p = out[kPutRecords].emplace();
    p.TextArray(xids);
    p.Int4Array(shards);
    p.BytesArray(records);
    p.BytesArray(definitions);
    p.BoolArray(terminal);
    p.Int8Array(due);
    p.Int8Array(finished);
    p.BytesArray(owned);
  }
  if (!branch_xids.empty()) {
    pg::Params& p = out[kPutBranches].emplace();
    p.TextArray(branch_xids);
    p.Int8Array(branch_ids);
    p.BytesArray(branches);
  }
  if (!dropped_keys.empty()) out[kDropMeta].emplace().BytesArray(dropped_keys);
  if (!keys.empty()) {
    pg::Params& p = out[kPutMeta].emplace();
    p.BytesArray(keys);
    p.BytesArray(values);
  }
  return out;
}

}  // namespace

int32_t ShardOf(std::string_view xid) {
  XidParts parts;
  return ParseXid(xid, &parts) ? static_cast<int32_t>(parts.node) : -1;
}

std::vector<int32_t> BatchShards(const StoreBatch& batch) {
  std::vector<int32_t> shards;
  for (const StoreBatch::Op& op : batch.ops()) {
    const bool live = op.kind == StoreBatch::Op::kPutTransaction ||
                      (op.kind == StoreBatch::Op::kDeleteTransaction &&
                       op.previous_due_ms >= 0);
    if (live) shards.push_back(ShardOf(op.key));
  }
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  return shards;
}

const char* StatementName(size_t statement) { return kWrites[statement].name; }

std::vector<std::optional<pg::Params>> GroupParams(
    const std::vector<const StoreBatch*>& batches) {
  return WriteParams(Collapse(batches));
}

absl::Status PrepareWrites(PGconn* conn) {
  for (const Statement& statement : kWrites) {
    PgResult result(PQprepare(conn, statement.name, statement.sql, 0, nullptr));
    if (absl::Status s = PgCheck(conn, result.get()); !s.ok()) {
      return absl::Status(s.code(),
                          fmt::format("prepare {}: {}", statement.name,
                                      std::string(s.message())));
    }
  }
  return absl::OkStatus();
}

}  // namespace baton::postgres_store
