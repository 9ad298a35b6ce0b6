// `mpsim calibrate`'s way of running the calibration bench under the profiler, over the one
// child-process helper (common/process/child_process.h): the bench's stdout to a file, its
// command line quoted for messages and provenance.
//
// run_with_stdout throws std::runtime_error when `stdout_path` cannot be created or fork fails;
// a program that cannot be executed exits 127 with a message on stderr. While it waits, SIGINT
// is ignored by the caller (the child, in the same process group, receives it and ends).
#pragma once

#include <string>
#include <vector>

#include "common/process/child_process.h"

namespace mpsim::cli {

using common::command_line;

// Runs `argv` (argv[0] a path) with its stdout sent to `stdout_path` (stderr is inherited);
// returns its exit status, 128 + the signal for a child killed by one.
inline int run_with_stdout(const std::vector<std::string>& argv, const std::string& stdout_path) {
  common::ChildSpec spec;
  spec.argv = argv;
  spec.stdout_path = stdout_path;
  spec.exec_failure = "mpsim calibrate: cannot run '" + argv.at(0) + "': ";
  return common::run_child(spec);
}

}  // namespace mpsim::cli
