#include "coordinator/transaction_table.h"

#include <boost/test/unit_test.hpp>

#include "coordinator/table_test_fixture.h"
#include "coordinator/xid.h"

namespace baton {
namespace {

using testing::Answer;
using testing::TableFixture;

BOOST_AUTO_TEST_SUITE(transaction_table)

BOOST_FIXTURE_TEST_CASE(a_new_transaction_is_answered_only_once_durable,
                        TableFixture) {
  store.Hold();
  Answer a;
  table.Create(
      "", false,
      [](v1::Transaction* r, int64_t now) {
        r->set_status(v1::GLOBAL_STATUS_BEGUN);
        return absl::OkStatus();
      },
      nullptr, a.done());
  BOOST_REQUIRE(store.WriteWaiting());
  BOOST_TEST(!a.ready());
  store.Release();
  auto [s, r] = a.get();
  BOOST_TEST(s.ok());
  XidParts parts;
  BOOST_REQUIRE(ParseXid(r.xid(), &parts));
  BOOST_TEST(parts.node == kShard);
  BOOST_TEST(parts.epoch == 3u);
  v1::Transaction stored;
  BOOST_TEST(store.Get(r.xid(), &stored).ok());
}

BOOST_FIXTURE_TEST_CASE(phase_two_goes_out_only_once_the_decision_is_durable,
                        TableFixture) {
  sink.Serve("bank");
  std::string xid = Begin();
  Prepare(xid, 2);
  store.Hold();
  Answer committed = Decide(xid, /*commit=*/true);
  BOOST_REQUIRE(store.WriteWaiting());
  BOOST_TEST(sink.Take().empty());
  BOOST_TEST(!committed.ready());
  store.Release();
  BOOST_TEST(committed.get().first.ok());
  Sync();
  std::vector<v1::BranchCommand> sent = sink.Take();
  BOOST_REQUIRE(sent.size() == 2u);
  BOOST_TEST(sent[0].action() == v1::BRANCH_ACTION_COMMIT);
  BOOST_TEST(sent[0].attempt() == 1u);
  // Each command in flight asks for a wake when its answer is overdue.
  BOOST_TEST(wakeups.When(xid) <= timeline.Now() + kCommandTimeoutMs);
}

BOOST_FIXTURE_TEST_CASE(a_finished_transaction_leaves_memory_once_durable,
                        TableFixture) {
  sink.Serve("bank");
  std::string xid = Begin();
  Prepare(xid, 2);
  Decide(xid, true).get();
  Sync();
  std::vector<v1::BranchCommand> sent = sink.Take();
  BOOST_REQUIRE(sent.size() == 2u);
  Result(sent[0], v1::COMMAND_OUTCOME_DONE);
  // The first DONE rides along with the next write: nothing is written yet.
  BOOST_TEST(table.LiveCount() == 1u);
  store.Hold();
  Result(sent[1], v1::COMMAND_OUTCOME_DONE);
  BOOST_REQUIRE(store.WriteWaiting());
  BOOST_TEST(table.LiveCount() == 1u);
  store.Release();
  Sync();
  BOOST_TEST(table.LiveCount() == 0u);
  v1::Transaction stored;
  BOOST_REQUIRE(store.Get(xid, &stored).ok());
  BOOST_TEST(stored.status() == v1::GLOBAL_STATUS_COMMITTED);
  for (const v1::Branch& b : stored.branches()) {
    BOOST_TEST(b.status() == v1::BRANCH_STATUS_COMMITTED);
  }
}

// absl::Mutex is not reentrant: a reply run under the lock would deadlock
// calling back in.
// What a damaged store would make of a restart; the live record stays.
BOOST_FIXTURE_TEST_CASE(a_record_adopted_twice_is_data_loss, TableFixture) {
  std::string xid = Begin();
  Prepare(xid, 1);
  v1::Transaction loaded = Read(xid);
  TableFixture other;
  BOOST_REQUIRE(other.table.Adopt(loaded).ok());
  absl::Status twice = other.table.Adopt(loaded);
  BOOST_TEST(absl::IsDataLoss(twice), twice);
  v1::Transaction bad = loaded;
  bad.set_xid("not an xid");
  BOOST_TEST(absl::IsDataLoss(other.table.Adopt(bad)));
  BOOST_TEST(other.table.LiveCount() == 1u);
  other.Sync();
  BOOST_TEST(other.Read(xid).status() == v1::GLOBAL_STATUS_ROLLING_BACK);
}

BOOST_FIXTURE_TEST_CASE(replies_run_without_the_lock, TableFixture) {
  std::string xid = Begin();
  Answer a;
  size_t live_seen = 0;
  table.Apply(
      xid, [](LiveTransaction*, int64_t, Effects*) { return absl::OkStatus(); },
      [&](const absl::Status& s, const v1::Transaction& r) {
        live_seen = table.LiveCount();
        a.done()(s, r);
      });
  a.get();
  BOOST_TEST(live_seen == 1u);
  // A waiter answered by a terminal write, and one dropped with Remove.
  Answer waited;
  BOOST_REQUIRE(
      table.AddWaiter(xid, timeline.Now() + 60'000,
                      [&](const absl::Status& s, const v1::Transaction& r) {
                        table.LiveCount();
                        waited.done()(s, r);
                      }));
  Decide(xid, false).get();  // No branches: rolled back at once.
  BOOST_TEST(waited.get().second.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
}

BOOST_FIXTURE_TEST_CASE(a_waiter_is_answered_when_its_wait_runs_out,
                        TableFixture) {
  std::string xid = Begin();
  Prepare(xid, 1);
  Answer waited;
  BOOST_REQUIRE(table.AddWaiter(xid, timeline.Now() + 500, waited.done()));
  BOOST_TEST(wakeups.When(xid) == timeline.Now() + 500);
  RunDue(xid, timeline.Now() + 499);
  BOOST_TEST(!waited.ready());
  clock.Advance(500);
  RunDue(xid, timeline.Now());
  auto [s, r] = waited.get();
  BOOST_TEST(s.ok());
  BOOST_TEST(r.status() == v1::GLOBAL_STATUS_BEGUN);
}

BOOST_FIXTURE_TEST_CASE(an_idempotency_key_finds_its_live_transaction,
                        TableFixture) {
  std::string first = Begin("key-1");
  BOOST_TEST(Begin("key-1") == first);
  BOOST_TEST(Begin("key-2") != first);
  v1::Transaction existing;
  BOOST_TEST((table.ReserveKey("key-1", &existing) ==
              TransactionTable::KeyState::kLive));
  BOOST_TEST(existing.xid() == first);
  BOOST_TEST((table.ReserveKey("key-3", &existing) ==
              TransactionTable::KeyState::kFree));
  BOOST_TEST((table.ReserveKey("key-3", &existing) ==
              TransactionTable::KeyState::kReserved));
  table.Unreserve("key-3");
  BOOST_TEST((table.ReserveKey("key-3", &existing) ==
              TransactionTable::KeyState::kFree));
}

// A caller whose Begin answer was lost retries after the coordinator rolled
// the transaction back (a restart found it open, or it timed out): it gets
// that transaction back, not a second one.
BOOST_FIXTURE_TEST_CASE(a_key_rolled_back_before_any_branch_stays_known,
                        TableFixture) {
  std::string unclaimed = Begin("key-1");
  BOOST_TEST(Decide(unclaimed, /*commit=*/false).get().first.ok());
  Sync();
  BOOST_REQUIRE(table.LiveCount() == 0u);
  BOOST_TEST(Begin("key-1") == unclaimed);
  // A committed one was claimed: its caller knew the xid.
  std::string claimed = Begin("key-2");
  BOOST_TEST(Decide(claimed, /*commit=*/true).get().first.ok());
  Sync();
  BOOST_REQUIRE(table.LiveCount() == 0u);
  BOOST_TEST(Begin("key-2") != claimed);
}

BOOST_FIXTURE_TEST_CASE(pages_visit_every_record_once_in_xid_order,
                        TableFixture) {
  std::vector<std::string> begun;
  for (int i = 0; i < 5; ++i) begun.push_back(Begin());
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  do {
    after = table.ReadPage(after, 2, [&](const LiveTransaction& t) {
      seen.push_back(t.record.xid());
      return true;
    });
    ++pages;
  } while (!after.empty());
  std::sort(begun.begin(), begun.end());
  BOOST_TEST(seen == begun, boost::test_tools::per_element());
  BOOST_TEST(pages == 3);
}

BOOST_FIXTURE_TEST_CASE(removing_answers_waiters_and_frees_the_key,
                        TableFixture) {
  std::string xid = Begin("key");
  Answer waited;
  BOOST_REQUIRE(table.AddWaiter(xid, timeline.Now() + 60'000, waited.done()));
  v1::Transaction removed;
  int64_t due = 0;
  absl::Status verdict;
  BOOST_REQUIRE(table.Remove(
      xid, [](const v1::Transaction&) { return absl::OkStatus(); }, &removed,
      &due, &verdict));
  BOOST_TEST(verdict.ok());
  BOOST_TEST(removed.xid() == xid);
  BOOST_TEST(absl::IsAborted(waited.get().first));
  BOOST_TEST(table.LiveCount() == 0u);
  BOOST_TEST(Begin("key") != xid);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
