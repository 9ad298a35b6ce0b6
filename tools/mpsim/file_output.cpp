// See file_output.h.
#include "tools/mpsim/file_output.h"

#include <filesystem>

#include "common/atomic_file.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::cli {

namespace fs = std::filesystem;

void write_atomically(const std::string& path, const std::string& text, const std::string& flag) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) {
    throw spec::FlagError(flag, "folder '" + dir.string() + "' of '" + path + "' does not exist");
  }
  common::write_file_atomically(path, text);
}

}  // namespace mpsim::cli
