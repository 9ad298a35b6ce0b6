// Running another program from a subcommand (`mpsim calibrate` runs the calibration bench under
// the profiler, `mpsim validate` runs the executor under it): one place for fork/exec, waiting,
// and quoting a command line for messages and provenance.
//
// run_with_stdout throws std::runtime_error when `stdout_path` cannot be created or fork fails;
// a program that cannot be executed exits 127 with a message on stderr. While it waits, SIGINT
// is ignored by the caller (the child, in the same process group, receives it and ends).
#pragma once

#include <string>
#include <vector>

namespace mpsim::cli {

// The words as a shell would need them (words with spaces or quotes single-quoted).
std::string command_line(const std::vector<std::string>& words);

// Runs `argv` (argv[0] a path) with its stdout sent to `stdout_path` (stderr is inherited);
// returns its exit status, 128 + the signal for a child killed by one.
int run_with_stdout(const std::vector<std::string>& argv, const std::string& stdout_path);

}  // namespace mpsim::cli
