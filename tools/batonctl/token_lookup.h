#ifndef BATON_TOOLS_BATONCTL_TOKEN_LOOKUP_H_
#define BATON_TOOLS_BATONCTL_TOKEN_LOOKUP_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace baton::ctl {

// An admin token and where batonctl found it.
struct FoundToken {
  std::string token;   // Empty if none was found.
  std::string source;  // "--token-file /etc/baton/token", for messages.
};

// The environment, injected so the lookup unit-tests without touching it.
using Getenv = std::function<const char*(const char*)>;

// Where batonctl finds the admin token; the first that is set wins:
//   1. --token-file FILE;
//   2. BATON_ADMIN_TOKEN, the token itself;
//   3. BATON_TOKEN_FILE, a file holding it;
//   4. DATA_DIR/admin-token, the token batond made on its first run (if that
//      file exists), DATA_DIR being --data-dir, else BATON_DATA_DIR, else
//      ./data, batond's default.
// None of them is no token (batond then says whether it needs one). A file
// named by 1 or 3 that is missing or empty, or one in 4 that cannot be
// read, is an error naming it.
absl::StatusOr<FoundToken> FindAdminToken(const std::string& token_file_flag,
                                          const std::string& data_dir_flag,
                                          const Getenv& getenv);

// What to tell an operator whose call needed a token batonctl did not find.
std::string NoTokenHint();

}  // namespace baton::ctl

#endif  // BATON_TOOLS_BATONCTL_TOKEN_LOOKUP_H_
