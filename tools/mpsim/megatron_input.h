// --megatron-args for `mpsim simulate`: the argument text (or the file it names) read with
// spec::parse_megatron_args, validated against the hardware, and what was not modelled, had no
// effect or was unknown said on the error stream, one line per list.
//
// Failure: spec::SpecError for a file that cannot be read, for a bad argument (naming the
// Megatron flag) and for a layout the model or hardware refuses (the field named by the Megatron
// flag it came from).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "simulator/spec/hardware.h"
#include "simulator/spec/megatron_args.h"

namespace mpsim::cli {

// `value` is the flag's value: arguments (it holds "--") or the path of a file holding them.
// `gpus`: the GPU count, 0 to take it from torchrun's flags among the arguments. The result's
// config is validated.
spec::MegatronRun read_megatron_input(const std::string& value, int64_t gpus,
                                      const spec::Hardware& hardware, std::ostream& err,
                                      const std::string& command);

}  // namespace mpsim::cli
