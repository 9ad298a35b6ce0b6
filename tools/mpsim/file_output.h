// Output files of the subcommands, written so that nothing already there is lost or left half
// written: common::write_file_atomically (a synced temporary file beside the target, renamed over
// it), after checking the folder so that a missing one is reported against the flag.
//
// write_atomically throws spec::FlagError naming `flag` (the flag that named the path, e.g. "-o")
// when the target's folder does not exist, and std::runtime_error naming the file when writing
// fails; the temporary file is removed then and the target is untouched.
#pragma once

#include <string>

namespace mpsim::cli {

void write_atomically(const std::string& path, const std::string& text, const std::string& flag);

}  // namespace mpsim::cli
