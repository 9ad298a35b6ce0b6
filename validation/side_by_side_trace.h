// A Chrome trace (Perfetto, chrome://tracing) with the measured and the simulated timelines of one
// rank of one configuration side by side, aligned at the iteration's start (time 0 on both):
// process 0 "measured rank R" with one track per CUDA stream (kernels, named by their op, or
// "(no op)"), process 1 "simulated rank R" with one track per simulated stream (ops). Every event's
// category is its op kind (comparison.h), so both sides can be filtered alike. Metadata: the
// configuration, the iteration times and the per-kind seconds of both sides.
//
// Failure: as common::ChromeTraceWriter (std::runtime_error naming the path; no half-written file).
#pragma once

#include <string>

#include "validation/comparison.h"

namespace mpsim::validation {

void write_side_by_side_trace(const std::string& path, const ConfigComparison& comparison,
                              const profiler::RunMeasurement& measured,
                              const simulation::SimulationDetail& detail);

}  // namespace mpsim::validation
