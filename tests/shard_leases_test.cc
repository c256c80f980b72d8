// The PostgreSQL mode's lease table and fencing, against a real server:
// several ShardLeaseTables in one process stand for nodes.
#define BOOST_TEST_MODULE shard_leases
#include "coordinator/shard_leases.h"

#include <boost/test/unit_test.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "baton/postgres.h"
#include "coordinator/lease_keeper.h"
#include "coordinator/postgres_store.h"
#include "coordinator/shard_fences.h"
#include "tests/support/pg_cluster.h"

namespace baton::testing {
namespace {

using namespace std::chrono_literals;

PgCluster& Server() {
  static PgCluster server;
  return server;
}

// A fresh database with the store's tables.
std::string Database() {
  static int count = 0;
  const std::string name = "leases_" + std::to_string(++count);
  Server().CreateDatabase(name);
  const std::string conninfo = Server().ConnInfo(name);
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenPostgresStore(conninfo, &store);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return name;
}

std::unique_ptr<ShardLeaseTable> Node(const std::string& database,
                                      const std::string& name,
                                      int64_t lease_ms = 5000) {
  auto table = ShardLeaseTable::Open({.conninfo = Server().ConnInfo(database),
                                      .node = name,
                                      .address = name + ":7420",
                                      .lease_ms = lease_ms,
                                      .lock_timeout_ms = 300});
  BOOST_REQUIRE_MESSAGE(table.ok(), table.status().ToString());
  return std::move(*table);
}

// One keeper round: read, plan, give back, take. Returns what it holds.
std::map<uint32_t, int64_t> Round(ShardLeaseTable* table,
                                  const std::string& self,
                                  std::map<uint32_t, int64_t> held) {
  auto reading = table->Read();
  BOOST_REQUIRE_MESSAGE(reading.ok(), reading.status().ToString());
  LeasePlan plan = PlanLeases(self, reading->live, reading->leases);
  for (uint32_t shard : plan.give_back) {
    BOOST_REQUIRE(table->GiveBack(shard, held[shard]).ok());
    held.erase(shard);
  }
  for (uint32_t shard : plan.take) {
    auto fencing = table->Take(shard, reading->leases[shard].fencing);
    BOOST_REQUIRE_MESSAGE(fencing.ok(), fencing.status().ToString());
    if (*fencing) held[shard] = **fencing;
  }
  return held;
}

// Until `table` reads shard's lease as run out, by the database's clock.
void WaitUntilExpired(ShardLeaseTable* table, uint32_t shard) {
  BOOST_REQUIRE(WaitFor(
      [&] {
        auto reading = table->Read();
        return reading.ok() && reading->leases[shard].expired;
      },
      10s));
}

v1::Transaction Record(const std::string& xid) {
  v1::Transaction txn;
  txn.set_xid(xid);
  txn.set_status(v1::GLOBAL_STATUS_BEGUN);
  return txn;
}

absl::Status Write(TransactionStore* store, const std::string& xid) {
  StoreBatch batch;
  batch.PutTransaction(Record(xid), -1);
  return store->Apply({&batch});
}

int64_t Rows(const std::string& database, const std::string& where) {
  auto rows = Server().Query(
      database, "SELECT count(*) FROM batond_transactions WHERE " + where);
  BOOST_REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
  return std::stoll((*rows)[0][0]);
}

BOOST_AUTO_TEST_CASE(three_nodes_on_twelve_shards_settle_at_four_each) {
  const std::string db = Database();
  std::vector<std::string> names = {"node-a", "node-b", "node-c"};
  std::vector<std::unique_ptr<ShardLeaseTable>> tables;
  for (const std::string& name : names) tables.push_back(Node(db, name));
  BOOST_REQUIRE(tables[0]->EnsureShards(12).ok());
  // Every node has beaten once before anyone plans: all are live.
  for (auto& table : tables) BOOST_REQUIRE(table->Read().ok());
  std::vector<std::map<uint32_t, int64_t>> held(3);
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 3; ++i) {
      held[i] = Round(tables[i].get(), names[i], held[i]);
    }
  }
  std::set<uint32_t> all;
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(held[i].size() == 4u, names[i]);
    for (const auto& [shard, fencing] : held[i]) {
      BOOST_TEST(fencing >= 1);
      all.insert(shard);
    }
  }
  BOOST_TEST(all.size() == 12u);
  auto owners = Server().Query(
      db, "SELECT count(DISTINCT owner), count(*) FROM batond_shard_leases");
  BOOST_REQUIRE(owners.ok());
  BOOST_TEST((*owners)[0][0] == "3");
  BOOST_TEST((*owners)[0][1] == "12");
}

