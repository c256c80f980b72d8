#include "common/admin_token.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace baton {
namespace {

// `error` is the errno of the call that failed, taken before anything else
// could change it.
absl::Status Failed(const std::string& what, const std::string& path,
                    int error) {
  return absl::FailedPreconditionError(
      fmt::format("cannot {} {}: {}", what, path, std::strerror(error)));
}

std::filesystem::path DirectoryOf(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return dir.empty() ? "." : dir;
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Failed("open directory", dir, errno);
  int synced = fsync(fd);
  int error = errno;
  close(fd);
  return synced == 0 ? absl::OkStatus() : Failed("sync directory", dir, error);
}

// The token in the open file `fd` (`path`): its first line, stripped.
absl::StatusOr<std::string> ReadToken(int fd, const std::string& path) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while (text.size() < 64 * 1024 &&
         (n = read(fd, buffer, sizeof(buffer))) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      return Failed("read the token file", path, errno);
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  const std::string line = text.substr(0, text.find('\n'));
  std::string token(absl::StripAsciiWhitespace(line));
  if (token.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("the token file {} is empty: its first line must be the "
                    "token",
                    path));
  }
  return token;
}

// Written beside `path` and renamed over it, so that a crash leaves either
// no token or a whole one. The temporary is made afresh (never followed
// through a link someone left there) and only this user may read it.
absl::Status WriteTokenFile(const std::string& path, const std::string& token) {
  const std::string temporary = path + ".new";
  unlink(temporary.c_str());
  int fd = open(temporary.c_str(),
                O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                S_IRUSR | S_IWUSR);
  if (fd < 0) return Failed("create", temporary, errno);
  const std::string line = token + "\n";
  absl::Status status;
  for (size_t done = 0; status.ok() && done < line.size();) {
    ssize_t n = write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = Failed("write", temporary, n < 0 ? errno : ENOSPC);
    } else {
      done += static_cast<size_t>(n);
    }
  }
  if (status.ok() && fsync(fd) != 0) status = Failed("sync", temporary, errno);
  close(fd);
  if (status.ok() && rename(temporary.c_str(), path.c_str()) != 0) {
    status = Failed("rename into place", path, errno);
  }
  if (!status.ok()) {
    unlink(temporary.c_str());
    return status;
  }
  return SyncDirectory(DirectoryOf(path).string());
}

// The token batond made before, if there is one; it must still be a file
// of this user's that nobody else can read or change.
absl::StatusOr<std::string> ReadOwnTokenFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(fmt::format("no token file {}", path));
    }
    return Failed("open the token file", path, errno);
  }
  struct stat st;
  absl::StatusOr<std::string> token;
  if (fstat(fd, &st) != 0) {
    token = Failed("stat", path, errno);
  } else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
             (st.st_mode & 077) != 0) {
    token = absl::FailedPreconditionError(fmt::format(
        "{} must be a file of this user's that no one else may read "
        "(chmod 600 it), or be deleted so that batond makes a new token",
        path));
  } else {
    token = ReadToken(fd, path);
  }
  close(fd);
  return token;
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
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(fmt::format("no token file {}", path));
    }
    return Failed("read the token file", path, errno);
  }
  absl::StatusOr<std::string> token = ReadToken(fd, path);
  close(fd);
  return token;
}

absl::StatusOr<std::string> LoadOrCreateAdminToken(const std::string& path) {
  const std::filesystem::path dir = DirectoryOf(path);
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec) && !ec) {
    // A data dir batond makes is its own alone.
    std::filesystem::create_directories(dir, ec);
    if (!ec) {
      std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
    }
  }
  if (ec) {
    return absl::FailedPreconditionError(
        fmt::format("cannot create {} for the admin token: {}", dir.string(),
                    ec.message()));
  }
  absl::StatusOr<std::string> existing = ReadOwnTokenFile(path);
  if (!absl::IsNotFound(existing.status())) return existing;
  absl::StatusOr<std::string> token = RandomHexToken();
  if (!token.ok()) return token.status();
  if (absl::Status s = WriteTokenFile(path, *token); !s.ok()) return s;
  return token;
}

}  // namespace baton
