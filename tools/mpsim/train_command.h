// `mpsim train`: parses flags (train_args.h), loads the model, validates the parallel config
// against it, finds the corpus, then runs the reference trainer with one process per GPU:
//   * under our launcher or a Slurm step (executor/core/launch.h), as the rank the environment
//     names; the world size must equal --gpus;
//   * started plainly with --gpus 1, in this process as rank 0 of 1;
//   * started plainly with --gpus N > 1, by starting N copies of this program (launch_local_ranks)
//     and returning the first failing rank's status.
// A relative --data path is looked up under $MPSIM_DATA_DIR, the current directory, then the
// source tree mpsim was built from, as model names are.
// Bad input throws spec::FlagError or spec::SpecError; a bad launch environment throws
// std::invalid_argument; the caller (main) turns these into a message and an exit status.
// Without the CUDA executor (nvcc not found at build time) it says so and returns 1.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

// Returns the exit status: 0 when every rank finished its steps.
int run_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// `path` (as typed after --data) resolved to an existing file, absolute; throws spec::FlagError
// naming --data and the folders searched when there is none.
std::string resolve_data_path(const std::string& path);

}  // namespace mpsim::cli
