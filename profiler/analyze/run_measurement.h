// What a profiled run of the executor measured (`mpsim profile -o run.sqlite -- mpsim train ...`),
// per rank and per op, in the simulator's op names: the input of `mpsim validate` and of
// `mpsim calibrate --from run.sqlite`. Defined once, here:
//
//   iteration        an `iteration/<N>` NVTX range of the executor (executor/core/range_names.h),
//                    N from 1. Its kernels: those the NVTX -> kernel projection
//                    (nvtx_projection.h) gives the range.
//   measured         the iterations after the first `warmup` ones (warm-up excludes cuBLAS
//                    heuristics, NCCL connection set-up and allocator growth).
//   iteration time   of one measured iteration: the longest, over ranks, of its range's wall time
//                    (the executor closes the range after synchronising its streams, so the range
//                    covers the iteration's GPU work); of the run: the median over measured
//                    iterations.
//   op range         a range whose text graph::parse_op_name accepts, or any "comm/..." range
//                    (the executor's communication outside the grammar: pipeline receives
//                    `comm/pp/recv/...`, `comm/tp/sequence_parallel_grads`, `comm/world/...`).
//   op time          of one op name on one rank: the summed issue slots (issue_slots.h: kernel
//                    time plus the launch gap before it, over all the rank's kernels) of the
//                    kernels whose innermost enclosing op range has that name, per measured
//                    iteration (total over measured iterations / their count), as the calibration
//                    tables count time. An NCCL kernel's time includes its wait for the other
//                    members of its group.
//   unattributed     per measured iteration, the issue slots of the iteration's kernels in no op
//   range
//                    (gradient zeroing, the gradient norm, the loss statistics).
//   timeline         the kernels of one measured iteration (the one whose iteration time is the
//                    median), issue slot start (kernel start - launch gap) and kernel end in
//                    seconds from the iteration range's start, each with
//                    its op (an index into op_names, -1 for none), its stream and whether it is
//                    NCCL.
//
// A process the profiler found no rank variable for (rank source "pid": a one-GPU run started
// without a launcher) is rank 0; several such processes in one run are refused.
//
// Failure: measure_run throws std::invalid_argument naming the rank for a rank with no iteration
// range, fewer iterations than warmup + 1, or ranks that measured different iterations. The JSON
// reader throws std::invalid_argument naming `source` and the missing or ill-typed field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "profiler/store/trace_store.h"

namespace mpsim::profiler {

struct MeasuredKernel {
  double start_s = 0;  // the issue slot's start, from the iteration range's start
  double end_s = 0;
  int32_t op = -1;  // index into RankRun::op_names; -1: in no op range
  uint32_t stream = 0;
  bool nccl = false;
};

struct RankRun {
  int32_t rank = 0;
  std::vector<int64_t> steps;         // measured iterations, in order
  std::vector<double> iteration_s;    // their range wall times on this rank
  std::vector<std::string> op_names;  // ops that ran kernels in the measured iterations, sorted
  std::vector<double> op_seconds;     // per op name: GPU seconds per iteration
  double unattributed_s = 0;          // per iteration
  int64_t timeline_step = 0;
  double timeline_iteration_s = 0;  // the timeline iteration's range wall time on this rank
  std::vector<MeasuredKernel> timeline;
};

struct RunMeasurement {
  std::string command;  // the profiled command line (rank 0)
  std::string gpu;      // "2 x NVIDIA H200": GPU names with counts, over ranks
  std::string hostname;
  std::string date;  // UTC date of the run's start, YYYY-MM-DD
  int64_t warmup = 0;
  std::vector<double> iteration_s;  // per measured iteration: the longest over ranks
  std::vector<RankRun> ranks;       // by rank
  double median_iteration_s() const;
};

// `traces`: one RankTrace per rank of the run (any order).
RunMeasurement measure_run(const std::vector<RankTrace>& traces, int64_t warmup);

// The databases of a run given as any one of its per-rank databases `<stem>.rank<R>.sqlite`, as
// the stem `<stem>.sqlite` that `mpsim profile -o` was given (R: the rank, or the pid of a process
// without a rank variable, as a one-GPU run is; profiler/store rank_path()), or as a merged
// database; sorted; empty when there is none.
std::vector<std::string> run_database_files(const std::string& path);

// Reads them all (throws std::invalid_argument naming `path` when there is none).
std::vector<RankTrace> read_run_traces(const std::string& path);

nlohmann::json to_json(const RunMeasurement& run);
RunMeasurement run_measurement_from_json(const nlohmann::json& json, const std::string& source);

}  // namespace mpsim::profiler
