#include "validation/comparison.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include "common/intervals.h"
#include "simulator/graph/op_name.h"

namespace mpsim::validation {
namespace {

using common::Interval;

// The union of `spans` clipped to [0, limit].
std::vector<Interval> clipped_union(std::vector<Interval> spans, double limit) {
  return common::merged(common::clipped(std::move(spans), 0.0, limit));
}

bool is_work(OpCategory c) {
  return c != OpCategory::kPpComm && c != OpCategory::kBubble && c != OpCategory::kIdle;
}

bool is_compute_kind(OpCategory c) {
  return c == OpCategory::kGemm || c == OpCategory::kAttention ||
         c == OpCategory::kNormElementwise || c == OpCategory::kOptimizer ||
         c == OpCategory::kOther;
}

bool pipeline_pass(graph::Pass pass) {
  return pass == graph::Pass::kForward || pass == graph::Pass::kBackward ||
         pass == graph::Pass::kRecompute;
}

// The kind of a measured communication range the graph has no op for (run_measurement.h).
OpCategory communication_range_category(const std::string& name) {
  if (name.rfind("comm/pp/", 0) == 0) return OpCategory::kPpComm;
  if (name.rfind("comm/tp/", 0) == 0) return OpCategory::kTpComm;
  if (name.rfind("comm/dp/", 0) == 0 || name.rfind("comm/embed/", 0) == 0)
    return OpCategory::kDpComm;
  return OpCategory::kOther;
}

}  // namespace

int32_t graph_rank_of(const simulation::SimulationDetail& detail, int32_t global_rank) {
  for (size_t r = 0; r < detail.graph.ranks.size(); ++r)
    if (detail.graph.ranks[r].global_rank == global_rank) return static_cast<int32_t>(r);
  return -1;
}

std::string_view to_string(OpCategory category) {
  switch (category) {
    case OpCategory::kGemm:
      return "GEMM";
    case OpCategory::kAttention:
      return "attention";
    case OpCategory::kNormElementwise:
      return "norms and element-wise";
    case OpCategory::kOptimizer:
      return "optimizer";
    case OpCategory::kOther:
      return "other (no op range)";
    case OpCategory::kTpComm:
      return "TP communication";
    case OpCategory::kDpComm:
      return "DP communication";
    case OpCategory::kPpComm:
      return "PP send/recv";
    case OpCategory::kBubble:
      return "pipeline bubble and waits";
    case OpCategory::kIdle:
      return "idle (nothing running)";
  }
  return "?";
}

std::string_view category_key(OpCategory category) {
  switch (category) {
    case OpCategory::kGemm:
      return "gemm";
    case OpCategory::kAttention:
      return "attention";
    case OpCategory::kNormElementwise:
      return "norm_elementwise";
    case OpCategory::kOptimizer:
      return "optimizer";
    case OpCategory::kOther:
      return "other";
    case OpCategory::kTpComm:
      return "tp_comm";
    case OpCategory::kDpComm:
      return "dp_comm";
    case OpCategory::kPpComm:
      return "pp_comm";
    case OpCategory::kBubble:
      return "bubble";
    case OpCategory::kIdle:
      return "idle";
  }
  return "?";
}

OpCategory category_of(const graph::Op& op) {
  switch (op.kind) {
    case graph::OpKind::kGemm:
      return OpCategory::kGemm;
    case graph::OpKind::kAttention:
      return OpCategory::kAttention;
    case graph::OpKind::kNorm:
    case graph::OpKind::kElementwise:
    case graph::OpKind::kLoss:
      return OpCategory::kNormElementwise;
    case graph::OpKind::kOptimizer:
      return OpCategory::kOptimizer;
    case graph::OpKind::kSend:
      // Ring steps of the TP-communication overlap and of ring attention (context parallelism,
      // which has no category of its own: the executor has none) are model-parallel traffic.
      if (op.group == graph::Group::kTp || op.group == graph::Group::kCp)
        return OpCategory::kTpComm;
      return OpCategory::kPpComm;
    case graph::OpKind::kAllReduce:
    case graph::OpKind::kAllGather:
    case graph::OpKind::kReduceScatter:
      if (op.group == graph::Group::kTp) return OpCategory::kTpComm;
      if (op.group == graph::Group::kPp) return OpCategory::kPpComm;
      return OpCategory::kDpComm;
    case graph::OpKind::kStepBlock:
      return OpCategory::kGemm;  // folded steps are not compared
    case graph::OpKind::kHostTransfer:
    case graph::OpKind::kHostOptimizer:
      return OpCategory::kOptimizer;
  }
  return OpCategory::kOther;
}

CategorySeconds category_seconds(std::vector<TimedWork> work, double iteration_s) {
  CategorySeconds out{};
  std::vector<Interval> all, busy;
  double pipeline_end = 0;
  for (const TimedWork& w : work) {
    out[static_cast<int>(w.category)] += w.end_s - w.start_s;
    all.push_back({w.start_s, w.end_s});
    if (is_work(w.category)) busy.push_back({w.start_s, w.end_s});
    if (w.pipeline_compute) pipeline_end = std::max(pipeline_end, w.end_s);
  }
  out[static_cast<int>(OpCategory::kIdle)] =
      std::max(0.0, iteration_s - common::total_length(clipped_union(std::move(all), iteration_s)));
  const double limit = std::min(pipeline_end, iteration_s);
  out[static_cast<int>(OpCategory::kBubble)] =
      std::max(0.0, limit - common::total_length(clipped_union(std::move(busy), limit)));
  return out;
}

std::vector<TimedWork> simulated_work(const simulation::SimulationDetail& detail,
                                      int32_t global_rank) {
  const int32_t rank = graph_rank_of(detail, global_rank);
  std::vector<TimedWork> work;
  const auto& g = detail.graph.graph;
  for (graph::OpVertex v = 0; v < boost::num_vertices(g); ++v) {
    const graph::Op& op = g[v];
    if (op.rank != rank) continue;
    TimedWork w;
    w.start_s = detail.engine.start_s[v];
    w.end_s = detail.engine.end_s[v];
    w.category = category_of(op);
    w.pipeline_compute = op.stream == graph::Stream::kCompute &&
                         !graph::is_communication(op.kind) && pipeline_pass(op.pass);
    work.push_back(w);
  }
  return work;
}

std::vector<TimedWork> measured_work(const profiler::RunMeasurement& run,
                                     const profiler::RankRun& rank,
                                     const simulation::SimulationDetail& detail) {
  const int32_t graph_rank = graph_rank_of(detail, rank.rank);
  std::unordered_map<std::string, const graph::Op*> ops;
  const auto& g = detail.graph.graph;
  for (graph::OpVertex v = 0; v < boost::num_vertices(g); ++v)
    if (g[v].rank == graph_rank) ops.emplace(graph::op_name(g[v]), &g[v]);
  // Every rank's time of every op name, for the communication's transfer share.
  std::unordered_map<std::string, double> shortest;
  for (const profiler::RankRun& r : run.ranks)
    for (size_t i = 0; i < r.op_names.size(); ++i) {
      auto [it, inserted] = shortest.emplace(r.op_names[i], r.op_seconds[i]);
      if (!inserted) it->second = std::min(it->second, r.op_seconds[i]);
    }
  auto peer_time = [&](const std::string& name) {
    double best = shortest.count(name) ? shortest.at(name) : 0;
    // A pipeline send's partner is the neighbour's receive of the same step, and back.
    const std::string send = "comm/pp/send/", recv = "comm/pp/recv/";
    std::string partner;
    if (name.rfind(send, 0) == 0) partner = recv + name.substr(send.size());
    if (name.rfind(recv, 0) == 0) partner = send + name.substr(recv.size());
    if (!partner.empty() && shortest.count(partner)) best = std::min(best, shortest.at(partner));
    return best;
  };
  std::vector<OpCategory> category(rank.op_names.size(), OpCategory::kOther);
  std::vector<bool> pipeline(rank.op_names.size(), false);
  std::vector<double> transfer_share(rank.op_names.size(), 1.0);
  for (size_t i = 0; i < rank.op_names.size(); ++i) {
    const auto it = ops.find(rank.op_names[i]);
    if (it == ops.end()) {
      category[i] = communication_range_category(rank.op_names[i]);
    } else {
      category[i] = category_of(*it->second);
      pipeline[i] = !graph::is_communication(it->second->kind) && pipeline_pass(it->second->pass);
    }
    const bool communication = category[i] == OpCategory::kTpComm ||
                               category[i] == OpCategory::kDpComm ||
                               category[i] == OpCategory::kPpComm;
    if (communication && rank.op_seconds[i] > 0)
      transfer_share[i] = std::clamp(peer_time(rank.op_names[i]) / rank.op_seconds[i], 0.0, 1.0);
  }
  std::vector<TimedWork> work;
  for (const profiler::MeasuredKernel& k : rank.timeline) {
    TimedWork w;
    w.start_s = k.start_s;
    w.end_s = k.end_s;
    if (k.op >= 0) {
      w.category = category[k.op];
      w.pipeline_compute = pipeline[k.op];
      // The wait for the other members comes first; the transfer ends the kernel.
      w.start_s = k.end_s - (k.end_s - k.start_s) * transfer_share[k.op];
    }
    work.push_back(w);
  }
  return work;
}

double relative_error(double predicted, double measured) {
  return measured > 0 ? (predicted - measured) / measured : 0;
}

double ConfigComparison::iteration_error() const {
  return relative_error(predicted_iteration_s, measured_iteration_s);
}

std::optional<double> ConfigComparison::loo_iteration_error() const {
  if (!predicted_loo_iteration_s) return std::nullopt;
  return relative_error(*predicted_loo_iteration_s, measured_iteration_s);
}

int64_t ConfigComparison::measured_peak() const {
  return measured_peak_memory_bytes.empty() ? 0
                                            : *std::max_element(measured_peak_memory_bytes.begin(),
                                                                measured_peak_memory_bytes.end());
}

int64_t ConfigComparison::predicted_peak() const {
  return predicted_peak_memory_bytes.empty()
             ? 0
             : *std::max_element(predicted_peak_memory_bytes.begin(),
                                 predicted_peak_memory_bytes.end());
}

std::optional<double> ConfigComparison::memory_error() const {
  if (measured_peak() <= 0) return std::nullopt;
  return relative_error(static_cast<double>(predicted_peak()),
                        static_cast<double>(measured_peak()));
}

ConfigComparison compare_configuration(const std::string& name, const std::string& flags,
                                       const profiler::RunMeasurement& measured,
                                       const std::vector<int64_t>& measured_peak_memory_bytes,
                                       const report::SimulationResult& predicted,
                                       const simulation::SimulationDetail& detail) {
  const int64_t gpus = predicted.config.num_gpus();
  if (static_cast<int64_t>(measured.ranks.size()) != gpus ||
      static_cast<int64_t>(detail.graph.ranks.size()) != gpus)
    throw std::invalid_argument(
        name + ": the run measured " + std::to_string(measured.ranks.size()) +
        " ranks, the configuration has " + std::to_string(gpus) + " GPUs and the simulation " +
        std::to_string(detail.graph.ranks.size()) + " ranks");
  ConfigComparison c;
  c.name = name;
  c.flags = flags;
  c.model = predicted.model_name;
  c.config = predicted.config;
  c.gpu = measured.gpu;
  c.date = measured.date;
  c.measured_iteration_s = measured.median_iteration_s();
  c.predicted_iteration_s = predicted.iteration_time_s;
  if (!measured.iteration_s.empty() && c.measured_iteration_s > 0) {
    const auto [lo, hi] =
        std::minmax_element(measured.iteration_s.begin(), measured.iteration_s.end());
    c.measured_iteration_spread = (*hi - *lo) / c.measured_iteration_s;
  }

  // The slowest measured rank: the most compute time in its timeline iteration.
  double most = -1;
  std::vector<TimedWork> chosen;
  double chosen_iteration = 0;
  for (const profiler::RankRun& r : measured.ranks) {
    std::vector<TimedWork> work = measured_work(measured, r, detail);
    double compute = 0;
    for (const TimedWork& w : work)
      if (is_compute_kind(w.category)) compute += w.end_s - w.start_s;
    if (compute > most) {
      most = compute;
      c.compared_rank = r.rank;
      chosen = std::move(work);
      chosen_iteration = r.timeline_iteration_s;
    }
  }
  c.measured = category_seconds(std::move(chosen), chosen_iteration);
  c.predicted =
      category_seconds(simulated_work(detail, c.compared_rank), predicted.iteration_time_s);

  c.measured_peak_memory_bytes = measured_peak_memory_bytes;
  c.predicted_peak_memory_bytes.assign(static_cast<size_t>(gpus), 0);
  for (size_t r = 0; r < detail.graph.ranks.size(); ++r) {
    const double bytes = detail.model_state_bytes[r] + detail.engine.peak_bytes[r];
    c.predicted_peak_memory_bytes[static_cast<size_t>(detail.graph.ranks[r].global_rank)] =
        static_cast<int64_t>(std::llround(bytes));
  }
  return c;
}

}  // namespace mpsim::validation
