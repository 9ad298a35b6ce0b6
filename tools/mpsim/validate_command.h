// `mpsim validate`: predicted against measured, configuration by configuration
// (validate_args.h for the flags and the list; validation/ for the definitions).
//
// The command parses the flags and the list (validate_args.h) and hands them to validation's
// pipeline (validation/validation_pipeline.h: measuring, leave-one-out prediction, comparison,
// the report), supplying what a command does: it runs
//   <mpsim> profile -o <runs>/<name>.sqlite -- <mpsim> train <flags> --steps W+S --log
//   <runs>/<name>.log.jsonl
// (stdout to <runs>/<name>.stdout; the command line is printed to stderr first), writes every
// file atomically (file_output.h) and prints the pipeline's notes to stderr. It then prints the
// iteration-time MAPE (and the leave-one-out MAPE) and the report's path to `out`, and each
// configuration not reported to stderr.
//
// Exit status: 0 when every selected configuration was reported; 1 when a run failed or a
// measurement is missing under --report-only (the report still covers the others); 2 for bad flags
// or a bad list (spec::FlagError / spec::SpecError naming the flag or file:line).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace mpsim::cli {

int run_validate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace mpsim::cli
