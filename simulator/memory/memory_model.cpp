#include "simulator/memory/memory_model.h"

#include <algorithm>

#include "simulator/graph/layer_ops.h"

namespace mpsim::memory {
namespace {

constexpr double kMaskBytes = 1;       // dropout masks: one byte per element
constexpr double kLogitBytes = 4;      // the vocab-parallel cross entropy works on fp32 logits
constexpr double kBf16LogitBytes = 2;  // LossMemory::kBf16Logits: the logits as the GEMM wrote them
constexpr double kRowStatsBytes = 8;   // ... and per token the fp32 row max and sum of exponentials
constexpr double kLseBytes = 4;        // flash attention's log-sum-exp, fp32
constexpr double kWeightBytes = 2;     // bf16 weights
constexpr double kGradBytes = 4;       // fp32 main gradients
constexpr double kOptimizerBytes = 12;      // fp32 master weights, Adam m and v
constexpr double kFp8WeightCacheBytes = 2;  // FP8 weight copy and its transpose

int64_t chunks(const spec::ParallelConfig& c) {
  return c.schedule() == spec::INTERLEAVED_1F1B ? std::max<int64_t>(1, c.virtual_pipeline_stages())
                                                : 1;
}

int64_t micro_batches(const spec::ParallelConfig& c) {
  return c.global_batch_size() / (c.micro_batch_size() * c.data_parallel());
}

// Tokens of one micro-batch on one rank: its sequences, split over the CP group.
double local_tokens(const graph::ModelDims& d, const spec::ParallelConfig& config) {
  const int64_t cp = std::max<int64_t>(1, config.context_parallel());
  return static_cast<double>(config.micro_batch_size() * d.seq / cp);
}

}  // namespace

int64_t stage_parameters(const graph::ModelDims& d, const spec::ParallelConfig& config,
                         int64_t stage) {
  const int64_t t = config.tensor_parallel();
  const int64_t p = config.pipeline_parallel();
  const int64_t vocab_local = graph::padded_vocab(d.vocab, t) / t;
  int64_t params = d.layers / p * graph::layer_parameters_local(d, t);
  if (stage == 0) {
    params += vocab_local * d.hidden;
    if (d.learned_positions) params += d.seq * d.hidden;
  }
  if (stage == p - 1) {
    params += graph::norm_parameters(d);
    if (!d.tied || p > 1) params += vocab_local * d.hidden;
  }
  return params;
}

ModelStateBytes model_state_bytes(int64_t parameters, const spec::ParallelConfig& config) {
  const double n = static_cast<double>(parameters);
  // Sharded over DP x CP, whose ranks hold the same weights.
  const double dp = static_cast<double>(std::max<int64_t>(1, config.data_parallel()) *
                                        std::max<int64_t>(1, config.context_parallel()));
  const int64_t zero = config.zero_stage();
  ModelStateBytes b;
  b.weights = kWeightBytes * n / (zero >= 3 ? dp : 1);
  b.gradients = kGradBytes * n / (zero >= 2 ? dp : 1);
  // The offloaded share of the optimizer state lives in host memory.
  b.optimizer = (1 - config.optimizer_offload()) * kOptimizerBytes * n / (zero >= 1 ? dp : 1);
  return b;
}

ModelStateBytes stage_model_state_bytes(const graph::ModelDims& d,
                                        const spec::ParallelConfig& config, int64_t stage) {
  ModelStateBytes b = model_state_bytes(stage_parameters(d, config, stage), config);
  if (d.fp8) {
    const double layers = static_cast<double>(d.layers / config.pipeline_parallel());
    b.fp8_weights =
        kFp8WeightCacheBytes * layers *
        static_cast<double>(graph::layer_linear_weights_local(d, config.tensor_parallel()));
  }
  return b;
}

double LayerTensors::total() const {
  return attn_norm_input + qkv_input + qkv + attn_scores + attn_output + proj_input +
         attn_dropout_mask + mlp_norm_input + fc1_input + act_input + fc2_input + mlp_dropout_mask;
}

LayerTensors layer_tensors(const graph::ModelDims& d, const spec::ParallelConfig& config) {
  const double t = static_cast<double>(config.tensor_parallel());
  const double sp = config.sequence_parallel() ? t : 1;  // divides what lies outside TP regions
  const double tokens = local_tokens(d, config);
  const double e = d.bytes_per_element;
  const double g = d.fp8 ? 1 : e;  // a linear layer's saved input
  const double h = static_cast<double>(d.hidden);
  const double q_width = static_cast<double>(d.heads * d.head_dim);
  const double kv_width = static_cast<double>(d.kv_heads * d.head_dim);
  const double fc1_out = static_cast<double>(d.swiglu ? 2 * d.ffn : d.ffn);
  const bool dropout = d.dropout > 0;
  // Per micro-batch: a b s^2 score elements, a b s log-sum-exp values (before TP).
  // The unfused core (no CP: context parallelism needs the fused one) keeps s x s scores.
  const double scores = static_cast<double>(d.heads) * tokens * static_cast<double>(d.seq);
  const double heads_tokens = static_cast<double>(d.heads) * tokens;

  LayerTensors x;
  x.attn_norm_input = e * tokens * h / sp;
  x.qkv_input = g * tokens * h / sp;
  x.qkv = e * tokens * (q_width + 2 * kv_width) / t;
  if (graph::is_flash(config.attention())) {
    // Grouped-query attention: the query heads' own copy (attn.split), which the core saves.
    if (d.kv_heads < d.heads) x.qkv += e * tokens * q_width / t;
    x.attn_scores = kLseBytes * heads_tokens / t;
  } else {
    // softmax output; with dropout also its mask and output (attention over V reads the latter).
    x.attn_scores = (dropout ? 2 * e + kMaskBytes : e) * scores / t;
  }
  if (graph::is_flash(config.attention())) {
    // The fused core keeps its output (BF16) for its own backward; the projection reads that
    // tensor, or (FP8) saves its FP8 copy beside it.
    x.attn_output = e * tokens * q_width / t;
    x.proj_input = d.fp8 ? tokens * q_width / t : 0;
  } else {
    x.proj_input = g * tokens * q_width / t;
  }
  x.attn_dropout_mask = dropout ? kMaskBytes * tokens * h / sp : 0;
  x.mlp_norm_input = e * tokens * h / sp;
  x.fc1_input = g * tokens * h / sp;
  x.act_input = e * tokens * fc1_out / t;
  x.fc2_input = g * tokens * static_cast<double>(d.ffn) / t;
  x.mlp_dropout_mask = dropout ? kMaskBytes * tokens * h / sp : 0;
  return x;
}

double layer_activation_bytes(const graph::ModelDims& d, const spec::ParallelConfig& config) {
  const LayerTensors x = layer_tensors(d, config);
  switch (config.recompute()) {
    case spec::RECOMPUTE_FULL:
      return x.attn_norm_input;
    case spec::RECOMPUTE_SELECTIVE:
      return x.total() - x.attn_scores;
    default:
      return x.total();
  }
}

double recompute_working_set_bytes(const graph::ModelDims& d, const spec::ParallelConfig& config) {
  const LayerTensors x = layer_tensors(d, config);
  switch (config.recompute()) {
    case spec::RECOMPUTE_FULL:
      return x.total() - x.attn_norm_input;
    case spec::RECOMPUTE_SELECTIVE: {
      // Freed by the layer's backward before the attention core is recomputed.
      const double freed = x.mlp_dropout_mask + x.fc2_input + x.act_input + x.fc1_input +
                           x.mlp_norm_input + x.attn_dropout_mask + x.proj_input;
      return std::max(0.0, x.attn_scores - freed);
    }
    default:
      return 0;
  }
}

double embedding_activation_bytes(const graph::ModelDims& d, const spec::ParallelConfig& config) {
  if (d.dropout <= 0) return 0;
  const double sp = config.sequence_parallel() ? static_cast<double>(config.tensor_parallel()) : 1;
  return kMaskBytes * local_tokens(d, config) * static_cast<double>(d.hidden) / sp;
}

double head_activation_bytes(const graph::ModelDims& d, const spec::ParallelConfig& config,
                             LossMemory loss) {
  const int64_t t = config.tensor_parallel();
  const double sp = config.sequence_parallel() ? static_cast<double>(t) : 1;
  const double tokens = local_tokens(d, config);
  const double inputs = 2.0 * d.bytes_per_element * tokens * static_cast<double>(d.hidden) / sp;
  const double columns = static_cast<double>(graph::padded_vocab(d.vocab, t) / t);
  const double kept = loss == LossMemory::kFp32Logits
                          ? kLogitBytes * tokens * columns
                          : kBf16LogitBytes * tokens * columns + kRowStatsBytes * tokens;
  return inputs + kept;
}

namespace {

// A stage's forward order: `warmup` forwards, then (forward, backward) pairs, then the remaining
// backwards. What it holds is largest right after each steady-state forward (or after the last
// forward when every step is warm-up); that set is what the following backward starts from.
struct StageOrder {
  int64_t p = 1, v = 1;  // stages, chunks
  int64_t warmup = 0, total = 0;
  int64_t held() const { return std::min(warmup + 1, total); }  // chunk-steps at the peak
  int64_t steady() const { return total - warmup; }
  // Forwards of chunk c among the first n: forward k works on chunk (k mod p v) / p.
  int64_t forwards(int64_t n, int64_t c) const {
    return n / (p * v) * p + std::clamp(n % (p * v) - c * p, int64_t{0}, p);
  }
  // Backward k works on chunk v - 1 - (k mod p v) / p.
  int64_t backwards(int64_t n, int64_t c) const { return forwards(n, v - 1 - c); }
};

StageOrder stage_order(const spec::ParallelConfig& config, int64_t stage, int64_t m) {
  StageOrder o;
  o.p = config.pipeline_parallel();
  o.v = chunks(config);
  o.total = m * o.v;
  switch (config.schedule()) {
    case spec::GPIPE:
      o.warmup = m;
      break;
    case spec::INTERLEAVED_1F1B:
      o.warmup = std::min((o.p - stage - 1) * 2 + (o.v - 1) * o.p, o.total);
      break;
    default:
      o.warmup = std::min(o.p - stage - 1, m);
      break;
  }
  return o;
}

// Embedding / head buffers and the recompute working set at the stage's peak: the maximum over
// the steady state's backwards (periodic in p v steps) of what the first and last chunks hold,
// the working set coming on top once the backward's own head buffers are freed.
double peak_extras(const StageOrder& o, bool first, bool last, double embedding, double head,
                   double working_set) {
  const int64_t period = o.v == 1 ? 1 : std::min(o.steady(), o.p * o.v);
  double best = 0;
  for (int64_t j = 0; j < std::max<int64_t>(1, period); ++j) {
    const int64_t n = o.steady() > 0 ? o.warmup + 1 + j : o.total;  // forwards issued
    const int64_t first_held = first ? o.forwards(n, 0) - o.backwards(j, 0) : 0;
    const int64_t last_held = last ? o.forwards(n, o.v - 1) - o.backwards(j, o.v - 1) : 0;
    // Backward j works on the last chunk: on the last stage it frees its head buffers before
    // its layers' backward recomputes anything.
    const bool frees_head = last && (j % (o.p * o.v)) / o.p == 0;
    best = std::max(best, embedding * static_cast<double>(first_held) +
                              head * static_cast<double>(last_held) +
                              std::max(0.0, working_set - (frees_head ? head : 0.0)));
  }
  return best;
}

}  // namespace

double in_flight_micro_batches(const spec::ParallelConfig& config, int64_t stage, int64_t m) {
  const StageOrder o = stage_order(config, stage, m);
  return static_cast<double>(o.held()) / static_cast<double>(o.v);
}

RankMemory closed_form_memory(const graph::ModelDims& d, const spec::ParallelConfig& config,
                              int64_t stage, LossMemory loss) {
  const int64_t p = config.pipeline_parallel();
  const int64_t m = micro_batches(config);
  RankMemory r;
  r.model_state = stage_model_state_bytes(d, config, stage);
  r.activations = in_flight_micro_batches(config, stage, m) * static_cast<double>(d.layers / p) *
                  layer_activation_bytes(d, config);
  r.extra =
      peak_extras(stage_order(config, stage, m), stage == 0, stage == p - 1,
                  embedding_activation_bytes(d, config), head_activation_bytes(d, config, loss),
                  recompute_working_set_bytes(d, config));
  return r;
}

double closed_form_peak_bytes(const graph::ModelDims& d, const spec::ParallelConfig& config,
                              LossMemory loss) {
  double peak = 0;
  for (int64_t stage = 0; stage < config.pipeline_parallel(); ++stage)
    peak = std::max(peak, closed_form_memory(d, config, stage, loss).total());
  return peak;
}

}  // namespace mpsim::memory
