// Output files of the subcommands, written so that nothing already there is lost or left half
// written: the text goes to a temporary file beside the target, is synced, and renamed over it.
//
// write_atomically throws spec::FlagError naming `flag` (the flag that named the path, e.g. "-o")
// when the target's folder does not exist, and std::runtime_error naming the file when writing
// fails; the temporary file is removed then and the target is untouched.
#pragma once

#include <string>

namespace mpsim::cli {

void write_atomically(const std::string& path, const std::string& text, const std::string& flag);

}  // namespace mpsim::cli
