#include "tools/batonctl/token_lookup.h"

#include "common/admin_token.h"

namespace baton::ctl {
namespace {

absl::StatusOr<FoundToken> FromFile(const std::string& path,
                                    std::string source) {
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  if (!token.ok()) {
    return absl::Status(absl::StatusCode::kFailedPrecondition,
                        source + ": " + std::string(token.status().message()));
  }
  return FoundToken{*token, std::move(source)};
}

}  // namespace

absl::StatusOr<FoundToken> FindAdminToken(const std::string& token_file_flag,
                                          const std::string& data_dir_flag,
                                          const Getenv& getenv) {
  if (!token_file_flag.empty()) {
    return FromFile(token_file_flag, "--token-file " + token_file_flag);
  }
  if (const char* token = getenv("BATON_ADMIN_TOKEN");
      token != nullptr && *token != '\0') {
    return FoundToken{token, "BATON_ADMIN_TOKEN"};
  }
  if (const char* file = getenv("BATON_TOKEN_FILE");
      file != nullptr && *file != '\0') {
    return FromFile(file, std::string("BATON_TOKEN_FILE=") + file);
  }
  std::string data_dir = data_dir_flag;
  if (data_dir.empty()) {
    const char* env = getenv("BATON_DATA_DIR");
    data_dir = env != nullptr && *env != '\0' ? env : "./data";
  }
  const std::string path = GeneratedAdminTokenPath(data_dir);
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  if (absl::IsNotFound(token.status())) return FoundToken{};
  if (!token.ok()) return token.status();
  return FoundToken{*token, path};
}

std::string NoTokenHint() {
  return "batonctl found no admin token: give --token-file, set "
         "BATON_ADMIN_TOKEN or BATON_TOKEN_FILE, or point --data-dir at "
         "batond's data dir, where a batond on loopback keeps its own";
}

}  // namespace baton::ctl
