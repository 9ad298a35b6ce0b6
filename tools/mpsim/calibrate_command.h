// `mpsim calibrate`: fits calibration measurements into a hardware profile
// (calibration/fit/calibrate_profile.h) and writes it as protobuf text with a header comment
// saying what it is, when and from which databases it was made. A --from database holding the
// executor's `iteration/<N>` ranges (a profiled `mpsim train` run, given as one of its per-rank
// files or as the -o stem it was recorded with) is not fitted but learned from: its op times
// after the first iteration (profiler/analyze/run_measurement.h), joined by name with the graph
// of the configuration its run mark states, or for an older database its command line
// (calibration/runs/run_op_tables.h), become exact-shape tables
// (calibration/fit/op_points.h) merged into the profile. Without --from it first records
// the measurements on this machine: `<mpsim> profile -o <tmp>/calib.sqlite --merge --
// <bench> --gemm-m M --gemm-n N --gemm-k K --points <tmp>/points.txt [--gpus N]` (or
// `<bench> --quick`), its stdout kept in <tmp>/calib.jsonl; points.txt lists the models' exact
// GEMM, attention and collective shapes on the local GPUs (--gpus, else the entries of
// $CUDA_VISIBLE_DEVICES, else the /dev/nvidia<N> devices; calibration/fit/model_points.h),
// whose measurements the fit writes into the .exact tables and keeps off the grids
// (CalibrationInfo::listed_ranges). Everything is found from the mpsim binary or a flag, so that a
// build tree carried to a GPU machine works from any directory:
//   the bench      --bench, else <mpsim dir>/../../calibration/bench/calibration_bench (the build
//                  tree), else <mpsim dir>/calibration_bench (installed side by side);
//   the injection  `mpsim profile`'s rule: $MPSIM_INJECT_LIB, else libmpsim_inject.so in
//                  <mpsim dir>/../../profiler/cupti, <mpsim dir> or <mpsim dir>/../lib;
//   the models     --models, else the first models/ folder of $MPSIM_DATA_DIR, the current
//                  directory, <mpsim dir>/../../../models (a build tree inside the checkout) and
//                  the source tree mpsim was built from (the roots spec names are looked up in,
//                  spec_loader.h, plus the checkout above the binary);
//   the base       --base, a spec name or path (spec_loader.h).
// The GEMM axes and the point list are derived from the models' graphs
// (calibration/fit/model_gemm_grid.h, model_points.h) before anything runs on the GPUs; the
// grid, the number of points and the models and shapes left out are printed.
//
// The profile is written to a temporary file beside -o and renamed over it, so -o is never left
// half written. Errors: a bad flag, a missing or unreadable database (named), a base profile that
// does not load, a --bench that is not a file, no models folder, a model that does not load:
// spec::FlagError / spec::SpecError (exit 2); a missing bench, a failed measurement, an
// unwritable -o: std::runtime_error naming the file (exit 1).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

int run_calibrate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The calibration bench for the mpsim binary at `self`; throws std::runtime_error naming the
// paths looked at when it is absent.
std::string find_calibration_bench(const std::string& self);
// --bench's path, absolute; throws spec::FlagError when it is not a file.
std::string checked_bench(const std::string& path);
// The models folder for the mpsim binary at `self` (the order above); throws spec::FlagError
// naming the places looked at when none exists.
std::string find_models_folder(const std::string& self);

}  // namespace mpsim::cli
