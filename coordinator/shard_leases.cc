#include "coordinator/shard_leases.h"

#include <algorithm>

#include "baton/postgres.h"
#include "fmt/format.h"

namespace baton {

struct ShardLeaseTable::Connection {
  PgConn conn;
  int64_t lock_timeout_ms;

  // The connection, opened again if the last one broke (the server
  // restarted, the network dropped), so the keeper goes on by itself once
  // the database is back.
  absl::StatusOr<PGconn*> Get() {
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      PQreset(conn.get());
      if (PQstatus(conn.get()) != CONNECTION_OK) {
        return PgCheck(conn.get(), nullptr);
      }
      if (absl::Status s = Configure(); !s.ok()) return s;
    }
    return conn.get();
  }

  absl::Status Configure() {
    return PgExec(conn.get(),
                  fmt::format("SET lock_timeout = {}", lock_timeout_ms))
        .status();
  }
};

namespace {

std::string IntArray(const std::vector<uint32_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    out += (i ? "," : "") + std::to_string(values[i]);
  }
  return out + "}";
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShardLeaseTable>> ShardLeaseTable::Open(
    const Options& options) {
  absl::StatusOr<PgConn> conn = PgConnect(options.conninfo);
  if (!conn.ok()) return conn.status();
  absl::StatusOr<PgResult> r =
      PgExec(conn->get(),
             fmt::format("SET lock_timeout = {}", options.lock_timeout_ms));
  if (!r.ok()) return r.status();
  return std::unique_ptr<ShardLeaseTable>(new ShardLeaseTable(
      options, std::make_unique<Connection>(Connection{std::move(*conn)})));
}

ShardLeaseTable::ShardLeaseTable(const Options& options,
                                 std::unique_ptr<Connection> conn)
    : options_(options), conn_(std::move(conn)) {}

ShardLeaseTable::~ShardLeaseTable() = default;

absl::Status ShardLeaseTable::EnsureShards(uint32_t count) {
  absl::StatusOr<PGconn*> conn = conn_->Get();
  if (!conn.ok()) return conn.status();
  return PgExec(*conn,
                "INSERT INTO batond_shard_leases (shard) "
                "SELECT generate_series(0, $1::int - 1) ON CONFLICT DO NOTHING",
                {std::to_string(count)})
      .status();
}

absl::StatusOr<ShardLeaseTable::Reading> ShardLeaseTable::Read() {
  absl::StatusOr<PGconn*> connected = conn_->Get();
  if (!connected.ok()) return connected.status();
  PGconn* conn = *connected;
  absl::StatusOr<PgResult> beat = PgExec(
      conn,
      "INSERT INTO batond_nodes (node, address, expires_at) "
      "VALUES ($1, $2, now() + $3 * interval '1 millisecond') "
      "ON CONFLICT (node) DO UPDATE "
      "SET address = EXCLUDED.address, expires_at = EXCLUDED.expires_at",
      {options_.node, options_.address, std::to_string(options_.lease_ms)});
  if (!beat.ok()) return beat.status();
  absl::StatusOr<PgResult> leases =
      PgExec(conn,
             "SELECT shard, coalesce(owner, ''), fencing, expires_at < now() "
             "FROM batond_shard_leases ORDER BY shard");
  if (!leases.ok()) return leases.status();
  absl::StatusOr<PgResult> nodes =
      PgExec(conn, "SELECT node FROM batond_nodes WHERE expires_at >= now()");
  if (!nodes.ok()) return nodes.status();
  Reading reading;
  for (int row = 0; row < PQntuples(leases->get()); ++row) {
    reading.leases.push_back(ShardLease{
        .shard = static_cast<uint32_t>(
            std::stoul(PQgetvalue(leases->get(), row, 0))),
        .owner = PQgetvalue(leases->get(), row, 1),
        .fencing = std::stoll(PQgetvalue(leases->get(), row, 2)),
        .expired = std::string_view(PQgetvalue(leases->get(), row, 3)) == "t"});
  }
  for (int row = 0; row < PQntuples(nodes->get()); ++row) {
    reading.live.push_back(PQgetvalue(nodes->get(), row, 0));
  }
  return reading;
}

absl::StatusOr<std::optional<int64_t>> ShardLeaseTable::Take(
    uint32_t shard, int64_t seen_fencing) {
  absl::StatusOr<PGconn*> conn = conn_->Get();
  if (!conn.ok()) return conn.status();
  absl::StatusOr<PgResult> r = PgExec(
      *conn,
      "UPDATE batond_shard_leases SET owner = $1, owner_address = $2, "
      "fencing = fencing + 1, "
      "expires_at = now() + $5 * interval '1 millisecond' "
      "WHERE shard = $3 AND fencing = $4 AND (owner IS NULL OR owner = $1 "
      "OR expires_at < now()) RETURNING fencing",
      {options_.node, options_.address, std::to_string(shard),
       std::to_string(seen_fencing), std::to_string(options_.lease_ms)});
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) return std::nullopt;
  return std::stoll(PQgetvalue(r->get(), 0, 0));
}

absl::StatusOr<std::vector<uint32_t>> ShardLeaseTable::Renew(
    const std::map<uint32_t, int64_t>& held) {
  std::vector<uint32_t> shards;
  std::string fencings = "{";
  for (const auto& [shard, fencing] : held) {
    fencings += (shards.empty() ? "" : ",") + std::to_string(fencing);
    shards.push_back(shard);
  }
  fencings += "}";
  absl::StatusOr<PGconn*> conn = conn_->Get();
  if (!conn.ok()) return conn.status();
  absl::StatusOr<PgResult> r = PgExec(
      *conn,
      // Rows locked in shard order first, as the writes' fencing checks
      // lock them, so the two never wait on each other in a cycle.
      "WITH locked AS (SELECT shard FROM batond_shard_leases "
      "WHERE shard = ANY($2::int4[]) ORDER BY shard FOR NO KEY UPDATE) "
      "UPDATE batond_shard_leases l "
      "SET expires_at = now() + $4 * interval '1 millisecond' "
      "FROM unnest($2::int4[], $3::int8[]) AS m(shard, fencing) "
      "WHERE l.shard = m.shard AND l.fencing = m.fencing AND l.owner = $1 "
      "AND l.shard IN (SELECT shard FROM locked) "
      "RETURNING l.shard",
      {options_.node, IntArray(shards), fencings,
       std::to_string(options_.lease_ms)});
  if (!r.ok()) return r.status();
  std::vector<uint32_t> kept;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    kept.push_back(
        static_cast<uint32_t>(std::stoul(PQgetvalue(r->get(), row, 0))));
  }
  std::sort(kept.begin(), kept.end());
  return kept;
}

absl::Status ShardLeaseTable::GiveBack(uint32_t shard, int64_t fencing) {
  absl::StatusOr<PGconn*> conn = conn_->Get();
  if (!conn.ok()) return conn.status();
  return PgExec(*conn,
                "UPDATE batond_shard_leases SET owner = NULL, "
                "owner_address = NULL, expires_at = '-infinity' "
                "WHERE shard = $1 AND fencing = $2 AND owner = $3",
                {std::to_string(shard), std::to_string(fencing), options_.node})
      .status();
}

}  // namespace baton