BOOST_AUTO_TEST_CASE(
    a_takeover_raises_the_fencing_number_and_fences_the_old_owner) {
  const std::string db = Database();
  auto a = Node(db, "node-a", 300);
  auto b = Node(db, "node-b", 300);
  BOOST_REQUIRE(a->EnsureShards(2).ok());
  auto first = a->Take(0, 0);
  auto second = a->Take(1, 0);
  BOOST_REQUIRE(first.ok() && *first && second.ok() && *second);
  ShardFences fences;
  fences.Set(0, **first);
  fences.Set(1, **second);
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenPostgresStore(Server().ConnInfo(db), &store, &fences).ok());
  BOOST_REQUIRE(Write(store.get(), "0-1-1").ok());

  // a stops renewing (as if paused); b sees the lease run out by the
  // database's clock and takes it over.
  BOOST_TEST(!b->Take(0, **first).value().has_value());
  WaitUntilExpired(b.get(), 0);
  auto taken = b->Take(0, **first);
  BOOST_REQUIRE(taken.ok() && *taken);
  BOOST_TEST(**taken == **first + 1);

  // a's late write is refused inside the database, and nothing of it lands;
  // its store goes on for the shard it still holds.
  absl::Status late = Write(store.get(), "0-1-2");
  BOOST_TEST(absl::IsFailedPrecondition(late), late.ToString());
  BOOST_TEST(
      std::string(late.message()).find("shard 0: its lease was taken over") !=
          std::string::npos,
      late.ToString());
  BOOST_TEST(Rows(db, "xid = '0-1-2'") == 0);
  BOOST_TEST(Rows(db, "xid = '0-1-1'") == 1);
  BOOST_TEST(Write(store.get(), "1-1-1").ok());
  // And its renewal tells it so.
  auto kept = a->Renew(fences.All());
  BOOST_REQUIRE(kept.ok());
  BOOST_TEST((*kept == std::vector<uint32_t>{1}));
}

BOOST_AUTO_TEST_CASE(
    a_group_writes_the_shards_still_held_and_refuses_the_rest) {
  const std::string db = Database();
  auto a = Node(db, "node-a", 300);
  auto b = Node(db, "node-b", 300);
  BOOST_REQUIRE(a->EnsureShards(3).ok());
  ShardFences fences;
  for (uint32_t shard : {0u, 1u}) {
    auto fencing = a->Take(shard, 0);
    BOOST_REQUIRE(fencing.ok() && *fencing);
    fences.Set(shard, **fencing);
  }
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenPostgresStore(Server().ConnInfo(db), &store, &fences).ok());
  WaitUntilExpired(b.get(), 0);
  auto taken = b->Take(0, *fences.Get(0));
  BOOST_REQUIRE(taken.ok() && *taken);

  StoreBatch moved, kept, unleased, meta;
  moved.PutTransaction(Record("0-1-1"), -1);
  kept.PutTransaction(Record("1-1-1"), -1);
  unleased.PutTransaction(Record("2-1-1"), -1);
  meta.PutMeta("m", "v");
  std::vector<absl::Status> refused;
  absl::Status s =
      store->ApplyFenced({&moved, &kept, &unleased, &meta}, &refused);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  BOOST_REQUIRE(refused.size() == 4u);
  BOOST_TEST(absl::IsFailedPrecondition(refused[0]), refused[0].ToString());
  BOOST_TEST(refused[1].ok());
  BOOST_TEST(absl::IsFailedPrecondition(refused[2]), refused[2].ToString());
  BOOST_TEST(refused[3].ok());
  BOOST_TEST(Rows(db, "true") == 1);
  BOOST_TEST(Rows(db, "xid = '1-1-1'") == 1);
  std::string value;
  BOOST_TEST(store->GetMeta("m", &value).ok());
  BOOST_TEST(Write(store.get(), "1-1-2").ok());  // The store goes on.
}

