// `mpsim calibrate`: fits calibration measurements into a hardware profile
// (profiler/calibrate/calibrate_profile.h) and writes it as protobuf text with a header comment
// saying what it is, when and from which databases it was made. Without --from it first records
// the measurements on this machine: `<mpsim> profile -o <tmp>/calib.sqlite --merge --
// <bench> [--quick]`, with the bench found next to the mpsim binary's build tree
// (<mpsim dir>/../../profiler/bench/calibration_bench), its stdout kept in <tmp>/calib.jsonl.
//
// The profile is written to a temporary file beside -o and renamed over it, so -o is never left
// half written. Errors: a bad flag, a missing or unreadable database (named), a base profile that
// does not load: spec::FlagError / spec::SpecError (exit 2); a missing bench, a failed
// measurement, an unwritable -o: std::runtime_error naming the file (exit 1).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

int run_calibrate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The calibration bench for the mpsim binary at `self`; throws std::runtime_error naming the
// path looked at when it is absent.
std::string find_calibration_bench(const std::string& self);

}  // namespace mpsim::cli
