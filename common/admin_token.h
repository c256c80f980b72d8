#ifndef BATON_COMMON_ADMIN_TOKEN_H_
#define BATON_COMMON_ADMIN_TOKEN_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// The admin token as a file: the one an operator wrote, or the one batond
// makes for itself on a first run (in its data dir), so that the admin API
// and batonctl work with no setup while batond listens on loopback only.
namespace baton {

// 32 random bytes from OpenSSL, as 64 hex digits: a secret no one can guess
// (tokens, session ids). INTERNAL if OpenSSL has no randomness.
absl::StatusOr<std::string> RandomHexToken();

// Where batond keeps the token it made: DATA_DIR/admin-token.
std::string GeneratedAdminTokenPath(std::string_view data_dir);

// The token in `path`: its first line, without surrounding whitespace.
// NOT_FOUND if there is no such file, FAILED_PRECONDITION if it cannot be
// read or holds no token; every message names the path.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// The token in `path`, made first if there is none: 32 random bytes as hex,
// written with mode 0600 and synced (the file and its directory, which is
// created if missing), so that a restart keeps it and only this user reads
// it. Errors name the path.
absl::StatusOr<std::string> LoadOrCreateAdminToken(const std::string& path);

}  // namespace baton

#endif  // BATON_COMMON_ADMIN_TOKEN_H_
