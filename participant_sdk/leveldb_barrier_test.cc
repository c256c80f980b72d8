#define BOOST_TEST_MODULE barrier
#include "baton/leveldb_barrier.h"

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/child_process.h"
#include "common/failpoint.h"

namespace baton {
namespace {

struct Fixture {
  Fixture() {
    leveldb::Options options;
    options.create_if_missing = true;
    leveldb::DB* raw = nullptr;
    BOOST_REQUIRE(
        leveldb::DB::Open(options, (dir.path() / "db").string(), &raw).ok());
    db.reset(raw);
    barrier = std::make_unique<LevelDbBarrier>(db.get());
  }

  // A hook that counts its runs and writes `key` through the batch.
  BarrierHook Counting(std::atomic<int>* runs, const std::string& key,
                       TryState* seen = nullptr) {
    return [=](LocalTransaction& local, TryState state) {
      ++*runs;
      if (seen != nullptr) *seen = state;
      LevelDbBarrier::Batch(local)->Put(key, "written");
      return absl::OkStatus();
    };
  }

  bool Has(const std::string& key) {
    std::string value;
    return db->Get(leveldb::ReadOptions(), key, &value).ok();
  }

  TempDir dir;
  std::unique_ptr<leveldb::DB> db;
  std::unique_ptr<LevelDbBarrier> barrier;
};

BOOST_FIXTURE_TEST_SUITE(leveldb_barrier, Fixture)

BOOST_AUTO_TEST_CASE(try_then_confirm_run_once_each) {
  std::atomic<int> tries{0}, confirms{0};
  BarrierCall t{"0-1-1", 1, TccPhase::kTry};
  BOOST_TEST(
      (*barrier->Run(t, Counting(&tries, "reserved")) == BarrierResult::kRan));
  BOOST_TEST((*barrier->Run(t, Counting(&tries, "reserved")) ==
              BarrierResult::kDuplicate));
  BarrierCall c{"0-1-1", 1, TccPhase::kConfirm};
  for (int i = 0; i < 3; ++i)
    barrier->Run(c, Counting(&confirms, "confirmed")).IgnoreError();
  BOOST_TEST(tries.load() == 1);
  BOOST_TEST(confirms.load() == 1);
  BOOST_TEST(Has("reserved"));
  BOOST_TEST(Has("confirmed"));
}

BOOST_AUTO_TEST_CASE(an_empty_cancel_succeeds_and_refuses_the_late_try) {
  std::atomic<int> cancels{0}, tries{0};
  auto r =
      barrier->Run({"0-1-2", 1, TccPhase::kCancel}, Counting(&cancels, "undo"));
  BOOST_TEST((*r == BarrierResult::kEmptyCancel));
  BOOST_TEST(cancels.load() == 0);
  auto late =
      barrier->Run({"0-1-2", 1, TccPhase::kTry}, Counting(&tries, "reserved"));
  BOOST_TEST(absl::IsFailedPrecondition(late.status()));
  BOOST_TEST(tries.load() == 0);
  BOOST_TEST(!Has("reserved"));
}

BOOST_AUTO_TEST_CASE(concurrent_cancels_apply_once) {
  std::atomic<int> tries{0}, cancels{0};
  BOOST_REQUIRE(
      barrier->Run({"0-1-3", 1, TccPhase::kTry}, Counting(&tries, "reserved"))
          .ok());
  std::atomic<int> ran{0}, duplicates{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = barrier->Run({"0-1-3", 1, TccPhase::kCancel},
                            Counting(&cancels, "undo"));
      if (r.ok() && *r == BarrierResult::kRan) ++ran;
      if (r.ok() && *r == BarrierResult::kDuplicate) ++duplicates;
    });
  }
  for (auto& t : threads) t.join();
  BOOST_TEST(cancels.load() == 1);
  BOOST_TEST(ran.load() == 1);
  BOOST_TEST(duplicates.load() == 7);
}

BOOST_AUTO_TEST_CASE(a_failed_try_still_gets_its_cancel_hook) {
  // The try's hook fails after (say) an external call: nothing of its batch
  // is written, but the try is on record as started.
  auto failed = barrier->Run(
      {"0-1-4", 1, TccPhase::kTry}, [](LocalTransaction& local, TryState) {
        LevelDbBarrier::Batch(local)->Put("reserved", "x");
        return absl::UnavailableError("payment gateway timed out");
      });
  BOOST_TEST(absl::IsUnavailable(failed.status()));
  BOOST_TEST(!Has("reserved"));
  std::atomic<int> cancels{0};
  TryState seen = TryState::kNone;
  auto r = barrier->Run({"0-1-4", 1, TccPhase::kCancel},
                        Counting(&cancels, "undo", &seen));
  BOOST_TEST((*r == BarrierResult::kRan));
  BOOST_TEST(cancels.load() == 1);
  BOOST_TEST((seen == TryState::kStarted));
}

// A local try is one synced write, its record and its writes together; one
// that failed left nothing, so its cancel is empty and no hook runs.
BOOST_AUTO_TEST_CASE(a_local_try_is_one_synced_write_and_a_failed_one_nothing) {
  std::atomic<int> tries{0}, cancels{0};
  BarrierCall t{.xid = "0-1-8",
                .branch_id = 1,
                .phase = TccPhase::kTry,
                .local_only = true};
  BOOST_TEST(
      (*barrier->Run(t, Counting(&tries, "reserved")) == BarrierResult::kRan));
  BOOST_TEST(barrier->syncs() == 1u);
  BOOST_TEST(Has("reserved"));
  BOOST_TEST((*barrier->Run(t, Counting(&tries, "reserved")) ==
              BarrierResult::kDuplicate));
  BOOST_TEST(barrier->Unresolved().size() == 1u);

  BarrierCall failing{.xid = "0-1-9",
                      .branch_id = 1,
                      .phase = TccPhase::kTry,
                      .local_only = true};
  auto r = barrier->Run(failing, [](LocalTransaction& local, TryState) {
    LevelDbBarrier::Batch(local)->Put("held", "x");
    return absl::FailedPreconditionError("out of stock");
  });
  BOOST_TEST(absl::IsFailedPrecondition(r.status()));
  BOOST_TEST(barrier->syncs() == 1u);
  BOOST_TEST(!Has("held"));
  auto cancel =
      barrier->Run({"0-1-9", 1, TccPhase::kCancel}, Counting(&cancels, "undo"));
  BOOST_TEST((*cancel == BarrierResult::kEmptyCancel));
  BOOST_TEST(cancels.load() == 0);
  BOOST_TEST(tries.load() == 1);
}

BOOST_AUTO_TEST_CASE(a_failing_hook_writes_nothing_and_can_be_retried) {
  std::atomic<int> tries{0};
  BOOST_REQUIRE(
      barrier->Run({"0-1-5", 1, TccPhase::kTry}, Counting(&tries, "r")).ok());
  auto failing = barrier->Run(
      {"0-1-5", 1, TccPhase::kConfirm}, [](LocalTransaction& local, TryState) {
        LevelDbBarrier::Batch(local)->Put("confirmed", "x");
        return absl::AbortedError("not now");
      });
  BOOST_TEST(!failing.ok());
  BOOST_TEST(!Has("confirmed"));
  std::atomic<int> confirms{0};
  auto again = barrier->Run({"0-1-5", 1, TccPhase::kConfirm},
                            Counting(&confirms, "confirmed"));
  BOOST_TEST((*again == BarrierResult::kRan));
  BOOST_TEST(Has("confirmed"));
}

BOOST_AUTO_TEST_CASE(
    unresolved_lists_tries_without_an_outcome_and_purge_forgets) {
  std::atomic<int> n{0};
  BOOST_REQUIRE(
      barrier->Run({"0-1-6", 1, TccPhase::kTry}, Counting(&n, "a")).ok());
  BOOST_REQUIRE(
      barrier->Run({"0-1-7", 2, TccPhase::kTry}, Counting(&n, "b")).ok());
  BOOST_REQUIRE(
      barrier->Run({"0-1-7", 2, TccPhase::kConfirm}, Counting(&n, "c")).ok());
  auto unresolved = barrier->Unresolved();
  BOOST_REQUIRE(unresolved.size() == 1u);
  BOOST_TEST(unresolved[0].first == "0-1-6");
  BOOST_TEST(unresolved[0].second == 1u);

  BOOST_TEST(*barrier->PurgeResolvedBefore(0) == 0u);
  BOOST_TEST(*barrier->PurgeResolvedBefore(INT64_MAX / 2) == 1u);
  // 0-1-7 is forgotten; 0-1-6 is still unresolved and kept.
  BOOST_TEST(barrier->Unresolved().size() == 1u);
  std::atomic<int> again{0};
  auto r = barrier->Run({"0-1-7", 2, TccPhase::kTry}, Counting(&again, "b2"));
  BOOST_TEST((*r == BarrierResult::kRan));
}

using ArmedFailpoints = failpoint::ScopedArmForTest;

// Each hook adds one to a counter it reads through Get: hooks that share a
// synced write still see each other's increments, in order.
BOOST_AUTO_TEST_CASE(concurrent_hooks_share_syncs_and_see_each_others_writes) {
  ArmedFailpoints slow_disk("barrier_before_sync=delay(20)");
  constexpr int kThreads = 8, kEach = 5;
  auto increment = [](LocalTransaction& local, TryState) {
    std::string value;
    leveldb::Status s = LevelDbBarrier::Get(local, "counter", &value);
    int n = s.ok() ? std::stoi(value) : 0;
    LevelDbBarrier::Batch(local)->Put("counter", std::to_string(n + 1));
    return absl::OkStatus();
  };
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        BarrierCall call{"0-1-" + std::to_string(t), uint64_t(i + 1),
                         TccPhase::kTry};
        if (!barrier->Run(call, increment).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  BOOST_TEST(failures.load() == 0);
  std::string counter;
  BOOST_REQUIRE(db->Get(leveldb::ReadOptions(), "counter", &counter).ok());
  BOOST_TEST(counter == std::to_string(kThreads * kEach));
  // Two writes per try (started, then done), fewer syncs.
  BOOST_TEST(barrier->syncs() < uint64_t{2 * kThreads * kEach},
             barrier->syncs() << " syncs");
  BOOST_TEST(barrier->Unresolved().size() == size_t{kThreads * kEach});
}

// A synced write that fails fails its call and every later one: a later
// hook may have read what it held. Nothing of the failed group is on disk.
BOOST_AUTO_TEST_CASE(a_failed_sync_fails_every_call_from_then_on) {
  std::atomic<int> n{0};
  BOOST_REQUIRE(
      barrier->Run({"0-1-8", 1, TccPhase::kTry}, Counting(&n, "before")).ok());
  {
    ArmedFailpoints failing_disk("barrier_before_sync=1:error");
    auto failed =
        barrier->Run({"0-1-9", 1, TccPhase::kTry}, Counting(&n, "lost"));
    BOOST_TEST(absl::IsUnavailable(failed.status()), failed.status());
  }
  auto later =
      barrier->Run({"0-1-10", 1, TccPhase::kTry}, Counting(&n, "later"));
  BOOST_TEST(absl::IsUnavailable(later.status()));
  BOOST_TEST(Has("before"));
  BOOST_TEST(!Has("lost"));
  BOOST_TEST(!Has("later"));
  BOOST_TEST(n.load() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
