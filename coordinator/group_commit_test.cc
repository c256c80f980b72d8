#include "coordinator/group_commit.h"

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace baton {
namespace {

// Counts syncs; can hold the first write until released so that submissions
// pile up behind it, exactly as under load.
class FakeStore : public TransactionStore {
 public:
  absl::Status Apply(const std::vector<const StoreBatch*>& batches) override {
    std::unique_lock<std::mutex> lock(mu);
    ++started;
    released_cv.notify_all();
    released_cv.wait(lock, [this] { return released && started <= permits; });
    ++syncs;
    applied += batches.size();
    for (const StoreBatch* b : batches) {
      for (const auto& op : b->ops()) order.push_back(op.key);
    }
    return fail ? absl::UnavailableError("disk gone") : absl::OkStatus();
  }
  absl::Status Get(const std::string&, v1::Transaction*) override {
    return absl::NotFoundError("");
  }
  absl::Status ScanUnfinished(
      const std::function<bool(const v1::Transaction&)>&) override {
    return absl::OkStatus();
  }
  absl::Status ScanFinished(const FinishedRef*, int64_t, size_t,
                            std::vector<FinishedRef>*) override {
    return absl::OkStatus();
  }
  absl::Status GetMeta(const std::string&, std::string*) override {
    return absl::NotFoundError("");
  }
  StoreStats Stats() const override { return {}; }

  // Refuses the batches whose first key is in `fenced`, applying the rest.
  absl::Status ApplyFenced(const std::vector<const StoreBatch*>& batches,
                           std::vector<absl::Status>* refused) override {
    refused->assign(batches.size(), absl::OkStatus());
    std::vector<const StoreBatch*> kept;
    for (size_t i = 0; i < batches.size(); ++i) {
      if (fenced.contains(batches[i]->ops()[0].key)) {
        (*refused)[i] = absl::FailedPreconditionError("shard moved");
      } else {
        kept.push_back(batches[i]);
      }
    }
    return Apply(kept);
  }

  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    released_cv.notify_all();
  }

  void Permit(int writes) {
    std::lock_guard<std::mutex> lock(mu);
    permits = writes;
    released_cv.notify_all();
  }

  // Whether `n` writes have started within `timeout`.
  bool WaitStarted(int n, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return released_cv.wait_for(lock, timeout, [&] { return started >= n; });
  }

  std::mutex mu;
  std::condition_variable released_cv;
  bool released = true;
  bool fail = false;
  int started = 0;
  int permits = 1 << 30;  // Writes beyond this many wait for Permit.
  int syncs = 0;
  size_t applied = 0;
  std::vector<std::string> order;
  std::set<std::string> fenced;
};

StoreBatch Meta(const std::string& key) {
  StoreBatch b;
  b.PutMeta(key, "v");
  return b;
}

struct Latch {
  void CountDown() {
    std::lock_guard<std::mutex> lock(mu);
    if (--count == 0) cv.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return count == 0; });
  }
  std::mutex mu;
  std::condition_variable cv;
  int count;
};

BOOST_AUTO_TEST_SUITE(group_commit)

BOOST_AUTO_TEST_CASE(concurrent_submissions_share_one_sync_and_keep_order) {
  FakeStore store;
  store.released = false;
  GroupCommitter committer(&store);
  Latch first{.count = 1};
  committer.Submit(Meta("first"), [&](const absl::Status& s) {
    BOOST_TEST(s.ok());
    first.CountDown();
  });
  // While "first" is stuck in its sync, 100 more pile up.
  constexpr int kWriters = 100;
  Latch rest{.count = kWriters};
  std::vector<int> completion_order;
  std::mutex order_mu;
  for (int i = 0; i < kWriters; ++i) {
    committer.Submit(Meta("k" + std::to_string(i)),
                     [&, i](const absl::Status& s) {
                       BOOST_TEST(s.ok());
                       std::lock_guard<std::mutex> lock(order_mu);
                       completion_order.push_back(i);
                       rest.CountDown();
                     });
  }
  store.Release();
  first.Wait();
  rest.Wait();
  BOOST_TEST(store.syncs <= 2);
  BOOST_TEST(store.applied == static_cast<size_t>(kWriters + 1));
  for (int i = 0; i < kWriters; ++i) BOOST_TEST(completion_order[i] == i);
  BOOST_TEST(store.order.front() == "first");
  BOOST_TEST(store.order.back() == "k99");
}

BOOST_AUTO_TEST_CASE(empty_batch_waits_for_earlier_writes_without_a_sync) {
  FakeStore store;
  GroupCommitter committer(&store);
  Latch done{.count = 2};
  std::atomic<bool> write_done{false};
  committer.Submit(Meta("a"), [&](const absl::Status&) {
    write_done = true;
    done.CountDown();
  });
  committer.Submit(StoreBatch(), [&](const absl::Status& s) {
    BOOST_TEST(s.ok());
    BOOST_TEST(write_done.load());
    done.CountDown();
  });
  done.Wait();
  Latch alone{.count = 1};
  int syncs_before = store.syncs;
  committer.Submit(StoreBatch(),
                   [&](const absl::Status&) { alone.CountDown(); });
  alone.Wait();
  BOOST_TEST(store.syncs == syncs_before);
}

