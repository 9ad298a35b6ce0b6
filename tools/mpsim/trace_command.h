// `mpsim trace <run.sqlite> -o out.json [--rank R]`: writes a Chrome trace of a profiled run in
// Kineto's layout (profiler/analyze/kineto_export.h), every rank merged or only rank R.
//
// Bad input throws spec::FlagError or spec::SpecError as `mpsim stats` does (see
// stats_command.h); main prints it after "mpsim trace: " and exits 2. A trace that cannot be
// written throws std::runtime_error (exit 1).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

int run_trace(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace mpsim::cli
