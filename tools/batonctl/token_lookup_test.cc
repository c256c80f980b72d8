#define BOOST_TEST_MODULE batonctl_unit
#include "tools/batonctl/token_lookup.h"

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/admin_token.h"
#include "common/child_process.h"

namespace baton::ctl {
namespace {

struct Environment {
  std::map<std::string, std::string> vars;
  Getenv getenv() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

BOOST_AUTO_TEST_SUITE(token_lookup)

BOOST_AUTO_TEST_CASE(the_flag_then_the_environment_then_the_data_dir) {
  TempDir dir;
  const std::string flag_file = (dir.path() / "flag").string();
  const std::string env_file = (dir.path() / "env").string();
  std::ofstream(flag_file) << "from-flag\n";
  std::ofstream(env_file) << "from-env-file\n";
  const std::string data = (dir.path() / "data").string();
  const std::string made =
      *LoadOrCreateAdminToken(GeneratedAdminTokenPath(data));

  Environment env{{{"BATON_ADMIN_TOKEN", "from-env"},
                   {"BATON_TOKEN_FILE", env_file},
                   {"BATON_DATA_DIR", data}}};
  BOOST_TEST(FindAdminToken(flag_file, "", env.getenv())->token == "from-flag");
  BOOST_TEST(FindAdminToken("", "", env.getenv())->token == "from-env");
  env.vars.erase("BATON_ADMIN_TOKEN");
  BOOST_TEST(FindAdminToken("", "", env.getenv())->token == "from-env-file");
  env.vars.erase("BATON_TOKEN_FILE");
  absl::StatusOr<FoundToken> generated = FindAdminToken("", "", env.getenv());
  BOOST_TEST(generated->token == made);
  BOOST_TEST(generated->source == GeneratedAdminTokenPath(data));
  // --data-dir beats BATON_DATA_DIR.
  BOOST_TEST(FindAdminToken("", (dir.path() / "none").string(), env.getenv())
                 ->token.empty());
}

BOOST_AUTO_TEST_CASE(a_named_file_that_is_missing_is_an_error_a_data_dir_not) {
  TempDir dir;
  const std::string missing = (dir.path() / "missing").string();
  Environment env;
  absl::StatusOr<FoundToken> flag = FindAdminToken(missing, "", env.getenv());
  BOOST_TEST(!flag.ok());
  BOOST_TEST(std::string(flag.status().message()).find("--token-file") !=
             std::string::npos);
  env.vars["BATON_TOKEN_FILE"] = missing;
  BOOST_TEST(!FindAdminToken("", "", env.getenv()).ok());
  env.vars.clear();
  absl::StatusOr<FoundToken> none =
      FindAdminToken("", dir.path().string(), env.getenv());
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->token.empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace baton::ctl
