#include "simulator/simulation/simulation.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "simulator/cost/calibrated_cost.h"
#include "simulator/graph/model_math.h"
#include "simulator/graph/op.h"
#include "simulator/memory/memory_model.h"
#include "tests/test_models.h"

namespace mpsim::simulation {
namespace {

spec::Hardware test_hardware() {
  spec::Hardware hw;
  hw.name = "test";
  hw.peak_bf16_flops = 1e15;
  hw.peak_fp16_flops = 1e15;
  hw.hbm_bytes_per_s = 2e12;
  hw.hbm_capacity_bytes = 80e9;
  hw.gpus_per_node = 8;
  return hw;
}

// Compute at a fixed rate, communication at a fixed bandwidth: simple enough to reason about.
class LinearCost final : public cost::CostModel {
 public:
  explicit LinearCost(double comm_bytes_per_s) : comm_bytes_per_s_(comm_bytes_per_s) {}
  double op_seconds(const graph::Op& op) const override {
    if (graph::is_communication(op.kind))
      return op.group_size > 1 ? op.bytes / comm_bytes_per_s_ : 0.0;
    return op.flops / 5e14 + op.bytes / 2e12;
  }
  std::string describe() const override { return "linear test cost"; }

 private:
  double comm_bytes_per_s_;
};

SimulationResult run(const spec::ParallelConfig& c, double comm_bw, const std::string& trace = "") {
  SimulateOptions options;
  options.cost_model = std::make_shared<LinearCost>(comm_bw);
  options.trace_path = trace;
  return simulate(testing::gpt(8, 1024, 16, 512, 1000), test_hardware(), c, options);
}

// Every compute op 1 us, every parameter all-gather G, other communication free: the closed form
// of Megatron-Core's parameter-gather overlap.
class UniformCost final : public cost::CostModel {
 public:
  explicit UniformCost(double gather_s) : gather_s_(gather_s) {}
  double op_seconds(const graph::Op& op) const override {
    if (op.kind == graph::OpKind::kAllGather) return op.group_size > 1 ? gather_s_ : 0.0;
    return graph::is_communication(op.kind) ? 0.0 : 1e-6;
  }
  std::string describe() const override { return "uniform test cost"; }

