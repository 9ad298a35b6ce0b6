// run_measurement: a hand-built two-rank executor run whose expected numbers are worked out by
// hand below, and the committed profiled 2-GPU pipeline run (traces/executor/pp2.*) joined with
// the simulator's graph.
//
// Rank 0, thread 7, three iterations (times in ns):
//   iteration/1 [0, 10000): fwd/mb0/L0/attn.qkv [100, 200) launches k1 [1000, 3000)
//   iteration/2 [10000, 20000): fwd/mb0/L0/attn.qkv [10100, 10200) launches k2 [11000, 12000);
//       comm/tp/fwd/mb0/L0/attn.allreduce [10300, 10400) nested in fwd/mb0/L0/attn.proj
//       [10250, 10500) launches the NCCL kernel k3 [12000, 15000) (innermost range: the
//       all-reduce); a launch at 10600 outside op ranges: k4 [15000, 15500) (unattributed)
//   iteration/3 [20000, 26000): fwd/mb0/L0/attn.qkv [20100, 20200) launches k5 [21000, 24000)
// Rank 1: the same iterations, 9000, 12000 and 5000 ns long, one kernel k6 in iteration 2 under
//   fwd/mb0/L0/attn.qkv [10100, 10200), [11000, 11500).
// Launch gaps (issue_slots.h) on rank 0's stream 7 (k1, k2, k4, k5): 8000, 3000 and 5500 ns,
// k1 their mean 5500; k3 is alone on stream 13: 0. Issue slots: k1 7500, k2 9000, k3 3000,
// k4 3500, k5 8500 ns.
// With warm-up 1: measured iterations 2 and 3; iteration times max over ranks: 12000, 6000 ns;
// median 9000 ns. Rank 0 op times per iteration: attn.qkv (9000 + 8500) / 2 = 8750 ns,
// attn.allreduce 3000 / 2 = 1500 ns, attn.proj none; unattributed 3500 / 2 = 1750 ns. The timeline
// iteration is the lower median of (10000, 6000) on rank 0 -> iteration 3, whose one kernel's
// slot starts 21000 - 5500 - 20000 = -4500 ns from the iteration's start.
#include "profiler/analyze/run_measurement.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "simulator/graph/op_name.h"
#include "simulator/graph/training_graph.h"
#include "simulator/spec/spec_loader.h"
#include "synthetic_trace.h"
#include "tests/test_models.h"

