// Flags of `mpsim profile [-o run.sqlite] [--merge] -- <command...>`, parsed by a pure function.
// parse_profile_args() throws spec::FlagError for an unknown flag, a missing `--` or command, or
// --merge with an -o pattern holding %r/%p (the merged file needs one plain name).
#pragma once

#include <string>
#include <vector>

namespace mpsim::cli {

struct ProfileRequest {
  bool help = false;
  std::string output = "mpsim_profile.sqlite";  // -o: per-rank pattern (profiler::rank_path)
  bool merge = false;                           // --merge: combine rank files into `output`
  std::vector<std::string> command;             // the words after `--`
};

ProfileRequest parse_profile_args(const std::vector<std::string>& args);
std::string profile_help();

}  // namespace mpsim::cli
