// The GPU trainer against the float64 CPU reference (executor/core/reference_gpt.h) on a tiny GPT:
// one iteration of two micro-batches (so gradient accumulation is exercised), same weights (the
// GPU's bf16 values), same tokens. Tolerances come from bf16: activations are rounded to 8
// significant bits (relative 2^-9) after every op, and a gradient passes through a few dozen
// rounded ops, so a few per cent relative error in a whole tensor's gradient is expected and
// ten per cent is a bug; the loss, one reduction of well-conditioned values, must agree to 1%.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "executor/core/gpt_params.h"
#include "executor/core/reference_gpt.h"
#include "executor/core/token_data.h"
#include "executor/cuda/trainer.h"
#include "simulator/graph/model_math.h"

namespace mpsim::executor {
namespace {

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

spec::ModelSpec tiny_model(bool tied) {
  spec::ModelSpec m;
  m.set_name("reference-tiny");
  m.set_num_layers(2);
  m.set_hidden_size(64);
  m.set_ffn_hidden_size(256);
  m.set_num_attention_heads(4);
  m.set_num_kv_heads(4);
  m.set_seq_length(32);
  m.set_vocab_size(256);
  m.set_norm(spec::LAYER_NORM);
  m.set_activation(spec::GELU);
  m.set_position_embedding(spec::LEARNED);
  m.set_tied_embeddings(tied);
  m.set_linear_bias(true);
  m.set_dtype(spec::BF16);
  return m;
}

// Llama style: RMSNorm, SwiGLU, rotary positions, 4 query heads on 2 kv heads, untied, no biases.
spec::ModelSpec tiny_llama() {
  spec::ModelSpec m = tiny_model(false);
  m.set_name("reference-tiny-llama");
  m.set_num_kv_heads(2);
  m.set_ffn_hidden_size(176);
  m.set_norm(spec::RMS_NORM);
  m.set_activation(spec::SWIGLU);
  m.set_position_embedding(spec::ROTARY);
  m.set_linear_bias(false);
  m.set_rotary_base(10000);
  return m;
}

TrainOptions one_gpu(const spec::ModelSpec& model, spec::Recompute recompute) {
  TrainOptions o;
  o.model = model;
  o.config.set_num_gpus(1);
  o.config.set_tensor_parallel(1);
  o.config.set_pipeline_parallel(1);
  o.config.set_data_parallel(1);
  o.config.set_micro_batch_size(2);
  o.config.set_global_batch_size(4);
  o.config.set_schedule(spec::ONE_F_ONE_B);
  o.config.set_recompute(recompute);
  o.synthetic = true;
  o.seed = 7;
  o.init_std = 0.1;  // larger than GPT's 0.02 so attention is not uniform and every path matters
  o.nvtx = false;
  return o;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

void compare_one(const TrainOptions& options) {
  SCOPED_TRACE(options.config.attention() == spec::ATTENTION_UNFUSED ? "unfused attention"
                                                                     : "flash attention");
  Trainer trainer(options, 0, new_nccl_id());
  const IterationReport report = trainer.run_iteration(1, false);
  const auto weights = trainer.weights();
  const auto gradients = trainer.gradients();

  const graph::ModelDims dims = graph::model_dims(options.model);
  const GptCatalogue catalogue = make_gpt_catalogue(dims, 1, options.init_std);
  Tensors params;
  for (const auto& [name, values] : weights)
    params[name] = std::vector<double>(values.begin(), values.end());
  const int64_t batch = options.config.global_batch_size();
  std::vector<int32_t> tokens(static_cast<size_t>(batch * (dims.seq + 1)));
  make_synthetic_source(dims.vocab, dims.seq, options.seed)->fill(0, 0, batch, tokens.data());
  Tensors expected;
  const double loss = reference_loss_and_grads(catalogue, params, tokens, batch, &expected);

  EXPECT_NEAR(report.loss, loss, 0.01 * loss);
  ASSERT_EQ(gradients.size(), expected.size());
  for (const auto& [name, grad] : gradients) {
    ASSERT_TRUE(expected.count(name)) << name;
    const std::vector<double>& want = expected.at(name);
    ASSERT_EQ(grad.size(), want.size()) << name;
    std::vector<double> diff(want.size());
    for (size_t i = 0; i < want.size(); ++i) diff[i] = grad[i] - want[i];
    const double relative = norm(diff) / std::max(norm(want), 1e-12);
    EXPECT_LT(relative, 0.05) << name << ": |gpu - reference| / |reference| = " << relative;
    std::printf("%-24s relative gradient error %.4f\n", name.c_str(), relative);
  }
  double total = 0;
  for (const auto& [name, g] : expected) total += norm(g) * norm(g);
  EXPECT_NEAR(report.grad_norm, std::sqrt(total), 0.03 * std::sqrt(total));
}

// Both attention cores, fused (cuDNN) and unfused, against the same float64 reference.
void compare_with_reference(TrainOptions options) {
  for (spec::Attention attention : {spec::ATTENTION_FLASH, spec::ATTENTION_UNFUSED}) {
    options.config.set_attention(attention);
    compare_one(options);
  }
}

TEST(ModelReferenceTest, LossAndEveryGradientMatchFloat64Reference) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  compare_with_reference(one_gpu(tiny_model(true), spec::RECOMPUTE_NONE));
}

TEST(ModelReferenceTest, UntiedHeadMatchesReference) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  compare_with_reference(one_gpu(tiny_model(false), spec::RECOMPUTE_NONE));
}

TEST(ModelReferenceTest, LlamaStyleModelMatchesReference) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  compare_with_reference(one_gpu(tiny_llama(), spec::RECOMPUTE_NONE));
  compare_with_reference(one_gpu(tiny_llama(), spec::RECOMPUTE_SELECTIVE));
}

TEST(ModelReferenceTest, RecomputationGivesTheSameGradients) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  compare_with_reference(one_gpu(tiny_model(true), spec::RECOMPUTE_SELECTIVE));
  compare_with_reference(one_gpu(tiny_model(true), spec::RECOMPUTE_FULL));
}

}  // namespace
}  // namespace mpsim::executor
