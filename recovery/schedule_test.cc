#include "recovery/schedule.h"

#include <boost/test/unit_test.hpp>

#include "coordinator/table_test_fixture.h"

namespace baton {
namespace {

using testing::Answer;
using testing::TableFixture;

// A table whose wakeups go to a real schedule.
struct ScheduledTable : TableFixture {
  ShardSchedule schedule{2};
  TransactionTable scheduled{
      {.shard = kShard + 1,
       .epoch = 3,
       .timeline = &timeline,
       .committer = &committer,
       .sink = &sink,
       .wakeups = &schedule,
       .drivers = {.two_phase = &two_phase, .saga = &saga},
       .log_summary = &log}};
};

BOOST_AUTO_TEST_SUITE(shard_schedule)

BOOST_AUTO_TEST_CASE(keeps_the_earliest_wake_per_record) {
  ShardSchedule schedule(10);
  const RecordKey a{3, 1}, b{3, 2};
  schedule.WakeAt(a, 300);
  schedule.WakeAt(a, 100);
  schedule.WakeAt(a, 200);
  schedule.WakeAt(b, 150);
  BOOST_TEST(schedule.pending_wakeups() == 2u);
  schedule.Forget(a);
  BOOST_TEST(schedule.pending_wakeups() == 1u);
}

BOOST_FIXTURE_TEST_CASE(visits_only_what_is_due_and_rearms_what_is_next,
                        ScheduledTable) {
  sink.Serve("bank");
  Answer begun;
  scheduled.Create(
      "", false,
      [this](v1::Transaction* r, int64_t now) {
        r->set_status(v1::GLOBAL_STATUS_BEGUN);
        r->set_deadline_unix_ms(timeline.Now() + 1000);
        return absl::OkStatus();
      },
      nullptr, begun.done());
  std::string xid = begun.get().second.xid();
  Answer waited;
  BOOST_REQUIRE(scheduled.AddWaiter(xid, timeline.Now() + 400, waited.done()));
  // The wait runs out first; the deadline stays scheduled after it.
  clock.Advance(399);
  schedule.RunDue(&scheduled, timeline.Now());
  BOOST_TEST(!waited.ready());
  clock.Advance(1);
  schedule.RunDue(&scheduled, timeline.Now());
  BOOST_TEST(waited.get().second.status() == v1::GLOBAL_STATUS_BEGUN);
  BOOST_TEST(schedule.pending_wakeups() == 1u);
  clock.Advance(600);
  schedule.RunDue(&scheduled, timeline.Now());
  Sync();
  // Rolled back at its deadline; with no branches that finishes it.
  BOOST_TEST(scheduled.LiveCount() == 0u);
  BOOST_TEST(schedule.pending_wakeups() == 0u);
  v1::Transaction stored;
  BOOST_REQUIRE(store.Get(xid, &stored).ok());
  BOOST_TEST(stored.status() == v1::GLOBAL_STATUS_ROLLED_BACK);
}

BOOST_FIXTURE_TEST_CASE(resumes_adopted_records_a_few_per_run, ScheduledTable) {
  sink.Serve("bank");
  std::vector<std::string> xids;
  for (int i = 0; i < 5; ++i) {
    std::string xid = Begin();
    Prepare(xid, 1);
    Decide(xid, true).get();
    xids.push_back(xid);
  }
  Sync();
  BOOST_REQUIRE(sink.Take().size() == 5u);
  // Loaded by another shard after a "restart".
  for (const std::string& xid : xids) {
    v1::Transaction record;
    BOOST_REQUIRE(store.Get(xid, &record).ok());
    BOOST_REQUIRE(scheduled.Adopt(record).ok());
    schedule.QueueResume(xid);
  }
  schedule.RunDue(&scheduled, timeline.Now());
  Sync();
  BOOST_TEST(sink.Take().size() == 2u);
  BOOST_TEST(schedule.pending_resumes() == 3u);
  schedule.RunDue(&scheduled, timeline.Now());
  schedule.RunDue(&scheduled, timeline.Now());
  Sync();
  BOOST_TEST(sink.Take().size() == 3u);
  BOOST_TEST(schedule.pending_resumes() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
