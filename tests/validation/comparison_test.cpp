// validation/comparison: the op-kind accounting on hand-made timelines (numbers worked out by
// hand in each test), and a measured 2-GPU pipeline run (traces/executor/pp2.*) compared with its
// simulation.
#include "validation/comparison.h"

#include <gtest/gtest.h>

#include "simulator/spec/spec_loader.h"
#include "tests/test_models.h"

namespace mpsim::validation {
namespace {

double at(const CategorySeconds& s, OpCategory c) { return s[static_cast<int>(c)]; }

TimedWork work(double start, double end, OpCategory c, bool pipeline = false) {
  TimedWork w;
  w.start_s = start;
  w.end_s = end;
  w.category = c;
  w.pipeline_compute = pipeline;
  return w;
}

// T = 10: GEMM [0,2) (pipeline), TP [2,3), PP [3,5), attention [5,6) (pipeline), DP [6,8), then
// nothing. Busy: GEMM 2, TP 1, PP 2, attention 1, DP 2. Idle: 10 - |[0,8)| = 2. Bubble: up to the
// last pipeline compute op's end (6), the time without compute/TP/DP: [3,5) = 2.
TEST(ComparisonTest, BusyBubbleAndIdleOfAHandTimeline) {
  const CategorySeconds s =
      category_seconds({work(0, 2, OpCategory::kGemm, true), work(2, 3, OpCategory::kTpComm),
                        work(3, 5, OpCategory::kPpComm), work(5, 6, OpCategory::kAttention, true),
                        work(6, 8, OpCategory::kDpComm)},
                       10);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kGemm), 2);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kTpComm), 1);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kPpComm), 2);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kAttention), 1);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kDpComm), 2);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kIdle), 2);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kBubble), 2);
}

// Overlapping work is counted once in idle and bubble but fully in busy: GEMM [0,4) and DP
// [1,6) over T = 8 -> busy 4 and 5, idle 8 - 6 = 2, bubble 0 (pipeline ends at 4, covered).
TEST(ComparisonTest, OverlapCountsOnceInIdle) {
  const CategorySeconds s =
      category_seconds({work(0, 4, OpCategory::kGemm, true), work(1, 6, OpCategory::kDpComm)}, 8);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kGemm), 4);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kDpComm), 5);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kIdle), 2);
  EXPECT_DOUBLE_EQ(at(s, OpCategory::kBubble), 0);
}

TEST(ComparisonTest, ErrorsAreSignedRelativeToTheMeasurement) {
  EXPECT_NEAR(relative_error(1.1, 1.0), 0.1, 1e-15);
  EXPECT_NEAR(relative_error(0.8, 1.0), -0.2, 1e-15);
}

// Waits inside communication: rank 0's TP all-reduce kernel lasts 3 us, rank 1's 1 us; rank 0's
// pipeline send 4 us, rank 1's receive of it 1 us. Rank 0 is charged the transfer, 1 us each,
// at the end of its kernels: the all-reduce [2, 5) us becomes [4, 5), the send [5, 9) becomes
// [8, 9). (An empty simulation: the kinds come from the names' prefixes.)
TEST(ComparisonTest, CommunicationIsChargedTheShortestMembersTime) {
  profiler::RunMeasurement run;
  profiler::RankRun r0, r1;
  r0.rank = 0;
  r0.op_names = {"comm/pp/send/fwd/mb0", "comm/tp/fwd/mb0/L0/attn.allreduce"};
  r0.op_seconds = {4e-6, 3e-6};
  r0.timeline = {{2e-6, 5e-6, 1, 7, true}, {5e-6, 9e-6, 0, 9, true}};
  r1.rank = 1;
  r1.op_names = {"comm/pp/recv/fwd/mb0", "comm/tp/fwd/mb0/L0/attn.allreduce"};
  r1.op_seconds = {1e-6, 1e-6};
  run.ranks = {r0, r1};
  const simulation::SimulationDetail empty;
  const std::vector<TimedWork> w = measured_work(run, run.ranks[0], empty);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].category, OpCategory::kTpComm);
  EXPECT_NEAR(w[0].start_s, 4e-6, 1e-15);
  EXPECT_NEAR(w[0].end_s, 5e-6, 1e-15);
  EXPECT_EQ(w[1].category, OpCategory::kPpComm);
  EXPECT_NEAR(w[1].start_s, 8e-6, 1e-15);
}

TEST(ComparisonTest, ProfiledPipelineRunAgainstItsSimulation) {
  const profiler::RunMeasurement run =
      profiler::measure_run(profiler::read_run_traces("traces/executor/pp2.sqlite"), 1);
  spec::ModelSpec model = spec::load_model_spec("models/gpt-bytes-tiny.textproto");
  const spec::Hardware hw = spec::load_hardware("h100-sxm");
  const auto config = spec::validate_parallel_config(
      testing::executor_attention(testing::config(1, 2, 1, 2, 4)), model, hw);
  simulation::SimulationDetail detail;
  simulation::SimulateOptions options;
  options.scope = simulation::RankScope::kAllRanks;
  options.detail = &detail;
  const report::SimulationResult result = simulation::simulate(model, hw, config, options);
  ASSERT_EQ(detail.graph.ranks.size(), 2u);
  const ConfigComparison c =
      compare_configuration("pp2", "--pp 2", run, {100, 200}, result, detail);
  EXPECT_TRUE(c.compared_rank == 0 || c.compared_rank == 1);
  EXPECT_DOUBLE_EQ(c.measured_iteration_s, run.median_iteration_s());
  EXPECT_DOUBLE_EQ(c.predicted_iteration_s, result.iteration_time_s);
  // Both sides ran GEMMs, attention, norms and pipeline transfers; the optimizer ran on both.
  for (OpCategory k : {OpCategory::kGemm, OpCategory::kAttention, OpCategory::kNormElementwise,
                       OpCategory::kPpComm, OpCategory::kOptimizer}) {
    EXPECT_GT(at(c.measured, k), 0) << to_string(k);
    EXPECT_GT(at(c.predicted, k), 0) << to_string(k);
  }
  EXPECT_EQ(at(c.predicted, OpCategory::kOther), 0);   // the simulator has no unattributed work
  EXPECT_EQ(at(c.predicted, OpCategory::kTpComm), 0);  // TP 1
  EXPECT_EQ(c.measured_peak(), 200);
  ASSERT_EQ(c.predicted_peak_memory_bytes.size(), 2u);
  // The comparison is of tensors, as the executor accounts for them (no runtime or fragmentation).
  EXPECT_EQ(c.predicted_peak(),
            std::llround(result.peak_model_state_bytes + result.peak_activation_bytes));
  // The simulated rank's busy, bubble and idle cannot exceed the iteration; idle <= iteration.
  EXPECT_LE(at(c.predicted, OpCategory::kIdle), result.iteration_time_s);
  EXPECT_LE(at(c.measured, OpCategory::kIdle), c.measured_iteration_s * 2);
  EXPECT_THROW(compare_configuration("pp2", "", run, {}, result,
                                     [] {
                                       simulation::SimulationDetail one;
                                       return one;
                                     }()),
               std::invalid_argument);
}

}  // namespace
}  // namespace mpsim::validation