BOOST_AUTO_TEST_CASE(callbacks_run_while_the_next_group_syncs) {
  FakeStore store;
  store.Permit(1);
  GroupCommitter committer(&store);
  Latch done{.count = 2};
  // Written by the callbacks, read here only after `done`.
  bool all_ok = true;
  bool next_write_started = false;
  std::vector<std::string> callback_order;
  committer.Submit(Meta("a"), [&](const absl::Status& s) {
    all_ok = all_ok && s.ok();
    // "b" is held in its sync: seeing it start proves the overlap.
    next_write_started = store.WaitStarted(2, std::chrono::seconds(10));
    callback_order.push_back("a");
    store.Permit(2);
    done.CountDown();
  });
  BOOST_REQUIRE(store.WaitStarted(1, std::chrono::seconds(10)));
  committer.Submit(Meta("b"), [&](const absl::Status& s) {
    all_ok = all_ok && s.ok();
    callback_order.push_back("b");
    done.CountDown();
  });
  done.Wait();
  BOOST_TEST(all_ok);
  BOOST_TEST(next_write_started);
  BOOST_TEST(callback_order == (std::vector<std::string>{"a", "b"}),
             boost::test_tools::per_element());
  BOOST_TEST(store.syncs == 2);
}

BOOST_AUTO_TEST_CASE(stop_commits_what_callbacks_submit_meanwhile) {
  FakeStore store;
  GroupCommitter committer(&store);
  constexpr int kChain = 64;
  // Each callback submits the next link, so Stop begins while the chain is
  // still growing and must wait for all of it.
  std::atomic<int> ran{0};
  std::function<void(int)> submit_link = [&](int i) {
    committer.Submit(Meta("link" + std::to_string(i)),
                     [&, i](const absl::Status& s) {
                       if (s.ok()) ++ran;
                       if (i + 1 < kChain) submit_link(i + 1);
                     });
  };
  submit_link(0);
  committer.Stop();
  BOOST_TEST(ran.load() == kChain);
  BOOST_TEST(store.syncs == kChain);
}

BOOST_AUTO_TEST_CASE(submit_after_stop_is_dropped) {
  FakeStore store;
  GroupCommitter committer(&store);
  committer.Stop();
  bool ran = false;
  committer.Submit(Meta("late"), [&](const absl::Status&) { ran = true; });
  committer.Stop();
  BOOST_TEST(!ran);
  BOOST_TEST(store.syncs == 0);
}

BOOST_AUTO_TEST_CASE(a_failed_sync_fails_every_callback_of_the_group) {
  FakeStore store;
  store.fail = true;
  GroupCommitter committer(&store);
  Latch done{.count = 3};
  std::atomic<int> failures{0};
  for (int i = 0; i < 3; ++i) {
    committer.Submit(Meta("x"), [&](const absl::Status& s) {
      if (absl::IsUnavailable(s)) ++failures;
      done.CountDown();
    });
  }
  done.Wait();
  BOOST_TEST(failures.load() == 3);
}

// What a failed write's callers changed in memory never reached the disk,
// so a later barrier must not confirm it: the failure is final.
BOOST_AUTO_TEST_CASE(after_a_failed_write_every_later_callback_fails) {
  FakeStore store;
  store.fail = true;
  std::atomic<int> observed{0};
  GroupCommitter committer(&store, [&](const absl::Status& s) {
    if (absl::IsUnavailable(s)) ++observed;
  });
  Latch failed{.count = 1};
  committer.Submit(Meta("lost"),
                   [&](const absl::Status&) { failed.CountDown(); });
  failed.Wait();
  store.fail = false;  // Space came back: nothing may be written anyway.
  Latch later{.count = 2};
  absl::Status barrier_status, write_status;
  committer.Submit(StoreBatch(), [&](const absl::Status& s) {
    barrier_status = s;
    later.CountDown();
  });
  committer.Submit(Meta("after"), [&](const absl::Status& s) {
    write_status = s;
    later.CountDown();
  });
  later.Wait();
  BOOST_TEST(absl::IsUnavailable(barrier_status), barrier_status);
  BOOST_TEST(absl::IsUnavailable(write_status), write_status);
  BOOST_TEST(store.syncs == 1);
  BOOST_TEST(observed.load() == 1);
  BOOST_TEST(absl::IsUnavailable(committer.failure()));
}

BOOST_AUTO_TEST_CASE(a_refused_batch_answers_alone_and_the_rest_go_on) {
  FakeStore store;
  store.fenced = {"moved"};
  store.released = false;
  GroupCommitter committer(&store);
  committer.Submit(Meta("first"), [](const absl::Status&) {});
  Latch done{.count = 3};
  absl::Status before, refused, after;
  auto record = [&](absl::Status* into) {
    return [&, into](const absl::Status& s) {
      *into = s;
      done.CountDown();
    };
  };
  committer.Submit(Meta("kept-1"), record(&before));
  committer.Submit(Meta("moved"), record(&refused));
  committer.Submit(Meta("kept-2"), record(&after));
  store.Release();
  done.Wait();
  BOOST_TEST(before.ok());
  BOOST_TEST(absl::IsFailedPrecondition(refused), refused);
  BOOST_TEST(after.ok());
  BOOST_TEST(committer.failure().ok());
  BOOST_TEST(
      (store.order == std::vector<std::string>{"first", "kept-1", "kept-2"}));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
