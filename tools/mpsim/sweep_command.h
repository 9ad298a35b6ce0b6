// `mpsim sweep`: parses flags (sweep_args.h), loads the model and hardware, enumerates every
// valid parallel configuration (sweep::enumerate_configs), simulates and ranks them
// (sweep::run_sweep) and prints the top K as a table, or every fitting row as JSON or CSV; with
// --out also writes an SQLite database, with --trace-best a Chrome trace of the winner.
// stdout holds only the requested output; the progress bar (when stderr is a terminal), the
// summary line and notes of written files go to stderr.
// Bad input throws spec::FlagError or spec::SpecError; anything else that fails (an unwritable
// output) throws another std::exception. The caller (main) turns these into a message and an
// exit status.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

// Returns the exit status (0).
int run_sweep(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace mpsim::cli
