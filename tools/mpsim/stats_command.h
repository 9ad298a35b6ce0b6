// `mpsim stats <run.sqlite> [--rank R]`: prints the summaries of profiler/analyze/trace_stats.h
// (kernels, NVTX ranges with their kernels' GPU time, communication vs computation, idle) for
// every rank in the database, or for rank R.
//
// Bad input throws spec::FlagError (flags, an unknown rank) or spec::SpecError
// (`<path>: <what>`: a missing file, not a trace store, an unknown schema version); main prints
// it after "mpsim stats: " and exits 2.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "profiler/store/trace_store.h"

namespace mpsim::cli {

int run_stats(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Reads every rank of the trace store at `path`, or only `rank`. Shared with `mpsim trace`.
// Throws spec::SpecError for a file that is missing or that TraceReader refuses, and
// spec::FlagError("--rank") for a rank the database does not hold.
std::vector<profiler::RankTrace> load_ranks(const std::string& path,
                                            const std::optional<int32_t>& rank);

}  // namespace mpsim::cli