 private:
  double gather_s_;
};

// With each bucket's forward longer than a gather, overlapping the parameter gather with the
// forward exposes exactly one bucket's gather (the first the forward needs), where without it
// all n are exposed after the optimizer: T_off - T_on = (n - 1) G, folded or not.
TEST(Simulation, ParameterGatherOverlapExposesOneBucket) {
  const auto model = testing::gpt(8, 1024, 16, 512, 1000);
  spec::ParallelConfig c = testing::config(1, 1, 4, 1, 8);
  c.set_zero_stage(1);
  c.set_dp_bucket_params(graph::layer_parameters_local(graph::model_dims(model), 1));
  const double gather = 0.5e-6;
  for (bool fold : {false, true}) {
    SimulateOptions options;
    options.cost_model = std::make_shared<UniformCost>(gather);
    options.fold_steps = fold;
    SimulationDetail off_detail;
    options.detail = &off_detail;
    const SimulationResult off = simulate(model, test_hardware(), c, options);
    int64_t gathers = 0;
    for (graph::OpVertex v = 0; v < boost::num_vertices(off_detail.graph.graph); ++v)
      if (off_detail.graph.graph[v].kind == graph::OpKind::kAllGather) ++gathers;
    EXPECT_EQ(gathers, 9) << "8 layers and the embedding, one bucket each (the head's norm joins "
                             "the last layer)";
    spec::ParallelConfig overlapped = c;
    overlapped.set_overlap_param_gather(true);
    options.detail = nullptr;
    const SimulationResult on = simulate(model, test_hardware(), overlapped, options);
    EXPECT_NEAR(off.iteration_time_s - on.iteration_time_s, (gathers - 1) * gather, 1e-12)
        << "fold " << fold;
  }
}

// Optimizer offload against its closed form, with the roofline pricing host work: offloading
// all of a rank's N optimizer parameters replaces the GPU's step at the iteration's end by the
// host's chain: 4 N bytes of fp32 gradients over the host link, 30 N bytes through host memory
// (the step), 2 N bytes of bf16 parameters back, one launch each; its model state loses the
// 12 N bytes of optimizer state; with half offloaded the GPU's half runs beside the host's.
TEST(Simulation, OptimizerOffloadMatchesItsClosedForm) {
  const auto model = testing::gpt(4, 512, 8, 256, 1000);
  spec::Hardware hw = test_hardware();
  hw.peak_fp32_flops = 60e12;
  hw.gemm_max_efficiency = hw.attention_max_efficiency = hw.flash_attention_max_efficiency = 0.5;
  hw.memory_bound_efficiency = 0.8;
  hw.kernel_launch_s = 4e-6;
  hw.nvlink_bytes_per_s = hw.network_bytes_per_s = 1e11;
  hw.host_link_bytes_per_s = 50e9;
  hw.host_memory_bytes_per_s = 20e9;
  spec::ParallelConfig c = testing::config(1, 1, 1, 1, 2);
  SimulateOptions options;
  options.cost_model = cost::make_roofline_cost_model(hw);
  const SimulationResult none = simulate(model, hw, c, options);
  const double n =
      static_cast<double>(memory::stage_parameters(graph::model_dims(model), none.config, 0));
  const double gpu_step = 30 * n / (hw.hbm_bytes_per_s * 0.8) + hw.kernel_launch_s;
  auto host_chain = [&](double f) {
    return f * (4 * n / hw.host_link_bytes_per_s + 30 * n / hw.host_memory_bytes_per_s +
                2 * n / hw.host_link_bytes_per_s) +
           3 * hw.kernel_launch_s;
  };
  c.set_optimizer_offload(1);
  const SimulationResult all = simulate(model, hw, c, options);
  EXPECT_NEAR(all.iteration_time_s - none.iteration_time_s, host_chain(1) - gpu_step,
              1e-9 * host_chain(1));
  c.set_optimizer_offload(0.5);
  const SimulationResult half = simulate(model, hw, c, options);
  EXPECT_NEAR(half.iteration_time_s - none.iteration_time_s, host_chain(0.5) - gpu_step,
              1e-9 * host_chain(1));
  EXPECT_NEAR(none.peak_model_state_bytes - all.peak_model_state_bytes, 12 * n, 1e-6 * n);
}

TEST(Simulation, BreakdownAddsUpToIterationTime) {
  spec::ParallelConfig c = testing::config(2, 2, 2, 1, 16);
  const SimulationResult r = run(c, 1e10);
  const report::Breakdown& b = r.breakdown;
  EXPECT_GT(b.compute_s, 0);
  EXPECT_GT(b.exposed_comm_s, 0);
  EXPECT_GT(b.bubble_s, 0);
  EXPECT_NEAR(b.compute_s + b.exposed_comm_s + b.bubble_s, r.iteration_time_s,
              1e-9 * r.iteration_time_s);
}

TEST(Simulation, MetricsFollowTheirDefinitions) {
  spec::ParallelConfig c = testing::config(1, 1, 1, 2, 8);
  c.set_recompute(spec::RECOMPUTE_FULL);
  const SimulationResult r = run(c, 1e11);
  const graph::ModelDims d = graph::model_dims(testing::gpt(8, 1024, 16, 512, 1000));
  const double model_flops = graph::model_flops_per_iteration(d, 8);
  EXPECT_DOUBLE_EQ(r.model_flops, model_flops);
  EXPECT_DOUBLE_EQ(r.hardware_flops, model_flops + 8.0 * 8 * graph::layer_forward_flops(d));
  EXPECT_DOUBLE_EQ(r.tokens_per_s, 8.0 * 512 / r.iteration_time_s);
  EXPECT_DOUBLE_EQ(r.mfu, model_flops / r.iteration_time_s / 1e15);
  EXPECT_GT(r.hfu, r.mfu);
  // One GPU, no communication: the iteration is all compute.
  EXPECT_NEAR(r.breakdown.compute_s, r.iteration_time_s, 1e-12);
}

// Peak memory comes from the engine's timeline plus model state; where the closed form holds
// (simulator/memory) the two agree to the byte. The GPU holds more: the allocator's reserve over
// those tensors and the runtime, here four NCCL communicators on either stage (TP, DP, PP and
// the tied embeddings' group).
TEST(Simulation, PeakMemoryMatchesClosedForm) {
  const auto model = testing::gpt(8, 1024, 16, 512, 1000);
  for (auto recompute : {spec::RECOMPUTE_NONE, spec::RECOMPUTE_SELECTIVE, spec::RECOMPUTE_FULL}) {
    for (bool fold : {false, true}) {
      spec::ParallelConfig c = testing::config(2, 2, 2, 1, 16);
      c.set_sequence_parallel(true);
      c.set_recompute(recompute);
      SimulateOptions options;
      options.cost_model = std::make_shared<LinearCost>(1e11);
      options.fold_steps = fold;
      const SimulationResult r = simulate(model, test_hardware(), c, options);
      ASSERT_TRUE(r.peak_memory_bytes.has_value());
      const double closed = memory::closed_form_peak_bytes(graph::model_dims(model), c);
      EXPECT_NEAR(r.peak_model_state_bytes + r.peak_activation_bytes, closed, 1.0)
          << recompute << fold;
      const spec::Hardware hw = test_hardware();
      const double runtime =
          hw.cuda_context_bytes + hw.library_workspace_bytes + 4 * hw.nccl_communicator_bytes;
      EXPECT_DOUBLE_EQ(r.peak_runtime_bytes, runtime);
      EXPECT_NEAR(r.peak_fragmentation_bytes, 0.05 * closed, 1.0);
      EXPECT_NEAR(static_cast<double>(*r.peak_memory_bytes), 1.05 * closed + runtime, 1.0);
      EXPECT_TRUE(r.fits_memory);
    }
  }
  spec::ParallelConfig tiny = testing::config(1, 1, 1, 1, 1);
  spec::Hardware small = test_hardware();
  small.hbm_capacity_bytes = 1e6;
  SimulateOptions options;
  options.cost_model = std::make_shared<LinearCost>(1e11);
  EXPECT_FALSE(simulate(model, small, tiny, options).fits_memory);
}

TEST(Simulation, OverlappedDpCommunicationExposesLess) {
  spec::ParallelConfig c = testing::config(1, 1, 4, 1, 8);
  c.set_dp_bucket_params(2'000'000);
  const double slow_link = 2e9;
  const SimulationResult overlapped = run(c, slow_link);
  c.set_overlap_dp_comm(false);
  const SimulationResult serial = run(c, slow_link);
  EXPECT_LT(overlapped.breakdown.exposed_comm_s, serial.breakdown.exposed_comm_s);
  EXPECT_LT(overlapped.iteration_time_s, serial.iteration_time_s);
  EXPECT_NEAR(overlapped.breakdown.compute_s, serial.breakdown.compute_s, 1e-12);
}

TEST(Simulation, RepresentativeRanksAgreeWithAllRanks) {
  spec::ParallelConfig c = testing::config(2, 2, 2, 1, 8);
  c.set_sequence_parallel(true);
  SimulateOptions options;
  options.cost_model = std::make_shared<LinearCost>(5e10);
  const auto model = testing::gpt(8, 1024, 16, 512, 1000);
  const SimulationResult rep = simulate(model, test_hardware(), c, options);
  options.scope = RankScope::kAllRanks;
  const SimulationResult all = simulate(model, test_hardware(), c, options);
  EXPECT_EQ(all.simulated_ranks, 8);
  EXPECT_EQ(rep.simulated_ranks, 2);
  EXPECT_NEAR(rep.iteration_time_s, all.iteration_time_s, 1e-12 * all.iteration_time_s);
  EXPECT_NEAR(rep.breakdown.exposed_comm_s, all.breakdown.exposed_comm_s, 1e-12);
}

// The trace is JSON; every slice has a rank (pid) and a stream (tid) that metadata names; slices
// on one thread nest (here: never overlap, since a stream runs one op at a time); the slowest
// rank's compute slices add up to the reported compute time.
TEST(Simulation, TraceIsWellFormed) {
  const std::string path = ::testing::TempDir() + "/mpsim_simulation_trace.json";
  spec::ParallelConfig c = testing::config(2, 2, 2, 1, 8);
  const SimulationResult r = run(c, 1e10, path);
  std::ifstream in(path);
  ASSERT_TRUE(in.good());
  const nlohmann::json trace = nlohmann::json::parse(in);
  std::map<int64_t, std::string> process_names;
  std::map<std::pair<int64_t, int64_t>, std::string> thread_names;
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<double, double>>> slices;
  for (const auto& e : trace.at("traceEvents")) {
    if (e.at("ph") == "M" && e.at("name") == "process_name")
      process_names[e.at("pid")] = e.at("args").at("name");
    if (e.at("ph") == "M" && e.at("name") == "thread_name")
      thread_names[{e.at("pid"), e.at("tid")}] = e.at("args").at("name");
    if (e.at("ph") != "X") continue;
    ASSERT_TRUE(e.contains("pid") && e.contains("tid") && e.contains("name"));
    slices[{e.at("pid"), e.at("tid")}].push_back({e.at("ts"), e.at("dur")});
  }
  EXPECT_EQ(process_names.size(), 2u);  // one rank per stage
  double compute_us = 0;
  for (auto& [key, list] : slices) {
    EXPECT_TRUE(process_names.count(key.first));
    EXPECT_TRUE(thread_names.count(key));
    std::sort(list.begin(), list.end());
    for (size_t i = 1; i < list.size(); ++i)
      EXPECT_GE(list[i].first + 1e-6, list[i - 1].first + list[i - 1].second);
    if (key.first == r.slowest_rank && key.second == 0)
      for (const auto& [ts, dur] : list) compute_us += dur;
  }
  EXPECT_NEAR(compute_us, r.breakdown.compute_s * 1e6, 1e-3 * compute_us);
  EXPECT_EQ(trace.at("distributedInfo").at("world_size"), 8);
  std::remove(path.c_str());
}

// With no cost model given, simulate() takes the calibrated model when the profile carries
// tables and the roofline otherwise, each exactly as built by hand.
TEST(Simulation, DefaultCostModelFollowsTheProfilesTables) {
  spec::Hardware hw = test_hardware();
  hw.peak_fp32_flops = 6e13;
  hw.kernel_launch_s = 2e-6;
  hw.gemm_max_efficiency = 0.8;
  hw.gemm_half_dim = 64;
  hw.attention_max_efficiency = 0.5;
  hw.flash_attention_max_efficiency = 0.45;
  hw.memory_bound_efficiency = 0.8;
  hw.nvlink_bytes_per_s = 4e11;
  hw.nvlink_latency_s = 2e-6;
  hw.network_bytes_per_s = 5e10;
  hw.network_latency_s = 5e-6;
  const spec::ModelSpec model = testing::gpt(8, 1024, 16, 512, 1000);
  const spec::ParallelConfig c = testing::config(2, 2, 2, 1, 16);
  auto run_with = [&](std::shared_ptr<const cost::CostModel> cost_model) {
    SimulateOptions options;
    options.cost_model = std::move(cost_model);
    return simulate(model, hw, c, options);
  };

  const SimulationResult roofline = run_with(nullptr);
  const SimulationResult roofline_by_hand =
      run_with(cost::make_roofline_cost_model(hw, cost::CollectiveAlgorithm::kAuto, model.dtype()));
  EXPECT_EQ(roofline.cost_model, roofline_by_hand.cost_model);
  EXPECT_EQ(roofline.iteration_time_s, roofline_by_hand.iteration_time_s);

  // A gemm.bf16 table: 2 m n k / (peak · 0.5) on a 2×2×2 grid.
  spec::CalibratedTable gemm;
  gemm.set_op("gemm.bf16");
  for (const char* name : {"m", "n", "k"}) gemm.add_key_names(name);
  for (double m : {256.0, 4096.0}) {
    for (double n : {256.0, 4096.0}) {
      for (double k : {256.0, 4096.0}) {
        spec::CalibratedPoint* p = gemm.add_points();
        for (double key : {m, n, k}) p->add_key(key);
        p->set_seconds(2 * m * n * k / (hw.peak_bf16_flops * 0.5));
      }
    }
  }
  hw.calibrated = {gemm};
  const SimulationResult calibrated = run_with(nullptr);
  const SimulationResult calibrated_by_hand = run_with(
      cost::make_calibrated_cost_model(hw, cost::CollectiveAlgorithm::kAuto, model.dtype()));
  EXPECT_EQ(calibrated.cost_model.rfind("calibrated: gemm.bf16", 0), 0u) << calibrated.cost_model;
  EXPECT_EQ(calibrated.cost_model, calibrated_by_hand.cost_model);
  EXPECT_EQ(calibrated.iteration_time_s, calibrated_by_hand.iteration_time_s);
  EXPECT_NE(calibrated.iteration_time_s, roofline.iteration_time_s);
}

}  // namespace
}  // namespace mpsim::simulation
