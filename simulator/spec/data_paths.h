// Where mpsim finds its data files (model specs, hardware profiles, corpora, the models folder of
// a calibration): one list of roots searched in order, for every caller that resolves a path
// relative to "the data", so that the spec loader and the `mpsim` commands agree.
//
// The roots, in order: $MPSIM_DATA_DIR when it is set and not empty; the current directory (the
// empty path, so that results stay relative and messages short); the source tree mpsim was built
// from (MPSIM_SOURCE_DIR, defined by the top CMakeLists.txt), where it is defined. Nothing here
// throws for a missing file: callers say which flag or spec the path came from and throw their own
// error, listing the candidates tried (looked_for).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mpsim::spec {

// The roots above, in order.
std::vector<std::filesystem::path> data_roots();

// `relative` under each root, in the order of data_roots(): `root / relative`, and `relative`
// itself for the current directory.
std::vector<std::filesystem::path> data_candidates(const std::filesystem::path& relative);

// The first of data_candidates(relative) that is a regular file, or nullopt.
std::optional<std::filesystem::path> find_data_file(const std::filesystem::path& relative);

// The candidates, as a message lists them: "a/models/x.textproto, models/x.textproto, ...".
std::string looked_for(const std::vector<std::filesystem::path>& candidates);

}  // namespace mpsim::spec
