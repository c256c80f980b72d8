#define BOOST_TEST_MODULE coordinator
#include "coordinator/store.h"

#include <boost/test/unit_test.hpp>

#include "coordinator/store_keys.h"

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(store_keys_encoding)

BOOST_AUTO_TEST_CASE(index_keys_sort_by_time_and_round_trip) {
  std::string early = store_keys::UnfinishedKey(5, "0-1-9");
  std::string late = store_keys::UnfinishedKey(0x1000, "0-1-1");
  BOOST_TEST(early < late);
  BOOST_TEST(early == "u/0000000000000005/0-1-9");
  int64_t ms;
  std::string xid;
  BOOST_TEST(store_keys::ParseIndexKey(late, &ms, &xid));
  BOOST_TEST(ms == 0x1000);
  BOOST_TEST(xid == "0-1-1");
  BOOST_TEST(store_keys::ParseIndexKey(
      store_keys::FinishedKey(1700000000000, "x"), &ms, &xid));
  BOOST_TEST(ms == 1700000000000);
  BOOST_TEST(!store_keys::ParseIndexKey("t/0-1-1", &ms, &xid));
  BOOST_TEST(!store_keys::ParseIndexKey("u/00000000000000zz/x", &ms, &xid));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(leveldb_store)

// What every backend does is tests/store_backends_test.cc.

BOOST_AUTO_TEST_CASE(open_fails_clearly_on_unusable_dir) {
  std::unique_ptr<TransactionStore> store;
  absl::Status s = OpenLevelDbStore("/proc/baton-cannot-be-here", &store);
  BOOST_TEST(absl::IsFailedPrecondition(s));
  BOOST_TEST(std::string(s.message()).find("/proc/baton-cannot-be-here") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
