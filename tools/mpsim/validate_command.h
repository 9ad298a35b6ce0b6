// `mpsim validate`: predicted against measured, configuration by configuration
// (validate_args.h for the flags and the list; validation/ for the definitions).
//
// For each configuration: unless --report-only, or a measurement of the same flags exists in
// --runs (and no --remeasure), runs
//   <mpsim> profile -o <runs>/<name>.sqlite -- <mpsim> train <flags> --steps W+S --log
//   <runs>/<name>.log.jsonl
// (stdout to <runs>/<name>.stdout), measures it (profiler/analyze/run_measurement.h) and writes
// <runs>/<name>.json: the measurement, the flags and the per-rank peak memory of the measured
// iterations from the log; the databases are removed unless --keep-databases. A run that fails is
// reported as failed and the others go on. Then every measured configuration is simulated with
// every GPU: with --hw (microbenchmarks only), and with --hw plus the exact op tables learned from
// the other configurations' runs (leave one out; profiler/calibrate/op_points.h). It simulates the
// executor's implementation: no dropout (the model is simulated with dropout 0) and a cross
// entropy that keeps the bf16 logits (memory::LossMemory::kBf16Logits), not Megatron's fp32 ones.
// Writes <out>/report.md, <out>/results.csv and <out>/traces/<name>.json, each atomically.
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
