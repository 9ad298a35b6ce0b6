#include "simulator/schedule/pipeline_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace mpsim::schedule {
namespace {

// Every (micro-batch, chunk) runs once forward and once backward, forward first.
void expect_complete(const PipelineSchedule& s) {
  for (int stage = 0; stage < s.stages(); ++stage) {
    const auto steps = s.steps(stage);
    ASSERT_EQ(steps.size(), 2u * s.micro_batches() * s.chunks());
    std::set<std::pair<int, int>> forward_done, backward_done;
    for (const PipelineStep& step : steps) {
      const auto key = std::make_pair(step.micro_batch, step.chunk);
      if (step.forward) {
        EXPECT_TRUE(forward_done.insert(key).second);
      } else {
        EXPECT_TRUE(forward_done.count(key)) << "backward before forward";
        EXPECT_TRUE(backward_done.insert(key).second);
      }
    }
  }
}

// Largest number of micro-batches whose forward ran and backward did not yet.
int max_in_flight(const std::vector<PipelineStep>& steps) {
  int in_flight = 0, peak = 0;
  for (const PipelineStep& step : steps) {
    in_flight += step.forward ? 1 : -1;
    peak = std::max(peak, in_flight);
  }
  return peak;
}

TEST(PipelineSchedule, AllSchedulesAreComplete) {
  expect_complete(*make_gpipe_schedule(4, 8));
  expect_complete(*make_one_f_one_b_schedule(4, 8));
  expect_complete(*make_one_f_one_b_schedule(8, 3));  // fewer micro-batches than stages
  expect_complete(*make_interleaved_schedule(4, 8, 2));
  expect_complete(*make_interleaved_schedule(2, 6, 3));
}

TEST(PipelineSchedule, GpipeKeepsEveryMicroBatchInFlight) {
  EXPECT_EQ(max_in_flight(make_gpipe_schedule(4, 8)->steps(0)), 8);
}

TEST(PipelineSchedule, OneFOneBLimitsInFlightToStagesAhead) {
  const auto s = make_one_f_one_b_schedule(4, 8);
  for (int stage = 0; stage < 4; ++stage) EXPECT_EQ(max_in_flight(s->steps(stage)), 4 - stage);
  const auto steps = s->steps(1);  // warm-up of p - r - 1 = 2 forwards, then alternate
  EXPECT_TRUE(steps[0].forward && steps[1].forward && steps[2].forward);
  EXPECT_FALSE(steps[3].forward);
  EXPECT_TRUE(steps[4].forward);
}

TEST(PipelineSchedule, InterleavedWarmupFollowsMegatron) {
  // Rank 0 of 4 with 2 chunks: (4 - 0 - 1) * 2 + (2 - 1) * 4 = 10 warm-up forwards.
  const auto steps = make_interleaved_schedule(4, 8, 2)->steps(0);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(steps[i].forward) << i;
  EXPECT_TRUE(steps[10].forward);
  EXPECT_FALSE(steps[11].forward);
  // Micro-batches go through chunk 0 in groups of p before chunk 1.
  EXPECT_EQ(steps[3], (PipelineStep{true, 3, 0}));
  EXPECT_EQ(steps[4], (PipelineStep{true, 0, 1}));
  // The first backward is of the last chunk.
  EXPECT_EQ(steps[11], (PipelineStep{false, 0, 1}));
}

TEST(PipelineSchedule, RejectsInconsistentSizes) {
  EXPECT_THROW(make_interleaved_schedule(4, 6, 2), std::invalid_argument);
  EXPECT_THROW(make_interleaved_schedule(4, 8, 1), std::invalid_argument);
  EXPECT_THROW(make_one_f_one_b_schedule(0, 8), std::invalid_argument);
}

}  // namespace
}  // namespace mpsim::schedule
