#include "coordinator/postgres_schema.h"

#include <iterator>
#include <string_view>
#include <vector>

#include "baton/postgres.h"
#include "coordinator/stored_record.h"
#include "fmt/format.h"
#include "participant_sdk/internal/postgres_pool.h"
#include "spdlog/spdlog.h"

namespace baton::postgres_store {
namespace {

// What meta key "format" holds in a database this build writes.
constexpr char kFormat[] = "postgres/1";

// xid sorts bytewise (COLLATE "C"), as LevelDB's keys do, so paging by
// (finished_ms, xid) means the same in both backends.
constexpr std::string_view kSchema[] = {
    R"(CREATE TABLE IF NOT EXISTS batond_transactions (
         xid text COLLATE "C" PRIMARY KEY,
         shard integer NOT NULL,
         record bytea NOT NULL,
         definition bytea,
         terminal boolean NOT NULL,
         due_ms bigint NOT NULL,
         finished_ms bigint NOT NULL,
         owned_meta_key bytea NOT NULL))",
    R"(CREATE INDEX IF NOT EXISTS batond_transactions_unfinished
         ON batond_transactions (shard, due_ms, xid) WHERE NOT terminal)",
    R"(CREATE INDEX IF NOT EXISTS batond_transactions_finished
         ON batond_transactions (finished_ms, xid) WHERE terminal)",
    R"(CREATE TABLE IF NOT EXISTS batond_branches (
         xid text COLLATE "C" NOT NULL,
         branch_id bigint NOT NULL,
         branch bytea NOT NULL,
         PRIMARY KEY (xid, branch_id)))",
    // Shard ownership (shard_leases.h); expiries are the database's clock.
    R"(CREATE TABLE IF NOT EXISTS batond_shard_leases (
         shard integer PRIMARY KEY,
         owner text,
         owner_address text,
         fencing bigint NOT NULL DEFAULT 0,
         expires_at timestamptz NOT NULL DEFAULT '-infinity'))",
    R"(CREATE TABLE IF NOT EXISTS batond_nodes (
         node text PRIMARY KEY,
         address text NOT NULL,
         expires_at timestamptz NOT NULL))",
    // Locks the leases it checks (FOR SHARE) until the writing transaction
    // ends, so a takeover's UPDATE waits for a write already checked, and a
    // write checked after a takeover sees the new number.
    R"(CREATE OR REPLACE FUNCTION batond_check_fences(p_shards int4[],
                                                     p_fencings int8[])
       RETURNS void LANGUAGE plpgsql AS $$
       DECLARE lost text;
       BEGIN
         SELECT string_agg(format('%s (held with fencing %s, now %s)',
                                  m.shard, m.fencing,
                                  coalesce(l.fencing::text, 'no lease')),
                           ', ' ORDER BY m.shard)
           INTO lost
           FROM unnest(p_shards, p_fencings) AS m(shard, fencing)
           LEFT JOIN (SELECT shard, fencing FROM batond_shard_leases
                       WHERE shard = ANY(p_shards)
                       ORDER BY shard FOR SHARE) l USING (shard)
          WHERE l.fencing IS DISTINCT FROM m.fencing;
         IF lost IS NOT NULL THEN
           RAISE EXCEPTION USING ERRCODE = 'BF001',
             MESSAGE = 'shard lease lost: ' || lost;
         END IF;
       END $$)",
    R"(CREATE TABLE IF NOT EXISTS batond_meta (
         key bytea PRIMARY KEY,
         value bytea NOT NULL))",
};

absl::Status CheckFormat(PGconn* conn) {
  absl::StatusOr<PgResult> r =
      PgExec(conn,
             "INSERT INTO batond_meta (key, value) VALUES ('format', "
             "convert_to($1, 'UTF8')) "
             "ON CONFLICT (key) DO UPDATE SET value = batond_meta.value "
             "RETURNING convert_from(value, 'UTF8')",
             {kFormat});
  if (!r.ok()) return r.status();
  std::string_view found = PQgetvalue(r->get(), 0, 0);
  if (found != kFormat) {
    return absl::FailedPreconditionError(fmt::format(
        "the store in PostgreSQL at {} has format '{}'; this batond reads "
        "'{}': run the batond that wrote it, or point --postgres at another "
        "database",
        PgDescribe(conn), Printable(found), kFormat));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EnsureSchema(PGconn* conn) {
  std::vector<std::string_view> schema(std::begin(kSchema), std::end(kSchema));
  absl::Status s = internal::CreateTablesOnce(conn, "batond_meta", schema);
  return s.ok() ? CheckFormat(conn) : s;
}

absl::Status RequireSynchronousCommit(PGconn* conn) {
  absl::StatusOr<PgResult> r =
      PgExec(conn, "SELECT current_setting('synchronous_commit')");
  if (!r.ok()) return r.status();
  if (std::string_view(PQgetvalue(r->get(), 0, 0)) != "off") {
    return absl::OkStatus();
  }
  spdlog::warn(
      "PostgreSQL at {} has synchronous_commit off: batond sets it on for its "
      "own sessions, since it acknowledges only what the server has flushed",
      PgDescribe(conn));
  return PgExec(conn, "SET synchronous_commit = on").status();
}

}  // namespace baton::postgres_store
