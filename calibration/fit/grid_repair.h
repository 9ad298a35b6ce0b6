// Making a measured table a complete grid, as cost::GridTable requires (every combination of the
// keys' distinct values measured once), by dropping whole axis values: a measurement the bench
// skipped (a shape that did not fit in memory, a failed run) leaves a hole that would make the
// cost model refuse the whole table.
//
// Rule: while the grid is incomplete, drop the axis value with the most missing combinations
// (ties: the larger value, then the later key; the bench skips large shapes), with every point
// holding it. Deterministic; the points left are exactly those on the remaining axis values.
// The result may have a key with a single value or no points; the caller decides what to do
// with those (GridTable refuses both). Never throws for a table whose points have
// key_names_size() keys; points with another key count are dropped and reported.
#pragma once

#include <string>
#include <vector>

#include "simulator/spec/hardware_profile.pb.h"

namespace mpsim::calibration {

// Repairs `table` in place; returns what was dropped, e.g.
//   "m=16384 (3 of 36 combinations missing, 33 points dropped)".
std::vector<std::string> complete_grid(spec::CalibratedTable& table);

}  // namespace mpsim::calibration
