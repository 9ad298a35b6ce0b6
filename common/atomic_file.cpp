// See atomic_file.h.
#include "common/atomic_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace mpsim::common {

namespace fs = std::filesystem;

void write_file_atomically(const std::string& path, std::string_view text) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string name = ".";  // built in steps: GCC 12 warns (-Wrestrict) falsely on "." + a + b
  name += target.filename().string();
  name += ".tmp-XXXXXX";
  std::string temp = (dir / name).string();
  const int fd = mkstemp(temp.data());
  if (fd < 0) {
    throw std::runtime_error("cannot create a temporary file in '" + dir.string() + "' for " +
                             path + ": " + std::strerror(errno));
  }
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw std::runtime_error("cannot write " + temp + ": " + std::strerror(error));
    }
    written += static_cast<std::size_t>(n);
  }
  fchmod(fd, 0644);  // mkstemp creates 0600; an output file is as readable as any other
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write " + temp + ": " + std::strerror(error));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot rename " + temp + " to " + path + ": " + std::strerror(error));
  }
}

ReplacingFile::ReplacingFile(std::string target)
    : target_(std::move(target)), temp_(target_ + ".tmp") {}

ReplacingFile::~ReplacingFile() {
  if (!committed_) discard();
}

void ReplacingFile::commit() {
  if (committed_) return;
  std::error_code error;
  fs::rename(temp_, target_, error);
  if (error) {
    discard();
    throw std::runtime_error(target_ + ": cannot rename " + temp_ + " to it: " + error.message());
  }
  committed_ = true;
}

void ReplacingFile::discard() noexcept {
  std::error_code ignored;  // an absent file is fine
  fs::remove(temp_, ignored);
}

}  // namespace mpsim::common
