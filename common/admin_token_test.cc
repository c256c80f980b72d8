#include "common/admin_token.h"

#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <fstream>

#include "common/child_process.h"

namespace baton {
namespace {

BOOST_AUTO_TEST_SUITE(admin_token)

BOOST_AUTO_TEST_CASE(a_first_run_makes_a_private_token_that_a_restart_keeps) {
  TempDir dir;
  const std::string path =
      GeneratedAdminTokenPath((dir.path() / "data").string());
  absl::StatusOr<std::string> made = LoadOrCreateAdminToken(path);
  BOOST_REQUIRE_MESSAGE(made.ok(), made.status().ToString());
  BOOST_TEST(made->size() == 64u);
  BOOST_TEST(made->find_first_not_of("0123456789abcdef") == std::string::npos);
  struct stat st;
  BOOST_REQUIRE(stat(path.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);

  absl::StatusOr<std::string> again = LoadOrCreateAdminToken(path);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(*again == *made);
  BOOST_TEST(*ReadTokenFile(path) == *made);

  TempDir other;
  absl::StatusOr<std::string> elsewhere =
      LoadOrCreateAdminToken(GeneratedAdminTokenPath(other.path().string()));
  BOOST_REQUIRE(elsewhere.ok());
  BOOST_TEST(*elsewhere != *made);
}

BOOST_AUTO_TEST_CASE(
    a_token_file_is_its_first_line_and_an_empty_one_is_refused) {
  TempDir dir;
  const std::string path = (dir.path() / "token").string();
  BOOST_TEST(absl::IsNotFound(ReadTokenFile(path).status()));

  std::ofstream(path) << "  s3cret \nsecond line\n";
  BOOST_TEST(*ReadTokenFile(path) == "s3cret");

  std::ofstream(path, std::ios::trunc) << "\n";
  absl::StatusOr<std::string> empty = ReadTokenFile(path);
  BOOST_TEST(absl::IsFailedPrecondition(empty.status()));
  BOOST_TEST(std::string(empty.status().message()).find(path) !=
             std::string::npos);
  // An operator's empty file is an error, not a cue to make a new token.
  BOOST_TEST(absl::IsFailedPrecondition(LoadOrCreateAdminToken(path).status()));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton
