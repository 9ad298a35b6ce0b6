#include "simulator/memory/memory_model.h"

#include <gtest/gtest.h>

#include <vector>

#include "simulator/graph/training_graph.h"
#include "tests/test_models.h"

namespace mpsim::memory {
namespace {

// Korthikanti et al. 2022, Table 3: model configurations (s = 2048, b = 1, t = 8).
struct Published {
  const char* name;
  int64_t hidden, heads, layers, pp;
};
constexpr Published kPublished[] = {
    {"22B", 6144, 64, 48, 1},
    {"175B", 12288, 96, 96, 8},
    {"530B", 20480, 128, 105, 35},
    {"1T", 25600, 160, 128, 64},
};
constexpr int64_t kSeq = 2048;
constexpr int64_t kTp = 8;

spec::ParallelConfig korthikanti_config(const Published& m, int64_t tp, bool sp,
                                        spec::Recompute recompute) {
  spec::ParallelConfig c = testing::config(tp, m.pp, 1, 1, m.pp);
  c.set_sequence_parallel(sp);
  c.set_recompute(recompute);
  c.set_attention(spec::ATTENTION_UNFUSED);  // the paper's attention keeps the scores
  return c;
}

graph::ModelDims korthikanti_dims(const Published& m) {
  return graph::model_dims(testing::gpt(m.layers, m.hidden, m.heads, kSeq));
}

// The paper's per-layer formulas, in bytes, written out independently (s b h and a s^2 b are
// integers, and every division below is exact for these sizes). With flash attention the
// 5 a s / h term is gone and the fp32 log-sum-exp, 4 a s b bytes (/ t), is kept instead.
int64_t paper_bytes(const Published& m, int64_t t, bool sp, spec::Recompute recompute,
                    bool flash = false) {
  const int64_t s = kSeq, b = 1, h = m.hidden, a = m.heads;
  const int64_t sbh = s * b * h;
  const int64_t scores = flash ? 4 * a * s * b / t : 5 * a * s * s * b / t;
  if (recompute == spec::RECOMPUTE_FULL) return sp ? 2 * sbh / t : 2 * sbh;
  const int64_t keep_scores = recompute == spec::RECOMPUTE_SELECTIVE ? 0 : 1;
  if (t == 1) return 34 * sbh + keep_scores * scores;
  if (sp) return 34 * sbh / t + keep_scores * scores;
  return 10 * sbh + 24 * sbh / t + keep_scores * scores;
}

TEST(LayerActivationBytes, MatchesKorthikantiFormulasToTheByte) {
  const spec::Recompute modes[] = {spec::RECOMPUTE_NONE, spec::RECOMPUTE_SELECTIVE,
                                   spec::RECOMPUTE_FULL};
  for (const Published& m : kPublished) {
    const graph::ModelDims d = korthikanti_dims(m);
    for (spec::Recompute mode : modes) {
      struct Case {
        int64_t t;
        bool sp;
      };
      for (Case c : {Case{1, false}, Case{kTp, false}, Case{kTp, true}}) {
        spec::ParallelConfig config = korthikanti_config(m, c.t, c.sp, mode);
        EXPECT_EQ(layer_activation_bytes(d, config),
                  static_cast<double>(paper_bytes(m, c.t, c.sp, mode)))
            << m.name << " t=" << c.t << " sp=" << c.sp << " recompute=" << mode;
        config.set_attention(spec::ATTENTION_FLASH);
        EXPECT_EQ(layer_activation_bytes(d, config),
                  static_cast<double>(paper_bytes(m, c.t, c.sp, mode, /*flash=*/true)))
            << "flash " << m.name << " t=" << c.t << " sp=" << c.sp << " recompute=" << mode;
      }
    }
  }
}

// The 22B model with TP 8, SP and selective recompute: 34 s b h / t bytes, as in the paper's
// "sbh(34/t)" row; 5 a s / (h t) = 13.33 s b h more without recompute.
TEST(LayerActivationBytes, SelectiveWithSequenceParallelIs34OverT) {
  const graph::ModelDims d = korthikanti_dims(kPublished[0]);
  const double sbh = 2048.0 * 6144.0;
  EXPECT_EQ(layer_activation_bytes(
                d, korthikanti_config(kPublished[0], 8, true, spec::RECOMPUTE_SELECTIVE)),
            34 * sbh / 8);
}

// Llama-style: GQA, SwiGLU, no dropout (no masks, the softmax output is the only a s^2 tensor).
TEST(LayerActivationBytes, GeneralisesToGqaSwigluWithoutDropout) {
  const int64_t s = 4096, h = 4096, ffn = 11008, a = 32, kv = 8, hd = 128, t = 4, b = 2;
  const graph::ModelDims d = graph::model_dims(testing::llama(32, h, ffn, a, kv, s, 32000));
  spec::ParallelConfig c = testing::config(t, 1, 1, b, b);
  c.set_sequence_parallel(true);
  c.set_attention(spec::ATTENTION_UNFUSED);
  const double tokens = static_cast<double>(s * b);
  const double between_regions = 4 * 2 * tokens * h / t;  // 2 norm inputs, qkv and fc1 inputs
  const double qkv = 2 * tokens * (h + 2 * kv * hd) / t;
  const double proj = 2 * tokens * h / t;
  const double mlp = 2 * tokens * (2 * ffn) / t + 2 * tokens * ffn / t;
  const double softmax = 2.0 * a * s * s * b / t;
  EXPECT_EQ(layer_activation_bytes(d, c), between_regions + qkv + proj + mlp + softmax);
  const double lse = 4.0 * a * s * b / t;
  spec::ParallelConfig flash = c;
  flash.set_attention(spec::ATTENTION_FLASH);
  // Grouped-query attention with the fused core: the query heads' own copy (attn.split) too.
  const double query_copy = 2 * tokens * h / t;
  EXPECT_EQ(layer_activation_bytes(d, flash),
            between_regions + qkv + query_copy + proj + mlp + lse);
  c.set_recompute(spec::RECOMPUTE_SELECTIVE);
  EXPECT_EQ(layer_activation_bytes(d, c), between_regions + qkv + proj + mlp);
  c.set_recompute(spec::RECOMPUTE_FULL);
  EXPECT_EQ(layer_activation_bytes(d, c), 2 * tokens * h / t);
  EXPECT_EQ(recompute_working_set_bytes(d, c),
            between_regions - 2 * tokens * h / t + qkv + proj + mlp + softmax);
}

TEST(RecomputeWorkingSet, SelectiveIsScoresLessWhatTheBackwardFreedFirst) {
  const graph::ModelDims d = korthikanti_dims(kPublished[0]);
  const spec::ParallelConfig c =
      korthikanti_config(kPublished[0], 8, true, spec::RECOMPUTE_SELECTIVE);
  const double sbh = 2048.0 * 6144.0;
  // Freed before the attention core's backward: MLP (2 norm + 2 fc1 in + 1 mask) / t +
  // (8 + 8) / t, attention dropout mask 1 / t, projection input 2 / t.
  const double freed = sbh * (5.0 / 8 + 16.0 / 8 + 1.0 / 8 + 2.0 / 8);
  const double scores = 5.0 * 64 * 2048 * 2048 / 8;
  EXPECT_EQ(recompute_working_set_bytes(d, c), scores - freed);
  EXPECT_EQ(recompute_working_set_bytes(
                d, korthikanti_config(kPublished[0], 8, true, spec::RECOMPUTE_NONE)),
            0);
}

TEST(ModelStateBytes, MegatronCounts) {
  const int64_t n = 1'000'000'000;
  spec::ParallelConfig c = testing::config(1, 1, 8, 1, 8);
  EXPECT_EQ(model_state_bytes(n, c).total(), 18.0 * n);
  c.set_zero_stage(1);  // distributed optimizer
  EXPECT_EQ(model_state_bytes(n, c).total(), (6 + 12.0 / 8) * n);
  EXPECT_EQ(model_state_bytes(n, c).weights, 2.0 * n);
  EXPECT_EQ(model_state_bytes(n, c).gradients, 4.0 * n);
  c.set_zero_stage(2);
  EXPECT_EQ(model_state_bytes(n, c).total(), (2 + 16.0 / 8) * n);
  c.set_zero_stage(3);
  EXPECT_EQ(model_state_bytes(n, c).total(), 18.0 / 8 * n);
  c = testing::config(1, 1, 1, 1, 1);
  c.set_zero_stage(1);  // DP 1: nothing to shard over
  EXPECT_EQ(model_state_bytes(n, c).total(), 18.0 * n);
}

int64_t sum_over_stages(const graph::ModelDims& d, const spec::ParallelConfig& c) {
  int64_t sum = 0;
  for (int64_t stage = 0; stage < c.pipeline_parallel(); ++stage)
    sum += stage_parameters(d, c, stage);
  return sum;
}

TEST(StageParameters, AddUpToTheModelWithPaddedVocab) {
  const graph::ModelDims gpt = graph::model_dims(testing::gpt(24, 1024, 16, 2048, 50257));
  graph::ModelDims padded = gpt;
  padded.vocab = graph::padded_vocab(gpt.vocab, 1);
  EXPECT_EQ(padded.vocab, 50304);
  EXPECT_EQ(sum_over_stages(gpt, testing::config(1, 1, 1, 1, 1)), graph::model_parameters(padded));
  // Tied embedding with PP > 1: the last stage keeps its own copy of the word embedding.
  EXPECT_EQ(sum_over_stages(gpt, testing::config(1, 4, 1, 1, 4)),
            graph::model_parameters(padded) + padded.vocab * 1024);

  const graph::ModelDims llama = graph::model_dims(testing::llama(8, 512, 1376, 8, 2, 1024, 32000));
  padded = llama;
  padded.vocab = graph::padded_vocab(llama.vocab, 1);
  EXPECT_EQ(sum_over_stages(llama, testing::config(1, 2, 1, 1, 2)),
            graph::model_parameters(padded));
}

TEST(StageParameters, TensorParallelSplitsAllButNormsAndRowBiases) {
  const int64_t L = 24, h = 1024, s = 2048, t = 2, p = 4;
  const graph::ModelDims d = graph::model_dims(testing::gpt(L, h, 16, s, 50257));
  graph::ModelDims padded = d;
  padded.vocab = graph::padded_vocab(d.vocab, t);
  EXPECT_EQ(padded.vocab, 50432);
  // Replicated on every TP rank: per layer two LayerNorms (4h) and the two row-parallel biases
  // (2h); learned positions (s h) and the final LayerNorm (2h).
  const int64_t replicated = L * 6 * h + s * h + 2 * h;
  const int64_t per_rank = sum_over_stages(d, testing::config(t, p, 1, 1, p));
  EXPECT_EQ(t * per_rank - (t - 1) * replicated,
            graph::model_parameters(padded) + padded.vocab * h);
}

TEST(InFlightMicroBatches, FollowsTheSchedule) {
  spec::ParallelConfig c = testing::config(1, 8, 1, 1, 64);
  EXPECT_EQ(in_flight_micro_batches(c, 0, 64), 8);
  EXPECT_EQ(in_flight_micro_batches(c, 7, 64), 1);
  EXPECT_EQ(in_flight_micro_batches(c, 0, 4), 4);
  c.set_schedule(spec::GPIPE);
  EXPECT_EQ(in_flight_micro_batches(c, 7, 64), 64);
}

// Korthikanti et al. Section 4.2.3: with interleaving the first stage holds
// L (1 + (p - 1) / (p v)) layers' worth of activations.
TEST(InFlightMicroBatches, InterleavedFirstStageFactor) {
  for (int64_t v : {2, 3, 4}) {
    const int64_t p = 4, L = 48, m = 16;
    const spec::ParallelConfig c = testing::config(1, p, 1, 1, m, spec::INTERLEAVED_1F1B, v);
    const double layers_worth = in_flight_micro_batches(c, 0, m) * (L / p);
    EXPECT_DOUBLE_EQ(layers_worth, L * (1 + (p - 1.0) / (p * v))) << "v=" << v;
    // Last stage: (v - 1) p warm-up chunk-steps plus one.
    EXPECT_DOUBLE_EQ(in_flight_micro_batches(c, p - 1, m), ((v - 1) * p + 1.0) / v);
  }
  // m = p: every step is warm-up; everything is in flight.
  const spec::ParallelConfig all = testing::config(1, 4, 1, 1, 4, spec::INTERLEAVED_1F1B, 2);
  EXPECT_EQ(in_flight_micro_batches(all, 0, 4), 4);
}

TEST(ClosedFormMemory, SumsItsTerms) {
  const Published& m = kPublished[1];  // 175B, t 8, p 8
  const graph::ModelDims d = korthikanti_dims(m);
  spec::ParallelConfig c = testing::config(8, 8, 4, 1, 64);
  c.set_sequence_parallel(true);
  c.set_recompute(spec::RECOMPUTE_SELECTIVE);
  c.set_zero_stage(1);
  const RankMemory first = closed_form_memory(d, c, 0);
  EXPECT_EQ(first.model_state.total(), model_state_bytes(stage_parameters(d, c, 0), c).total());
  EXPECT_EQ(first.activations, 8.0 * 12 * layer_activation_bytes(d, c));  // p mbs x L/p layers
  EXPECT_EQ(first.extra, 8 * embedding_activation_bytes(d, c) + recompute_working_set_bytes(d, c));
  const RankMemory last = closed_form_memory(d, c, 7);
  EXPECT_EQ(last.activations, 12 * layer_activation_bytes(d, c));
  const double head = head_activation_bytes(d, c);
  // 4 s b h / t (1 + V / h), the paper's output-layer term, with the padded vocab.
  EXPECT_EQ(head, 4.0 * 2048 * 12288 / 8 * (1 + 51200.0 / 12288));
  EXPECT_EQ(last.extra, head + std::max(0.0, recompute_working_set_bytes(d, c) - head));
  EXPECT_EQ(closed_form_peak_bytes(d, c), std::max(first.total(), last.total()));
}

// The graph's DP buckets carry exactly the rank's parameters as the memory model counts them
// (one count, graph::layer_parameters_local, serves both): fp32 gradients, 4 bytes each.
TEST(StageParameters, EqualTheGradientsTheGraphReducesOverDp) {
  for (const spec::ModelSpec& model : {testing::gpt(8, 1024, 16, 1024, 50257),
                                       testing::llama(8, 1024, 2816, 16, 4, 1024, 32000)}) {
    const spec::ParallelConfig c = testing::config(2, 2, 2, 1, 8);
    const graph::TrainingGraph g = graph::build_training_graph(model, c, graph::GraphOptions{});
    const graph::ModelDims d = graph::model_dims(model);
    std::vector<double> reduced(g.ranks.size(), 0.0);
    for (graph::OpVertex v = 0; v < num_vertices(g.graph); ++v) {
      const graph::Op& op = g.graph[v];
      if (op.group == graph::Group::kDp && op.bucket >= 0) reduced[op.rank] += op.bytes / 4;
    }
    for (size_t r = 0; r < g.ranks.size(); ++r) {
      EXPECT_EQ(reduced[r], static_cast<double>(stage_parameters(d, c, g.ranks[r].pp)))
          << model.name() << " stage " << g.ranks[r].pp;
    }
  }
}

}  // namespace
}  // namespace mpsim::memory
