// What a profiled `mpsim train` run trained, read back from the databases it was profiled into:
// the run mark every rank emits (executor/core/run_mark.h, stored by the profiler as an NVTX mark
// in the rank's database), and whether the databases are an executor run at all.
//
// Failure: run_config_from_traces returns nullopt when no rank holds a run mark (a database
// recorded before the executor emitted it) and throws std::invalid_argument naming `source` for
// a mark that does not parse or ranks whose marks disagree.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "profiler/store/trace_store.h"
#include "simulator/spec/model_spec.pb.h"
#include "simulator/spec/parallel_config.pb.h"

namespace mpsim::calibration {

// The model and the parallel configuration of one run.
struct RunConfig {
  spec::ModelSpec model;
  spec::ParallelConfig parallel;
};

// Whether the traces are a profiled executor run: they hold the executor's `iteration/<N>`
// ranges (executor/core/range_names.h).
bool is_executor_run(const std::vector<profiler::RankTrace>& traces);

// The run mark of the traces (every rank's must agree); nullopt when none holds one.
std::optional<RunConfig> run_config_from_traces(const std::vector<profiler::RankTrace>& traces,
                                                const std::string& source);

}  // namespace mpsim::calibration