BOOST_AUTO_TEST_CASE(a_write_for_a_shard_not_leased_here_sends_nothing) {
  const std::string db = Database();
  ShardFences fences;
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenPostgresStore(Server().ConnInfo(db), &store, &fences).ok());
  absl::Status s = Write(store.get(), "0-1-1");
  BOOST_TEST(absl::IsFailedPrecondition(s), s.ToString());
  BOOST_TEST(std::string(s.message()).find("shard 0 is not leased") !=
             std::string::npos);
  BOOST_TEST(Rows(db, "true") == 0);
}

BOOST_AUTO_TEST_CASE(a_shard_given_back_is_taken_at_once) {
  const std::string db = Database();
  auto a = Node(db, "node-a");
  auto b = Node(db, "node-b");
  BOOST_REQUIRE(a->EnsureShards(1).ok());
  auto fencing = a->Take(0, 0);
  BOOST_REQUIRE(fencing.ok() && *fencing);
  BOOST_TEST(!b->Take(0, **fencing).value().has_value());
  BOOST_REQUIRE(a->GiveBack(0, **fencing).ok());
  auto taken = b->Take(0, **fencing);
  BOOST_REQUIRE(taken.ok() && *taken);
  BOOST_TEST(**taken == **fencing + 1);
}

// The check locks the lease row until the writing transaction ends, so a
// takeover cannot slip in between a write's check and its commit.
BOOST_AUTO_TEST_CASE(a_takeover_waits_for_a_write_already_checked) {
  const std::string db = Database();
  auto a = Node(db, "node-a", 200);
  auto b = Node(db, "node-b", 200);
  BOOST_REQUIRE(a->EnsureShards(1).ok());
  auto fencing = a->Take(0, 0);
  BOOST_REQUIRE(fencing.ok() && *fencing);
  auto writer = PgConnect(Server().ConnInfo(db));
  BOOST_REQUIRE(writer.ok());
  BOOST_REQUIRE(PgExec(writer->get(), "BEGIN").ok());
  BOOST_REQUIRE(
      PgExec(writer->get(), "SELECT batond_check_fences('{0}', ARRAY[" +
                                std::to_string(**fencing) + "]::int8[])")
          .ok());
  WaitUntilExpired(b.get(), 0);
  auto blocked = b->Take(0, **fencing);
  BOOST_TEST(absl::IsAborted(blocked.status()), blocked.status().ToString());
  BOOST_REQUIRE(PgExec(writer->get(), "COMMIT").ok());
  auto taken = b->Take(0, **fencing);
  BOOST_REQUIRE(taken.ok() && *taken);
  BOOST_TEST(**taken == **fencing + 1);
}

// What a keeper's hooks saw, as the server would act on it.
struct Served {
  std::set<uint32_t> shards;
  std::vector<std::string> events;
  bool quiet = true;  // What quiesce answers.

  LeaseKeeper::Hooks Hooks() {
    return {.acquired =
                [this](uint32_t shard, int64_t fencing) {
                  shards.insert(shard);
                  events.push_back("+" + std::to_string(shard) + "@" +
                                   std::to_string(fencing));
                },
            .lost =
                [this](uint32_t shard) {
                  shards.erase(shard);
                  events.push_back("-" + std::to_string(shard));
                },
            .quiesce = [this](uint32_t) { return quiet; }};
  }
};

std::unique_ptr<LeaseKeeper> Keeper(PgCluster& server,
                                    const std::string& database,
                                    const std::string& name,
                                    ShardFences* fences, Served* served,
                                    int64_t lease_ms, Clock* clock = nullptr) {
  auto table = ShardLeaseTable::Open({.conninfo = server.ConnInfo(database),
                                      .node = name,
                                      .address = name + ":7420",
                                      .lease_ms = lease_ms,
                                      .lock_timeout_ms = 300});
  BOOST_REQUIRE_MESSAGE(table.ok(), table.status().ToString());
  return std::make_unique<LeaseKeeper>(
      std::move(*table), fences,
      LeaseKeeper::Options{.shards = 4, .lease_ms = lease_ms, .clock = clock},
      served->Hooks());
}

