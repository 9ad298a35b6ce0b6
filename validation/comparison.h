// One configuration, measured against predicted: what a row of the validation report holds.
// The measured side is a profiled executor run (profiler/analyze/run_measurement.h) with the
// executor's own peak-memory log; the predicted side is the simulator's detailed result
// (simulation::SimulationDetail) of the same model and layout, with every GPU simulated.
//
// Op kinds (the report's rows), defined once here, for both sides alike. Each op is put in one
// kind by the simulator graph's op of the same name (graph::op_name): GEMM (kGemm), attention
// (kAttention), norms and element-wise (kNorm, kElementwise, kLoss), optimizer (kOptimizer),
// TP communication (TP-group collectives), DP communication (DP-group collectives and the
// embedding all-reduce), PP send/recv (kSend). A measured communication range the graph has no
// op for goes by its prefix (comm/pp/ -> PP, e.g. the executor's separate receives; comm/tp/ ->
// TP; comm/dp/ -> DP); measured GPU time in no op range, or in comm/world/ (statistics), is
// "other" (the simulator has no such work). Over one iteration of one rank (the measured
// timeline iteration; the simulated iteration), with iteration time T:
//   busy(kind)   summed duration of the rank's ops (simulated) or kernels (measured) of the kind.
//                A measured NCCL kernel's time includes its wait for the other members.
//   idle         T minus the length of the union of all the rank's ops / kernels: nothing runs.
//   bubble       from the iteration's start to the end of the rank's last forward, backward or
//                recompute compute op, the time in which neither a compute op nor a TP or DP
//                collective runs: the rank waits for a pipeline neighbour (or, with one stage,
//                for the host). Pipeline transfers do not count as work here, so time spent in a
//                receive that waits for the neighbour is bubble on both sides.
// The rank compared: the measured rank with the most compute time (the kinds GEMM to optimizer
// plus other), i.e. the slowest; the same rank of the simulation.
//
// Waits inside communication: a measured NCCL kernel starts when its own rank launches it and
// spins until the other members arrive; the simulator starts a collective when its last member is
// ready and charges only the transfer. So each measured communication op is charged the shortest
// time any rank measured for the same op name (for a pipeline send, also its partner's receive,
// `comm/pp/recv/...`), taken off the end of its kernels; the rest of the kernel time is a wait
// and counts as bubble or idle, as on the simulated side.
//
// Errors: (predicted - measured) / measured, signed.
//
// Failure: compare_configuration throws std::invalid_argument naming the configuration when the
// measurement's ranks do not match the simulation's GPUs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "profiler/analyze/run_measurement.h"
#include "simulator/simulation/simulation.h"

namespace mpsim::validation {

enum class OpCategory : uint8_t {
  kGemm,
  kAttention,
  kNormElementwise,
  kOptimizer,
  kOther,
  kTpComm,
  kDpComm,
  kPpComm,
  kBubble,
  kIdle,
};
inline constexpr int kNumCategories = 10;
std::string_view to_string(OpCategory category);     // "GEMM", "attention", ...
std::string_view category_key(OpCategory category);  // "gemm", "attention", ... (CSV columns)

using CategorySeconds = std::array<double, kNumCategories>;

// The kind of a graph op (see the file comment); never kOther, kBubble or kIdle.
OpCategory category_of(const graph::Op& op);

// One op or kernel of one rank's iteration, seconds from the iteration's start.
struct TimedWork {
  double start_s = 0;
  double end_s = 0;
  OpCategory category = OpCategory::kOther;
  bool pipeline_compute = false;  // a compute op of the forward, backward or recompute pass
};

// busy, bubble and idle over one iteration of length `iteration_s` (file comment).
CategorySeconds category_seconds(std::vector<TimedWork> work, double iteration_s);

// The index into detail.graph.ranks of global rank `global_rank`; -1 when it is not simulated.
int32_t graph_rank_of(const simulation::SimulationDetail& detail, int32_t global_rank);

// The simulated rank `global_rank`'s work in `detail`.
std::vector<TimedWork> simulated_work(const simulation::SimulationDetail& detail,
                                      int32_t global_rank);

// The measured timeline of `rank` (one of `run`'s), each kernel put in the kind of the graph op
// of its range's name on that rank (names the graph lacks: by their prefix, else kOther), and
// each communication op's kernels cut to its transfer (file comment).
std::vector<TimedWork> measured_work(const profiler::RunMeasurement& run,
                                     const profiler::RankRun& rank,
                                     const simulation::SimulationDetail& detail);

struct ConfigComparison {
  std::string name;
  std::string model;
  spec::ParallelConfig config;
  std::string flags;  // the `mpsim train` flags of the run
  double measured_iteration_s = 0;
  double predicted_iteration_s = 0;
  std::optional<double> predicted_loo_iteration_s;  // leave-one-out profile, where given
  int32_t compared_rank = 0;
  CategorySeconds measured{};
  CategorySeconds predicted{};
  std::vector<int64_t> measured_peak_memory_bytes;   // per rank; empty when the log lacks them
  std::vector<int64_t> predicted_peak_memory_bytes;  // per rank
  double measured_iteration_spread = 0;  // (max - min) / median over measured iterations
  std::string gpu;
  std::string date;
  double iteration_error() const;
  std::optional<double> loo_iteration_error() const;
  // Max over ranks, measured and predicted; error of the maxima.
  int64_t measured_peak() const;
  int64_t predicted_peak() const;
  std::optional<double> memory_error() const;
};

// `detail`: the simulation of the configuration with every GPU simulated.
ConfigComparison compare_configuration(const std::string& name, const std::string& flags,
                                       const profiler::RunMeasurement& measured,
                                       const std::vector<int64_t>& measured_peak_memory_bytes,
                                       const report::SimulationResult& predicted,
                                       const simulation::SimulationDetail& detail);

double relative_error(double predicted, double measured);

}  // namespace mpsim::validation
