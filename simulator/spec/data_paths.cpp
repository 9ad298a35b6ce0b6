// The data roots and the lookup under them (data_paths.h); resolve_spec_path (spec_loader.h),
// which resolves model and profile names under these roots.
#include "simulator/spec/data_paths.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <system_error>

#include "simulator/spec/spec_loader.h"

namespace mpsim::spec {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kExtension = ".textproto";

bool is_path(const std::string& name) {
  return name.find('/') != std::string::npos ||
         (name.size() > kExtension.size() && name.ends_with(kExtension));
}

// Names (file stems) available in the first root that has the folder, for the error message.
std::string available_names(const std::vector<fs::path>& roots, const std::string& folder) {
  for (const fs::path& root : roots) {
    std::error_code ec;
    const fs::path dir = root.empty() ? fs::path(folder) : root / folder;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == kExtension) names.push_back(entry.path().stem().string());
    }
    std::sort(names.begin(), names.end());
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    if (!out.empty()) return out;
  }
  return "none found";
}

}  // namespace

std::vector<fs::path> data_roots() {
  std::vector<fs::path> roots;
  if (const char* dir = std::getenv("MPSIM_DATA_DIR"); dir != nullptr && *dir != '\0') {
    roots.emplace_back(dir);
  }
  roots.emplace_back("");  // the current directory, kept relative so messages stay short
#ifdef MPSIM_SOURCE_DIR
  roots.emplace_back(MPSIM_SOURCE_DIR);
#endif
  return roots;
}

std::vector<fs::path> data_candidates(const fs::path& relative) {
  std::vector<fs::path> candidates;
  for (const fs::path& root : data_roots()) {
    candidates.push_back(root.empty() ? relative : root / relative);
  }
  return candidates;
}

std::optional<fs::path> find_data_file(const fs::path& relative) {
  for (const fs::path& candidate : data_candidates(relative)) {
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

std::string looked_for(const std::vector<fs::path>& candidates) {
  std::string looked;
  for (const fs::path& candidate : candidates) {
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  }
  return looked;
}

std::string resolve_spec_path(const std::string& name_or_path, const std::string& folder) {
  if (is_path(name_or_path)) {
    std::error_code ec;
    if (!fs::is_regular_file(name_or_path, ec)) {
      throw SpecError(name_or_path, 0, "", "no such file; expected a readable .textproto file");
    }
    return name_or_path;
  }
  const fs::path relative = fs::path(folder) / (name_or_path + std::string(kExtension));
  if (const std::optional<fs::path> found = find_data_file(relative)) return found->string();
  throw SpecError(name_or_path, 0, "",
                  "no such " + folder + " entry (looked for " +
                      looked_for(data_candidates(relative)) +
                      "); expected one of: " + available_names(data_roots(), folder));
}

}  // namespace mpsim::spec
