// What a transaction costs the disk over its whole life, through the
// manager's real call paths into a LevelDB store: bytes in proportion to
// its branches, not to their square (each change writes what it changed).

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <future>
#include <random>

#include "coordinator/table_test_fixture.h"
#include "coordinator/transaction_manager.h"

namespace baton {
namespace {

using testing::RecordingSink;
using testing::RecordingWakeups;

template <typename T>
T Await(std::future<std::pair<absl::Status, T>> f) {
  BOOST_REQUIRE(f.wait_for(std::chrono::seconds(30)) ==
                std::future_status::ready);
  auto [s, value] = f.get();
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return value;
}

template <typename T>
std::pair<std::function<void(const absl::Status&, const T&)>,
          std::future<std::pair<absl::Status, T>>>
Reply() {
  auto p = std::make_shared<std::promise<std::pair<absl::Status, T>>>();
  auto f = p->get_future();
  return {[p](const absl::Status& s, const T& v) {
            p->set_value({s, v});
          },
          std::move(f)};
}

// Bytes the store was handed over the life of one committed transaction
// with `branches` branches, each registered, prepared, committed and
// answered.
uint64_t LifetimeBytes(int branches) {
  auto dir = std::filesystem::temp_directory_path() /
             ("baton-write-cost-" + std::to_string(std::random_device{}()));
  std::unique_ptr<TransactionStore> store;
  BOOST_REQUIRE(OpenLevelDbStore(dir.string(), &store).ok());
  uint64_t bytes = 0;
  {
    GroupCommitter committer(store.get());
    RecordingSink sink;
    sink.Serve("bank");
    RecordingWakeups wakeups;
    TransactionManager manager(
        ManagerOptions{}, &committer, store.get(), &sink,
        {.wakeups = [&](uint32_t) -> Wakeups* { return &wakeups; }});
    BOOST_REQUIRE(manager.Init().ok());
    uint64_t before = store->Stats().bytes;

    auto [begun, begin_done] = Reply<v1::BeginResponse>();
    manager.Begin(v1::BeginRequest(), begun);
    std::string xid = Await(std::move(begin_done)).xid();
    // Concurrently, as services do: group commit shares the syncs.
    std::vector<
        std::future<std::pair<absl::Status, v1::RegisterBranchResponse>>>
        registered;
    for (int i = 0; i < branches; ++i) {
      v1::RegisterBranchRequest request;
      request.set_xid(xid);
      request.set_resource("bank");
      request.set_application_data(std::string(64, 'd'));
      auto [reply, done] = Reply<v1::RegisterBranchResponse>();
      manager.RegisterBranch(request, reply);
      registered.push_back(std::move(done));
    }
    std::vector<std::future<std::pair<absl::Status, v1::ReportBranchResponse>>>
        reported;
    for (auto& r : registered) {
      v1::ReportBranchRequest request;
      request.set_xid(xid);
      request.set_branch_id(Await(std::move(r)).branch_id());
      request.set_outcome(v1::PHASE_ONE_OUTCOME_PREPARED);
      auto [reply, done] = Reply<v1::ReportBranchResponse>();
      manager.ReportBranch(request, reply);
      reported.push_back(std::move(done));
    }
    for (auto& r : reported) Await(std::move(r));
    v1::CommitRequest commit;
    commit.set_xid(xid);
    commit.set_wait(true);
    auto [committed, commit_done] = Reply<v1::CommitResponse>();
    manager.Commit(commit, committed);
    // Phase two: answer every command until the wait ends.
    size_t answered = 0;
    while (answered < static_cast<size_t>(branches)) {
      for (const v1::BranchCommand& c : sink.Take()) {
        manager.OnCommandResult(
            testing::ResultFor(c, v1::COMMAND_OUTCOME_DONE));
        ++answered;
      }
    }
    BOOST_TEST(Await(std::move(commit_done)).status() ==
               v1::GLOBAL_STATUS_COMMITTED);
    v1::Transaction stored;
    BOOST_REQUIRE(store->Get(xid, &stored).ok());
    BOOST_TEST(stored.branches_size() == branches);
    for (const v1::Branch& b : stored.branches()) {
      BOOST_TEST(b.status() == v1::BRANCH_STATUS_COMMITTED);
    }
    bytes = store->Stats().bytes - before;
    committer.Stop();
  }
  store.reset();
  std::filesystem::remove_all(dir);
  return bytes;
}

BOOST_AUTO_TEST_SUITE(write_cost)

BOOST_AUTO_TEST_CASE(a_transactions_writes_grow_linearly_with_its_branches) {
  uint64_t hundred = LifetimeBytes(100);
  uint64_t thousand = LifetimeBytes(1000);
  BOOST_TEST_MESSAGE("lifetime bytes: 100 branches "
                     << hundred << ", 1000 branches " << thousand);
  // Linear: about 10 times as much; rewriting the record per change would
  // be about 100 times.
  BOOST_TEST(thousand < 12 * hundred);
  // And a bounded cost per branch: its data, written a few times.
  BOOST_TEST(thousand / 1000 < 2000u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