BOOST_AUTO_TEST_CASE(keepers_share_the_shards_and_a_survivor_takes_over) {
  const std::string db = Database();
  ShardFences fences_a, fences_b;
  Served a, b;
  auto keeper_a = Keeper(Server(), db, "node-a", &fences_a, &a, 500);
  auto keeper_b = Keeper(Server(), db, "node-b", &fences_b, &b, 500);
  BOOST_REQUIRE(keeper_a->RunOnce().ok());
  BOOST_TEST(a.shards.size() == 4u);  // Alone, a takes all.
  BOOST_REQUIRE(keeper_b->RunOnce().ok());
  BOOST_TEST(b.shards.empty());  // Nothing free yet.
  // a gives back what is beyond its share, once its writes are done.
  a.quiet = false;
  BOOST_REQUIRE(keeper_a->RunOnce().ok());
  BOOST_TEST(a.shards.size() == 4u);
  a.quiet = true;
  BOOST_REQUIRE(keeper_a->RunOnce().ok());
  BOOST_TEST((a.shards == std::set<uint32_t>{0, 1}));
  BOOST_TEST(fences_a.All().size() == 2u);
  BOOST_REQUIRE(keeper_b->RunOnce().ok());
  BOOST_TEST((b.shards == std::set<uint32_t>{2, 3}));
  const int64_t fencing_of_0 = *fences_a.Get(0);

  // a stops (as if killed): b serves all four once a's leases run out.
  const auto stopped = std::chrono::steady_clock::now();
  BOOST_REQUIRE(WaitFor(
      [&] { return keeper_b->RunOnce().ok() && b.shards.size() == 4u; }, 10s));
  BOOST_TEST_MESSAGE("b took a's shards over after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - stopped)
                            .count()
                     << " ms (lease 500 ms)");
  BOOST_TEST(*fences_b.Get(0) == fencing_of_0 + 1);
  auto owner = Server().Query(
      db,
      "SELECT owner, owner_address FROM batond_shard_leases WHERE shard = 0");
  BOOST_REQUIRE(owner.ok());
  BOOST_TEST(
      ((*owner)[0] == std::vector<std::string>{"node-b", "node-b:7420"}));

  // a comes back: it hears it lost both, and the two rebalance.
  BOOST_REQUIRE(keeper_a->RunOnce().ok());
  BOOST_TEST(a.shards.empty());
  BOOST_TEST(fences_a.All().empty());
  BOOST_REQUIRE(keeper_b->RunOnce().ok());
  BOOST_TEST(b.shards.size() == 2u);
  BOOST_REQUIRE(keeper_a->RunOnce().ok());
  BOOST_TEST(a.shards.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_keeper_cut_off_from_the_database_lets_go_after_a_lease) {
  PgCluster server;
  server.CreateDatabase("cut_off");
  {
    std::unique_ptr<TransactionStore> store;
    BOOST_REQUIRE(OpenPostgresStore(server.ConnInfo("cut_off"), &store).ok());
  }
  ManualClock clock;
  ShardFences fences;
  Served served;
  auto keeper =
      Keeper(server, "cut_off", "node-a", &fences, &served, 5000, &clock);
  BOOST_REQUIRE(keeper->RunOnce().ok());
  BOOST_TEST(served.shards.size() == 4u);

  server.Stop();
  clock.Advance(4000);
  BOOST_TEST(absl::IsUnavailable(keeper->RunOnce()));
  BOOST_TEST(served.shards.size() == 4u);  // Still within its lease.
  clock.Advance(1000);
  BOOST_TEST(absl::IsUnavailable(keeper->RunOnce()));
  BOOST_TEST(served.shards.empty());
  BOOST_TEST(fences.All().empty());

  // The database is back: the keeper reconnects and takes its shards again
  // under new numbers.
  server.Restart();
  BOOST_REQUIRE(WaitFor([&] { return keeper->RunOnce().ok(); }, 10s));
  BOOST_TEST(served.shards.size() == 4u);
  BOOST_TEST(*fences.Get(0) == 2);
}

}  // namespace
}  // namespace baton::testing
