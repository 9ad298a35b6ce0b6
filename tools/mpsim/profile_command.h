// `mpsim profile`: runs a command under the CUPTI injection library and optionally merges the
// per-rank databases it leaves. The command inherits stdin/stdout/stderr and an environment with
// CUDA_INJECTION64_PATH and NVTX_INJECTION64_PATH naming libmpsim_inject.so (found next to the
// build's mpsim binary, ../../profiler/cupti/, or at $MPSIM_INJECT_LIB) and MPSIM_PROFILE_OUTPUT
// set to the -o pattern; launchers it starts (torchrun, srun, mpirun) pass these on, so every rank
// writes its own database. Returns the command's exit status (128 + signal when killed); a
// missing library or a failed merge throws std::runtime_error (main: exit 1).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

int run_profile(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The injection library for the mpsim binary at `self` (a path like /proc/self/exe resolves to);
// `override_path` (MPSIM_INJECT_LIB) wins when not empty. Throws when no file is found.
std::string find_inject_library(const std::string& self, const std::string& override_path);

// The rank databases an -o pattern produced, modified at or after `since` (seconds since the
// epoch), sorted.
std::vector<std::string> rank_databases(const std::string& pattern, long long since);

}  // namespace mpsim::cli
