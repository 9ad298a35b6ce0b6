// What the fit reads from calibration_bench's standard output (one JSON line per measurement,
// calibration/bench/harness.h): the ranges it measured from its --points list, marked
// "listed": true. A list point that lies on a grid was measured there, unmarked, and is not among
// them. Lines that are not JSON objects are skipped.
//
// Failure: listed_ranges throws std::runtime_error naming `path` when it cannot be read.
#pragma once

#include <set>
#include <string>

namespace mpsim::calibration {

std::set<std::string> listed_ranges(const std::string& path);

}  // namespace mpsim::calibration
