// `mpsim simulate`: parses flags (simulate_args.h), loads the model and hardware, validates the
// parallel config, simulates one iteration and prints the result as a table or as JSON.
// Bad input throws spec::FlagError or spec::SpecError; anything else that fails throws another
// std::exception. The caller (main) turns these into a message and an exit status.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

// The exit status of a simulation that does not fit in GPU memory (without --ignore-memory).
inline constexpr int kDoesNotFit = 3;

// Returns the exit status: 0, or kDoesNotFit after printing the result when the peak memory
// exceeds the usable memory less the headroom (a line on `err` says by how much). Results go to
// `out`; the note naming a written trace goes to `out` after a table and to `err` with --format
// json, so stdout stays one JSON object.
int run_simulate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace mpsim::cli
