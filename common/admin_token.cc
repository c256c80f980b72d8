#include "common/admin_token.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace baton {
namespace {

absl::Status Failed(const std::string& what, const std::string& path) {
  return absl::FailedPreconditionError(
      fmt::format("cannot {} {}: {}", what, path, std::strerror(errno)));
}

std::filesystem::path DirectoryOf(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return dir.empty() ? "." : dir;
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Failed("open directory", dir);
  int synced = fsync(fd);
  close(fd);
  return synced == 0 ? absl::OkStatus() : Failed("sync directory", dir);
}

// Written beside `path` and renamed over it, so that a crash leaves either
// no token or a whole one.
absl::Status WriteTokenFile(const std::string& path, const std::string& token) {
  const std::string temporary = path + ".new";
  int fd = open(temporary.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC,
                S_IRUSR | S_IWUSR);
  if (fd < 0) return Failed("create", temporary);
  const std::string line = token + "\n";
  bool written = fchmod(fd, S_IRUSR | S_IWUSR) == 0 &&
                 write(fd, line.data(), line.size()) ==
                     static_cast<ssize_t>(line.size()) &&
                 fsync(fd) == 0;
  absl::Status status = written ? absl::OkStatus() : Failed("write", temporary);
  close(fd);
  if (!status.ok()) return status;
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    return Failed("rename into place", path);
  }
  return SyncDirectory(DirectoryOf(path).string());
}

}  // namespace

absl::StatusOr<std::string> RandomHexToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("OpenSSL has no randomness for a token");
  }
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

std::string GeneratedAdminTokenPath(std::string_view data_dir) {
  return (std::filesystem::path(data_dir) / "admin-token").string();
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(fmt::format("no token file {}", path));
  }
  std::ifstream in(path);
  if (!in) return Failed("read the token file", path);
  std::string line;
  std::getline(in, line);
  std::string token(absl::StripAsciiWhitespace(line));
  if (token.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("the token file {} is empty: its first line must be the "
                    "token",
                    path));
  }
  return token;
}

absl::StatusOr<std::string> LoadOrCreateAdminToken(const std::string& path) {
  absl::StatusOr<std::string> existing = ReadTokenFile(path);
  if (!absl::IsNotFound(existing.status())) return existing;
  std::error_code ec;
  const std::filesystem::path dir = DirectoryOf(path);
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        fmt::format("cannot create {} for the admin token: {}", dir.string(),
                    ec.message()));
  }
  absl::StatusOr<std::string> token = RandomHexToken();
  if (!token.ok()) return token.status();
  if (absl::Status s = WriteTokenFile(path, *token); !s.ok()) return s;
  return token;
}

}  // namespace baton