namespace mpsim::profiler {
namespace {

using testing::kernel;
using testing::kNccl;
using testing::launch;
using testing::range;

RankTrace rank_trace(int32_t rank) {
  RankTrace t;
  t.process.rank = rank;
  t.process.world_size = 2;
  t.process.hostname = "node0";
  t.process.command = "mpsim train --gpus 2";
  RecordBatch& b = t.records;
  if (rank == 0) {
    b.nvtx = {range("iteration/1", 0, 10000),
              range("fwd/mb0/L0/attn.qkv", 100, 200),
              range("iteration/2", 10000, 20000),
              range("fwd/mb0/L0/attn.qkv", 10100, 10200),
              range("fwd/mb0/L0/attn.proj", 10250, 10500),
              range("comm/tp/fwd/mb0/L0/attn.allreduce", 10300, 10400),
              range("iteration/3", 20000, 26000),
              range("fwd/mb0/L0/attn.qkv", 20100, 20200)};
    b.api_calls = {launch(1, 150), launch(2, 10150), launch(3, 10350), launch(4, 10600),
                   launch(5, 20150)};
    b.kernels = {kernel("gemm", 7, 1, 1000, 3000), kernel("gemm", 7, 2, 11000, 12000),
                 kernel(kNccl, 13, 3, 12000, 15000), kernel("add", 7, 4, 15000, 15500),
                 kernel("gemm", 7, 5, 21000, 24000)};
  } else {
    b.nvtx = {range("iteration/1", 0, 9000), range("iteration/2", 10000, 22000),
              range("fwd/mb0/L0/attn.qkv", 10100, 10200), range("iteration/3", 22000, 27000)};
    b.api_calls = {launch(6, 10150)};
    b.kernels = {kernel("gemm", 7, 6, 11000, 11500, 1)};
  }
  return t;
}

TEST(RunMeasurementTest, HandBuiltRunGivesTheHandWorkedNumbers) {
  const RunMeasurement run = measure_run({rank_trace(1), rank_trace(0)}, 1);
  ASSERT_EQ(run.ranks.size(), 2u);
  EXPECT_EQ(run.ranks[0].rank, 0);
  EXPECT_EQ(run.ranks[0].steps, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(run.iteration_s.size(), 2u);
  EXPECT_DOUBLE_EQ(run.iteration_s[0], 12000e-9);
  EXPECT_DOUBLE_EQ(run.iteration_s[1], 6000e-9);
  EXPECT_DOUBLE_EQ(run.median_iteration_s(), 9000e-9);
  const RankRun& r0 = run.ranks[0];
  ASSERT_EQ(r0.op_names,
            (std::vector<std::string>{"comm/tp/fwd/mb0/L0/attn.allreduce", "fwd/mb0/L0/attn.qkv"}));
  EXPECT_DOUBLE_EQ(r0.op_seconds[0], 1500e-9);
  EXPECT_DOUBLE_EQ(r0.op_seconds[1], 8750e-9);
  EXPECT_DOUBLE_EQ(r0.unattributed_s, 1750e-9);
  EXPECT_EQ(r0.timeline_step, 3);
  ASSERT_EQ(r0.timeline.size(), 1u);
  EXPECT_DOUBLE_EQ(r0.timeline[0].start_s, -4500e-9);
  EXPECT_DOUBLE_EQ(r0.timeline[0].end_s, 4000e-9);
  EXPECT_EQ(r0.timeline[0].op, 1);
  const RankRun& r1 = run.ranks[1];
  EXPECT_DOUBLE_EQ(r1.op_seconds[0], 250e-9);  // 500 ns in one of two measured iterations
  EXPECT_EQ(r1.timeline_step, 3);              // 5000 < 12000
  EXPECT_EQ(run.command, "mpsim train --gpus 2");
}

TEST(RunMeasurementTest, TimelineMarksNcclKernels) {
  // Iteration 3 made 12000 ns long on rank 0: of the measured (10000, 12000) the lower median is
  // iteration 2, whose kernels are the GEMM, the NCCL all-reduce and the unattributed add (slots
  // starting at -7000, 2000 and 2000 ns: the all-reduce ends first).
  RankTrace longer = rank_trace(0);
  longer.records.nvtx[6].end = 32000;
  const RunMeasurement run = measure_run({longer, rank_trace(1)}, 1);
  const RankRun& r0 = run.ranks[0];
  EXPECT_EQ(r0.timeline_step, 2);
  ASSERT_EQ(r0.timeline.size(), 3u);
  EXPECT_FALSE(r0.timeline[0].nccl);
  EXPECT_TRUE(r0.timeline[1].nccl);
  EXPECT_EQ(r0.timeline[1].op, 0);   // the all-reduce, not the enclosing attn.proj
  EXPECT_EQ(r0.timeline[2].op, -1);  // unattributed
  EXPECT_DOUBLE_EQ(r0.timeline[0].start_s, -7000e-9);  // k2: 11000 - 8000 - 10000
}

TEST(RunMeasurementTest, JsonRoundTripKeepsEverything) {
  const RunMeasurement run = measure_run({rank_trace(0), rank_trace(1)}, 1);
  const RunMeasurement back = run_measurement_from_json(to_json(run), "test.json");
  EXPECT_EQ(to_json(back), to_json(run));
  EXPECT_DOUBLE_EQ(back.median_iteration_s(), run.median_iteration_s());
}

TEST(RunMeasurementTest, RefusesTooFewIterationsAndBadJson) {
  try {
    measure_run({rank_trace(0)}, 3);
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0: 3 iterations recorded"), std::string::npos)
        << e.what();
  }
  nlohmann::json bad = to_json(measure_run({rank_trace(0)}, 1));
  bad["ranks"][0].erase("steps");
  try {
    run_measurement_from_json(bad, "runs/x.json");
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("runs/x.json: rank 0: missing field 'steps'"),
              std::string::npos)
        << e.what();
  }
}

// A one-GPU run started without a launcher: the profiler names the process by its pid (rank
// source "pid", database <stem>.rank<pid>.sqlite); it is rank 0 of the run.
TEST(RunMeasurementTest, AnUnrankedSingleProcessIsRankZero) {
  RankTrace t = rank_trace(0);
  t.process.rank = 4242;
  t.process.rank_source = "pid";
  const RunMeasurement run = measure_run({t}, 1);
  EXPECT_EQ(run.ranks[0].rank, 0);
  RankTrace other = rank_trace(1);
  other.process.rank_source = "pid";
  EXPECT_THROW(measure_run({t, other}, 1), std::invalid_argument);

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mpsim-run-files-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* f :
       {"run.rank4242.sqlite", "run.rank0x.sqlite", "runs.rank1.sqlite", "run.sqlite-journal"})
    std::ofstream(dir / f) << "";
  EXPECT_EQ(run_database_files((dir / "run.sqlite").string()),
            (std::vector<std::string>{(dir / "run.rank4242.sqlite").string()}));
  EXPECT_EQ(run_database_files((dir / "run.rank4242.sqlite").string()),
            (std::vector<std::string>{(dir / "run.rank4242.sqlite").string()}));
  EXPECT_TRUE(run_database_files((dir / "none.sqlite").string()).empty());
  std::filesystem::remove_all(dir);
}

// The committed profiled run: every compute op the simulator builds for each rank has GPU time in
// the measured (second) iteration, and all the iteration's kernel time is accounted for.
TEST(RunMeasurementTest, ProfiledPipelineRunCoversEveryComputeOp) {
  const std::vector<RankTrace> traces = read_run_traces("traces/executor/pp2.rank1.sqlite");
  ASSERT_EQ(traces.size(), 2u);
  const RunMeasurement run = measure_run(traces, 1);
  EXPECT_EQ(run.ranks[0].steps, (std::vector<int64_t>{2}));
  const spec::ParallelConfig c =
      mpsim::testing::executor_attention(mpsim::testing::config(1, 2, 1, 2, 4));
  const spec::ModelSpec model = spec::load_model_spec("models/gpt-bytes-tiny.textproto");
  const auto valid = spec::validate_parallel_config(c, model, spec::load_hardware("h100-sxm"));
  graph::GraphOptions options;
  options.all_ranks = true;
  const graph::TrainingGraph g = graph::build_training_graph(model, valid, options);
  for (const RankRun& r : run.ranks) {
    int compute_ops = 0;
    for (graph::OpVertex v = 0; v < num_vertices(g.graph); ++v) {
      const graph::Op& op = g.graph[v];
      if (g.ranks[op.rank].global_rank != r.rank || graph::is_communication(op.kind)) continue;
      const std::string name = graph::op_name(op);
      const auto it = std::lower_bound(r.op_names.begin(), r.op_names.end(), name);
      ASSERT_TRUE(it != r.op_names.end() && *it == name) << "rank " << r.rank << ": " << name;
      EXPECT_GT(r.op_seconds[it - r.op_names.begin()], 0) << name;
      ++compute_ops;
    }
    EXPECT_GT(compute_ops, 10);
    double ops = r.unattributed_s, timeline = 0;
    for (double s : r.op_seconds) ops += s;
    for (const MeasuredKernel& k : r.timeline) timeline += k.end_s - k.start_s;
    EXPECT_NEAR(ops, timeline, 1e-9)
        << "one measured iteration: op times + unattributed = its kernels";
    EXPECT_LE(r.timeline.back().end_s, r.timeline_iteration_s + 1e-3);
  }
}

}  // namespace
}  // namespace mpsim::profiler
