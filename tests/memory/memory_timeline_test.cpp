#include "simulator/memory/memory_timeline.h"

#include <gtest/gtest.h>

#include "simulator/engine/engine.h"
#include "tests/test_models.h"

namespace mpsim::memory {
namespace {

using graph::Op;
using graph::OpVertex;
using graph::TrainingGraph;

// Any positive costs: the peak depends on the order ops run in, which the schedule fixes.
void set_costs(TrainingGraph& tg) {
  for (OpVertex v = 0; v < boost::num_vertices(tg.graph); ++v) {
    Op& op = tg.graph[v];
    op.duration_s = 1e-6 + op.flops * 1e-15 + op.bytes * 1e-12;
  }
}

constexpr spec::Attention kUnfused = spec::ATTENTION_UNFUSED;
constexpr spec::Attention kFlash = spec::ATTENTION_FLASH;

struct Simulated {
  TrainingGraph graph;
  engine::EngineResult result;
};

Simulated simulate(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                   graph::GraphOptions options = {}, LossMemory loss = LossMemory::kFp32Logits) {
  Simulated run{graph::build_training_graph(model, config, options), {}};
  set_costs(run.graph);
  annotate_memory(run.graph, config, loss);
  run.result = engine::run_engine(run.graph);
  return run;
}

spec::ParallelConfig with(spec::ParallelConfig c, spec::Recompute recompute, bool sp = false) {
  c.set_recompute(recompute);
  c.set_sequence_parallel(sp);
  return c;
}

const spec::ModelSpec kGpt = testing::gpt(8, 256, 4, 128, 1000);  // dropout 0.1, tied, learned
const spec::ModelSpec kLlama = testing::llama(8, 256, 688, 8, 2, 128, 1000);  // GQA, SwiGLU

// Every simulated rank's engine peak equals the closed form and everything is freed again.
void expect_matches_closed_form(const spec::ModelSpec& model, const spec::ParallelConfig& config,
                                spec::Attention attention = kUnfused) {
  spec::ParallelConfig c = config;
  c.set_attention(attention);
  const Simulated run = simulate(model, c, {});
  const graph::ModelDims d = graph::model_dims(model);
  for (size_t r = 0; r < run.graph.ranks.size(); ++r) {
    const RankMemory closed = closed_form_memory(d, c, run.graph.ranks[r].pp);
    EXPECT_EQ(run.result.peak_bytes[r], closed.activations + closed.extra)
        << "stage " << run.graph.ranks[r].pp;
    EXPECT_EQ(run.result.final_bytes[r], 0) << "stage " << run.graph.ranks[r].pp;
  }
}

// 1F1B, first stage: p micro-batches of L / p layers in flight, plus the embedding's dropout
// masks of those p micro-batches; nothing else.
TEST(MemoryTimeline, OneFOneBFirstStageHoldsPMicroBatches) {
  const int64_t p = 4, m = 8, L = 8;
  const spec::ParallelConfig c = testing::config(1, p, 1, 1, m);
  const Simulated run = simulate(kGpt, c);
  const graph::ModelDims d = graph::model_dims(kGpt);
  const double layers = p * (L / p) * layer_activation_bytes(d, c);
  const double embedding_masks = p * embedding_activation_bytes(d, c);
  EXPECT_EQ(run.result.peak_bytes[0], layers + embedding_masks);
  // Last stage: one micro-batch in flight, with the head's inputs and fp32 logits.
  EXPECT_EQ(run.result.peak_bytes[p - 1],
            (L / p) * layer_activation_bytes(d, c) + head_activation_bytes(d, c));
}

// The reference executor's loss keeps the bf16 logits and two fp32 numbers per token instead of
// Megatron's fp32 logits: the last stage's peak under GPipe (every micro-batch's head buffers
// held) falls by m (2 s b V_padded - 8 s b) and still equals the closed form. kGpt: s 128,
// vocab 1000 padded to 1024 (t 1), b 1.
TEST(MemoryTimeline, Bf16LossLogitsKeepHalfTheLogits) {
  const int64_t p = 2, m = 6;
  const spec::ParallelConfig c = testing::config(1, p, 1, 1, m, spec::GPIPE);
  const graph::ModelDims d = graph::model_dims(kGpt);
  const Simulated fp32 = simulate(kGpt, c);
  const Simulated bf16 = simulate(kGpt, c, {}, LossMemory::kBf16Logits);
  const double tokens = 128, columns = 1024;
  EXPECT_EQ(head_activation_bytes(d, c) - head_activation_bytes(d, c, LossMemory::kBf16Logits),
            2 * tokens * columns - 8 * tokens);
  EXPECT_EQ(fp32.result.peak_bytes[p - 1] - bf16.result.peak_bytes[p - 1],
            m * (2 * tokens * columns - 8 * tokens));
  EXPECT_EQ(bf16.result.peak_bytes[p - 1],
            closed_form_memory(d, c, p - 1, LossMemory::kBf16Logits).total() -
                closed_form_memory(d, c, p - 1).model_state.total());
}

TEST(MemoryTimeline, GpipeHoldsAllMicroBatches) {
  const int64_t p = 2, m = 6, L = 8;
  const spec::ParallelConfig c = testing::config(1, p, 1, 1, m, spec::GPIPE);
  const Simulated run = simulate(kGpt, c);
  const graph::ModelDims d = graph::model_dims(kGpt);
  EXPECT_EQ(run.result.peak_bytes[0],
            m * (L / p) * layer_activation_bytes(d, c) + m * embedding_activation_bytes(d, c));
  expect_matches_closed_form(kGpt, c);
}

TEST(MemoryTimeline, MatchesClosedFormForEverySchedule) {
  const spec::Recompute modes[] = {spec::RECOMPUTE_NONE, spec::RECOMPUTE_SELECTIVE,
                                   spec::RECOMPUTE_FULL};
  for (spec::Recompute mode : modes) {
    for (bool sp : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "recompute " << mode << " sp " << sp);
      expect_matches_closed_form(kGpt, with(testing::config(2, 4, 1, 1, 8), mode, sp));
      expect_matches_closed_form(kGpt, with(testing::config(2, 2, 1, 1, 4, spec::GPIPE), mode, sp));
      expect_matches_closed_form(
          kGpt, with(testing::config(2, 2, 1, 1, 4, spec::INTERLEAVED_1F1B, 2), mode, sp));
      expect_matches_closed_form(
          kGpt, with(testing::config(1, 4, 1, 1, 12, spec::INTERLEAVED_1F1B, 2), mode, sp));
      expect_matches_closed_form(
          kGpt, with(testing::config(2, 2, 1, 1, 6, spec::INTERLEAVED_1F1B, 4), mode, sp));
      expect_matches_closed_form(kGpt, with(testing::config(1, 1, 1, 1, 3), mode, sp));
      expect_matches_closed_form(kGpt, with(testing::config(1, 4, 1, 1, 2), mode, sp));  // m < p
      expect_matches_closed_form(kLlama, with(testing::config(2, 4, 1, 1, 8), mode, sp));
      expect_matches_closed_form(kLlama, with(testing::config(2, 4, 1, 1, 8), mode, sp), kFlash);
    }
  }
}

TEST(MemoryTimeline, InterleavedFirstStageFactor) {
  const int64_t p = 2, v = 2, m = 8, L = 8;
  const spec::ParallelConfig c = testing::config(1, p, 1, 1, m, spec::INTERLEAVED_1F1B, v);
  const Simulated run = simulate(kGpt, c);
  const graph::ModelDims d = graph::model_dims(kGpt);
  // L (1 + (p - 1) / (p v)) layers. Embedding masks: the first backward works on the last chunk,
  // so the forward after it (chunk 0 again) brings chunk 0 to 2 p micro-batches in flight.
  EXPECT_EQ(run.result.peak_bytes[0], L * (1 + (p - 1.0) / (p * v)) * layer_activation_bytes(d, c) +
                                          2 * p * embedding_activation_bytes(d, c));
}

TEST(MemoryTimeline, RecomputeAndSequenceParallelReduceThePeak) {
  const spec::ParallelConfig base = testing::config(2, 2, 1, 1, 4);
  const double none = simulate(kGpt, with(base, spec::RECOMPUTE_NONE)).result.peak_bytes[0];
  const double selective =
      simulate(kGpt, with(base, spec::RECOMPUTE_SELECTIVE)).result.peak_bytes[0];
  const double full = simulate(kGpt, with(base, spec::RECOMPUTE_FULL)).result.peak_bytes[0];
  EXPECT_LT(full, selective);
  EXPECT_LT(selective, none);
  const double none_sp =
      simulate(kGpt, with(base, spec::RECOMPUTE_NONE, true)).result.peak_bytes[0];
  EXPECT_LT(none_sp, none);
}

TEST(MemoryTimeline, FlashAttentionNeedsLessThanStoredScores) {
  spec::ParallelConfig flash = testing::config(1, 2, 1, 1, 4);
  flash.set_attention(kFlash);
  spec::ParallelConfig unfused = flash;
  unfused.set_attention(kUnfused);
  EXPECT_LT(simulate(kLlama, flash).result.peak_bytes[0],
            simulate(kLlama, unfused).result.peak_bytes[0]);
}

// Every GPU simulated, with DP and ZeRO-3: every rank of a stage has the same timeline.
TEST(MemoryTimeline, AllRanksWithDataParallel) {
  spec::ParallelConfig c = testing::config(2, 2, 2, 1, 8);
  c.set_zero_stage(3);
  c.set_sequence_parallel(true);
  graph::GraphOptions options;
  options.all_ranks = true;
  const Simulated run = simulate(kGpt, c, options);
  const graph::ModelDims d = graph::model_dims(kGpt);
  const std::vector<double> state = model_state_bytes_per_rank(run.graph, c);
  ASSERT_EQ(run.graph.ranks.size(), 8u);
  for (size_t r = 0; r < run.graph.ranks.size(); ++r) {
    const int64_t stage = run.graph.ranks[r].pp;
    const RankMemory closed = closed_form_memory(d, c, stage);
    EXPECT_EQ(run.result.peak_bytes[r], closed.activations + closed.extra);
    EXPECT_EQ(run.result.final_bytes[r], 0);
    EXPECT_EQ(state[r], closed.model_state.total());
    EXPECT_EQ(state[r], 18.0 / 2 * stage_parameters(d, c, stage));
  }
}

TEST(MemoryTimeline, AnnotatingTwiceGivesTheSameTimeline) {
  const spec::ParallelConfig c = testing::config(1, 2, 1, 1, 4);
  TrainingGraph tg = graph::build_training_graph(kGpt, c, {});
  set_costs(tg);
  annotate_memory(tg, c);
  const double once = engine::run_engine(tg).peak_bytes[0];
  annotate_memory(tg, c);
  EXPECT_EQ(engine::run_engine(tg).peak_bytes[0], once);
}

}  // namespace
}  // namespace mpsim::memory
