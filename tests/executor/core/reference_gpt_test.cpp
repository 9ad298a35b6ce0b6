// Tests of the float64 reference GPT against finite differences, closed forms and the
// initialisation contract it shares with the GPU executor.
#include "executor/core/reference_gpt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "executor/core/gpt_params.h"
#include "executor/core/param_init.h"
#include "simulator/graph/model_math.h"
#include "tests/test_models.h"

namespace mpsim::executor {
namespace {

graph::ModelDims dims_of(int64_t layers, int64_t hidden, int64_t heads, int64_t seq, int64_t vocab,
                         bool tied) {
  spec::ModelSpec m = testing::gpt(layers, hidden, heads, seq, vocab);
  m.set_dropout(0);
  m.set_tied_embeddings(tied);
  return graph::model_dims(m);
}

// L=2, h=16, 2 heads, ffn 64, seq 8, vocab 32 (padded to 128 by the tp = 1 catalogue).
graph::ModelDims tiny(bool tied) { return dims_of(2, 16, 2, 8, 32, tied); }

// Llama style: RMSNorm, SwiGLU, rotary, GQA, untied, no biases. L=2, h=16, 4 heads of 4 in 2 kv
// groups, ffn 24, seq 8, vocab 32.
graph::ModelDims tiny_llama() { return graph::model_dims(testing::llama(2, 16, 24, 4, 2, 8, 32)); }

// A mix: LayerNorm, SwiGLU, learned positions, biases, GQA (4 heads, 2 kv), tied.
graph::ModelDims tiny_mix() {
  spec::ModelSpec m = testing::gpt(2, 16, 4, 8, 32);
  m.set_dropout(0);
  m.set_ffn_hidden_size(24);
  m.set_num_kv_heads(2);
  m.set_activation(spec::SWIGLU);
  return graph::model_dims(m);
}

std::vector<int32_t> random_tokens(int64_t batch, int64_t seq, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(batch * (seq + 1)));
  for (size_t i = 0; i < t.size(); ++i) {
    t[i] = static_cast<int32_t>(splitmix64(seed ^ splitmix64(i)) % static_cast<uint64_t>(vocab));
  }
  return t;
}

std::vector<const ParamSpec*> params_of(const GptCatalogue& c) {
  std::vector<const ParamSpec*> out;
  for (const ParamSpec& p : c.embedding) out.push_back(&p);
  for (const auto& l : c.layers)
    for (const ParamSpec& p : l) out.push_back(&p);
  for (const ParamSpec& p : c.head) out.push_back(&p);
  return out;
}

bool is_vocabulary(const ParamSpec& p) {
  return p.name == "embed.word" || p.name == "head.logits.weight";
}

// Weights drawn with a large std and norm/bias vectors moved off 1 and 0, so that every path
// through the model carries a sizeable gradient (the default init leaves many near zero).
Tensors generic_point(const GptCatalogue& c) {
  Tensors p = init_reference_parameters(c, 7);
  for (const ParamSpec* s : params_of(c)) {
    if (s->cols != 1) continue;
    std::vector<double>& v = p.at(s->name);
    for (size_t i = 0; i < v.size(); ++i) v[i] += 0.3 * init_normal(99, parameter_id(s->name), i);
  }
  return p;
}

// Fourth-order central difference of the loss in one element (step 1e-5).
double numeric_gradient(const GptCatalogue& c, Tensors& p, const std::string& name, size_t i,
                        const std::vector<int32_t>& tokens, int64_t batch) {
  const double h = 1e-5;
  double& x = p.at(name)[i];
  const double x0 = x;
  auto loss_at = [&](double v) {
    x = v;
    return reference_loss_and_grads(c, p, tokens, batch, nullptr);
  };
  const double d =
      (-loss_at(x0 + 2 * h) + 8 * loss_at(x0 + h) - 8 * loss_at(x0 - h) + loss_at(x0 - 2 * h)) /
      (12 * h);
  x = x0;
  return d;
}

void check_gradients(const graph::ModelDims& dims) {
  const GptCatalogue c = make_gpt_catalogue(dims, 1, 0.4);
  ASSERT_EQ(c.padded_vocab, 128);
  const int64_t batch = 2, V = c.dims.vocab;
  const std::vector<int32_t> tokens = random_tokens(batch, c.dims.seq, V, 3);
  Tensors p = generic_point(c);
  Tensors grads;
  reference_loss_and_grads(c, p, tokens, batch, &grads);

  int sampled = 0, significant = 0;
  for (const ParamSpec* s : params_of(c)) {
    SCOPED_TRACE(s->name);
    ASSERT_EQ(grads.at(s->name).size(), static_cast<size_t>(s->rows * s->cols));
    // Elements of the real vocabulary only; rows of tokens in the batch are always included.
    const int64_t rows = is_vocabulary(*s) ? V : s->rows;
    std::set<size_t> picks;
    for (uint64_t k = 0; k < 8; ++k) {
      picks.insert(splitmix64(parameter_id(s->name) ^ k) % static_cast<uint64_t>(rows * s->cols));
    }
    if (is_vocabulary(*s)) {
      for (size_t t : {size_t{0}, size_t{5}, size_t{9}}) {
        picks.insert(static_cast<size_t>(tokens[t] * s->cols + static_cast<int64_t>(t) % s->cols));
      }
    }
    for (size_t i : picks) {
      const double analytic = grads.at(s->name)[i];
      const double numeric = numeric_gradient(c, p, s->name, i, tokens, batch);
      // Relative error, with the denominator floored at 1e-3: below that the finite difference's
      // own rounding error (about 1e-10 here) dominates.
      const double scale = std::max({std::abs(analytic), std::abs(numeric), 1e-3});
      EXPECT_LT(std::abs(analytic - numeric) / scale, 1e-6)
          << "element " << i << ": analytic " << analytic << ", numeric " << numeric;
      ++sampled;
      if (std::abs(numeric) > 1e-3) ++significant;
    }
  }
  // The check is only worth something if most sampled gradients are well above the floor.
  EXPECT_GT(significant, sampled * 3 / 4) << significant << " of " << sampled;
}

TEST(ReferenceGpt, GradientsMatchFiniteDifferencesTied) { check_gradients(tiny(true)); }
TEST(ReferenceGpt, GradientsMatchFiniteDifferencesUntied) { check_gradients(tiny(false)); }

TEST(ReferenceGpt, GradientsMatchFiniteDifferencesLlama) {
  const graph::ModelDims d = tiny_llama();
  ASSERT_FALSE(d.layer_norm);
  ASSERT_TRUE(d.swiglu && d.rotary && !d.learned_positions && !d.bias && !d.tied);
  ASSERT_EQ(d.kv_heads, 2);
  check_gradients(d);
}

TEST(ReferenceGpt, GradientsMatchFiniteDifferencesMix) {
  const graph::ModelDims d = tiny_mix();
  ASSERT_TRUE(d.layer_norm && d.swiglu && d.learned_positions && d.bias && !d.rotary);
  ASSERT_EQ(d.kv_heads, 2);
  check_gradients(d);
}

TEST(ReferenceGpt, RotaryClosedForms) {
  // Position 0 is the identity, bit for bit.
  std::vector<double> x(8);
  for (size_t i = 0; i < x.size(); ++i) x[i] = init_normal(1, 2, i);
  std::vector<double> y = x;
  apply_rotary(y.data(), 8, 0, 10000);
  EXPECT_EQ(y, x);
  // Pair i = 1 of d = 4 with base 100 turns by position * 100^(-1/2) = 0.3 at position 3, and
  // couples element 1 with element 1 + d/2 = 3 (rotate-half, not interleaved pairs).
  std::vector<double> e1{0, 1, 0, 0};
  apply_rotary(e1.data(), 4, 3, 100);
  EXPECT_NEAR(e1[0], 0, 1e-15);
  EXPECT_NEAR(e1[1], std::cos(0.3), 1e-15);
  EXPECT_NEAR(e1[2], 0, 1e-15);
  EXPECT_NEAR(e1[3], std::sin(0.3), 1e-15);
  // Pair 0 turns by the position itself: x[0] cos - x[2] sin, x[2] cos + x[0] sin.
  std::vector<double> z{2, 0, 5, 0};
  apply_rotary(z.data(), 4, 1, 100);
  EXPECT_NEAR(z[0], 2 * std::cos(1.0) - 5 * std::sin(1.0), 1e-15);
  EXPECT_NEAR(z[2], 5 * std::cos(1.0) + 2 * std::sin(1.0), 1e-15);
  // A rotation keeps the norm; the negative position undoes it.
  y = x;
  apply_rotary(y.data(), 8, 5, 10000);
  double n0 = 0, n1 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    n0 += x[i] * x[i];
    n1 += y[i] * y[i];
  }
  EXPECT_NEAR(n1, n0, 1e-13);
  apply_rotary(y.data(), 8, -5, 10000);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-14);
}

TEST(ReferenceGpt, RotaryScoresDependOnlyOnRelativePosition) {
  // q at p and k at p' score as q at 0 and k at p' - p.
  const int64_t d = 16;
  std::vector<double> q(d), k(d);
  for (int64_t i = 0; i < d; ++i) {
    q[i] = init_normal(3, 1, i);
    k[i] = init_normal(3, 2, i);
  }
  auto score = [&](int64_t pq, int64_t pk) {
    std::vector<double> a = q, b = k;
    apply_rotary(a.data(), d, pq, 10000);
    apply_rotary(b.data(), d, pk, 10000);
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += a[i] * b[i];
    return s;
  };
  for (auto [p, pp] : {std::pair<int64_t, int64_t>{3, 7}, {7, 3}, {11, 11}, {100, 131}, {1, 0}}) {
    EXPECT_NEAR(score(p, pp), score(0, pp - p), 1e-12) << p << ", " << pp;
  }
}

TEST(ReferenceGpt, GroupedQueryAttentionEqualsAttentionWithSharedKeysAndValues) {
  // GQA (4 heads, 2 kv) is multi-head attention whose heads 2g and 2g + 1 both use group g's key
  // and value. Copy the GQA rows into the head-major [q, k, v] layout of an MHA model (kv = 4)
  // and the losses must agree.
  const graph::ModelDims gqa_dims = tiny_llama();
  graph::ModelDims mha_dims = gqa_dims;
  mha_dims.kv_heads = mha_dims.heads;
  const GptCatalogue gqa = make_gpt_catalogue(gqa_dims, 1, 0.4);
  const GptCatalogue mha = make_gpt_catalogue(mha_dims, 1, 0.4);
  const Tensors p = generic_point(gqa);
  Tensors p_mha = p;
  const int64_t d = gqa_dims.head_dim, h = gqa_dims.hidden, r = 2;
  for (int l = 0; l < gqa_dims.layers; ++l) {
    std::string name = std::to_string(l);  // "L" + to_string trips GCC 12's -Wrestrict (105651)
    name.insert(name.begin(), 'L');
    name += ".attn.qkv.weight";
    const std::vector<double>& src = p.at(name);
    std::vector<double>& dst = p_mha.at(name);
    dst.assign(static_cast<size_t>(3 * gqa_dims.heads * d * h), 0.0);
    for (int64_t q = 0; q < gqa_dims.heads; ++q) {
      const int64_t g = q / r;
      const int64_t from[3] = {g * (r + 2) * d + (q % r) * d, g * (r + 2) * d + r * d,
                               g * (r + 2) * d + (r + 1) * d};
      for (int part = 0; part < 3; ++part) {
        std::copy_n(src.begin() + from[part] * h, d * h, dst.begin() + (q * 3 + part) * d * h);
      }
    }
  }
  const std::vector<int32_t> tokens = random_tokens(2, gqa_dims.seq, gqa_dims.vocab, 13);
  const std::vector<double> a = reference_token_losses(gqa, p, tokens, 2);
  const std::vector<double> b = reference_token_losses(mha, p_mha, tokens, 2);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12) << "token " << i;
}

TEST(ReferenceGpt, PaddingRowsTakeNoPart) {
  for (bool tied : {true, false}) {
    const GptCatalogue c = make_gpt_catalogue(tiny(tied), 1, 0.4);
    const std::string name = tied ? "embed.word" : "head.logits.weight";
    const std::vector<int32_t> tokens = random_tokens(2, c.dims.seq, c.dims.vocab, 5);
    Tensors p = generic_point(c);
    Tensors grads;
    const double loss = reference_loss_and_grads(c, p, tokens, 2, &grads);
    const int64_t h = c.dims.hidden;
    for (int64_t i = c.dims.vocab * h; i < c.padded_vocab * h; ++i) {
      EXPECT_EQ(grads.at(name)[i], 0.0) << name << " element " << i;
      p.at(name)[i] = 1e3;  // huge values in the padding rows must not change anything
    }
    EXPECT_EQ(reference_loss_and_grads(c, p, tokens, 2, nullptr), loss);
  }
}

TEST(ReferenceGpt, LossAtInitialisationIsNearLnVocab) {
  // L=2, h=64, 4 heads, seq 32, vocab 256, batch 2, init std 0.02. The final norm's output has
  // unit RMS, so a logit y.E_v has std sigma = 0.02 * sqrt(64) = 0.16: the expected loss is about
  // ln V + sigma^2 / 2 = ln V + 0.013, and the mean target logit over 64 tokens scatters by about
  // 0.16 / 8 = 0.02. A tolerance of 0.1 is 5 such deviations.
  const GptCatalogue c = make_gpt_catalogue(dims_of(2, 64, 4, 32, 256, true), 1, 0.02);
  const Tensors p = init_reference_parameters(c, 1234);
  const std::vector<int32_t> tokens = random_tokens(2, 32, 256, 11);
  Tensors grads;
  const double loss = reference_loss_and_grads(c, p, tokens, 2, &grads);
  EXPECT_NEAR(loss, std::log(256.0), 0.1);
  double norm2 = 0;
  for (const auto& [name, g] : grads)
    for (double v : g) norm2 += v * v;
  EXPECT_TRUE(std::isfinite(norm2));
  EXPECT_GT(norm2, 0.0);
}

TEST(ReferenceGpt, SwigluGateIsTheEvenFc1Row) {
  // With a zero fc1 weight each token's MLP adds the constant W2 act + b2, act_j =
  // silu(b1[2j]) b1[2j + 1]: moving that constant into fc2's bias (and zeroing fc1's, so act = 0)
  // leaves every loss unchanged. Swapping gate and up would give silu(b1[2j + 1]) b1[2j].
  const GptCatalogue c = make_gpt_catalogue(tiny_mix(), 1, 0.4);
  const int64_t h = c.dims.hidden, f = c.dims.ffn;
  Tensors a = generic_point(c);
  for (int l = 0; l < c.dims.layers; ++l) {
    std::string prefix = std::to_string(l);  // see above (GCC bug 105651)
    prefix.insert(prefix.begin(), 'L');
    prefix += ".mlp.";
    std::fill(a.at(prefix + "fc1.weight").begin(), a.at(prefix + "fc1.weight").end(), 0.0);
  }
  Tensors b = a;
  for (int l = 0; l < c.dims.layers; ++l) {
    std::string prefix = std::to_string(l);
    prefix.insert(prefix.begin(), 'L');
    prefix += ".mlp.";
    const std::vector<double>& b1 = a.at(prefix + "fc1.bias");
    const std::vector<double>& w2 = a.at(prefix + "fc2.weight");
    std::vector<double>& b2 = b.at(prefix + "fc2.bias");
    for (int64_t o = 0; o < h; ++o) {
      for (int64_t j = 0; j < f; ++j) {
        const double gate = b1[2 * j], up = b1[2 * j + 1];
        b2[o] += w2[o * f + j] * gate / (1 + std::exp(-gate)) * up;
      }
    }
    std::fill(b.at(prefix + "fc1.bias").begin(), b.at(prefix + "fc1.bias").end(), 0.0);
  }
  const std::vector<int32_t> tokens = random_tokens(2, c.dims.seq, c.dims.vocab, 17);
  const std::vector<double> la = reference_token_losses(c, a, tokens, 2);
  const std::vector<double> lb = reference_token_losses(c, b, tokens, 2);
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], 1e-12) << "token " << i;
}

TEST(ReferenceGpt, LlamaLossAtInitialisationIsNearLnVocab) {
  // As for GPT above: L=2, h=64, 4 heads in 2 kv groups, ffn 172, seq 32, vocab 256, batch 2,
  // init std 0.02. The final RMSNorm's output has unit RMS, so the untied head's logits have std
  // 0.02 * sqrt(64) = 0.16 and the same 0.1 tolerance holds.
  const graph::ModelDims d = graph::model_dims(testing::llama(2, 64, 172, 4, 2, 32, 256));
  const GptCatalogue c = make_gpt_catalogue(d, 1, 0.02);
  const Tensors p = init_reference_parameters(c, 1234);
  const std::vector<int32_t> tokens = random_tokens(2, 32, 256, 11);
  Tensors grads;
  const double loss = reference_loss_and_grads(c, p, tokens, 2, &grads);
  EXPECT_NEAR(loss, std::log(256.0), 0.1);
  EXPECT_EQ(grads.size(), p.size());
  double norm2 = 0;
  for (const auto& [name, g] : grads)
    for (double v : g) norm2 += v * v;
  EXPECT_TRUE(std::isfinite(norm2));
  EXPECT_GT(norm2, 0.0);
}

TEST(ReferenceGpt, ZeroTiedEmbeddingGivesExactlyLnVocab) {
  // With a zero (tied) embedding every logit is zero whatever the layers compute.
  const GptCatalogue c = make_gpt_catalogue(tiny(true), 1, 0.4);
  Tensors p = generic_point(c);
  std::fill(p.at("embed.word").begin(), p.at("embed.word").end(), 0.0);
  const double loss =
      reference_loss_and_grads(c, p, random_tokens(2, c.dims.seq, c.dims.vocab, 1), 2, nullptr);
  EXPECT_NEAR(loss, std::log(32.0), 1e-12);
}

TEST(ReferenceGpt, BatchLossIsTheMeanOfItsSequencesAndTokens) {
  const GptCatalogue c = make_gpt_catalogue(tiny(false), 1, 0.4);
  const Tensors p = generic_point(c);
  const int64_t s = c.dims.seq;
  const std::vector<int32_t> tokens = random_tokens(2, s, c.dims.vocab, 21);
  const std::vector<int32_t> first(tokens.begin(), tokens.begin() + s + 1);
  const std::vector<int32_t> second(tokens.begin() + s + 1, tokens.end());
  const double both = reference_loss_and_grads(c, p, tokens, 2, nullptr);
  const double l1 = reference_loss_and_grads(c, p, first, 1, nullptr);
  const double l2 = reference_loss_and_grads(c, p, second, 1, nullptr);
  EXPECT_NEAR(both, (l1 + l2) / 2, 1e-13);
  const std::vector<double> per_token = reference_token_losses(c, p, tokens, 2);
  ASSERT_EQ(per_token.size(), static_cast<size_t>(2 * s));
  double sum = 0;
  for (double l : per_token) sum += l;
  EXPECT_NEAR(sum / static_cast<double>(per_token.size()), both, 1e-13);
}

TEST(ReferenceGpt, AttentionIsCausal) {
  // Token p of a sequence is the input at position p and the target at position p - 1: changing
  // it leaves the losses of positions before p - 1 bit-for-bit unchanged and changes the others.
  const GptCatalogue c = make_gpt_catalogue(tiny(true), 1, 0.4);
  const Tensors p = generic_point(c);
  const int64_t s = c.dims.seq, changed = 5;
  std::vector<int32_t> a = random_tokens(1, s, c.dims.vocab, 8);
  std::vector<int32_t> b = a;
  b[changed] = (a[changed] + 1) % static_cast<int32_t>(c.dims.vocab);
  const std::vector<double> la = reference_token_losses(c, p, a, 1);
  const std::vector<double> lb = reference_token_losses(c, p, b, 1);
  for (int64_t pos = 0; pos < s; ++pos) {
    if (pos < changed - 1) {
      EXPECT_EQ(la[pos], lb[pos]) << "position " << pos;
    } else {
      EXPECT_NE(la[pos], lb[pos]) << "position " << pos;
    }
  }
}

TEST(ReferenceGpt, InitialisationIsDeterministicAndFollowsTheCatalogue) {
  const graph::ModelDims d = dims_of(2, 64, 4, 32, 256, false);
  const GptCatalogue c = make_gpt_catalogue(d, 1, 0.02);
  const Tensors a = init_reference_parameters(c, 42);
  EXPECT_EQ(a, init_reference_parameters(c, 42));
  EXPECT_NE(a.at("L0.attn.qkv.weight"), init_reference_parameters(c, 43).at("L0.attn.qkv.weight"));
  for (const ParamSpec* s : params_of(c)) {
    SCOPED_TRACE(s->name);
    const std::vector<double>& v = a.at(s->name);
    ASSERT_EQ(v.size(), static_cast<size_t>(s->rows * s->cols));
    EXPECT_EQ(v[3],
              s->mean + static_cast<double>(s->std) * init_normal(42, parameter_id(s->name), 3));
    if (s->std == 0) {
      for (double x : v) ASSERT_EQ(x, s->mean);
      continue;
    }
    // Sample std within 5% of the catalogue's: every weight tensor here has at least 2048
    // elements, so the sampling error of the std, about 1/sqrt(2n), is below 1.6%.
    double sum = 0, sum2 = 0;
    for (double x : v) {
      sum += x;
      sum2 += x * x;
    }
    const double n = static_cast<double>(v.size());
    EXPECT_NEAR(std::sqrt(sum2 / n - (sum / n) * (sum / n)), s->std, 0.05 * s->std);
  }
  // The output projections are scaled down by sqrt(2 L) = 2.
  ASSERT_EQ(c.layers[0][4].name, "L0.attn.proj.weight");
  EXPECT_FLOAT_EQ(c.layers[0][4].std, 0.01f);
}

TEST(ReferenceGpt, InitialisationDoesNotDependOnVocabularyPadding) {
  const graph::ModelDims d = tiny(false);
  const GptCatalogue c1 = make_gpt_catalogue(d, 1, 0.02);
  const GptCatalogue c2 = make_gpt_catalogue(d, 2, 0.02);
  ASSERT_EQ(c1.padded_vocab, 128);
  ASSERT_EQ(c2.padded_vocab, 256);
  const Tensors a = init_reference_parameters(c1, 5);
  const Tensors b = init_reference_parameters(c2, 5);
  for (const std::string name : {"embed.word", "head.logits.weight"}) {
    const size_t real = static_cast<size_t>(d.vocab * d.hidden);
    ASSERT_EQ(a.at(name).size(), static_cast<size_t>(128 * d.hidden));
    ASSERT_EQ(b.at(name).size(), static_cast<size_t>(256 * d.hidden));
    EXPECT_TRUE(std::equal(a.at(name).begin(), a.at(name).begin() + real, b.at(name).begin()))
        << name;
  }
  EXPECT_EQ(a.at("L1.mlp.fc2.weight"), b.at("L1.mlp.fc2.weight"));
}

TEST(ReferenceGpt, RoundToBf16KnownValues) {
  // bf16 keeps 8 significant bits: next to 1.0 the representable values are 1 + k * 2^-7.
  const double u = std::ldexp(1.0, -7);
  EXPECT_EQ(round_to_bf16(1.0), 1.0);
  EXPECT_EQ(round_to_bf16(1.0 + std::ldexp(1.0, -9)), 1.0);          // a quarter step: down
  EXPECT_EQ(round_to_bf16(1.0 + std::ldexp(1.0, -8)), 1.0);          // half step: tie to even 1.0
  EXPECT_EQ(round_to_bf16(1.0 + 3 * std::ldexp(1.0, -9)), 1.0 + u);  // 3/4 step: up
  // 1.5 steps: a tie between 1 + u (odd last bit) and 1 + 2u (even): up to the even one.
  EXPECT_EQ(round_to_bf16(1.0 + 3 * std::ldexp(1.0, -8)), 1.0 + 2 * u);
  EXPECT_EQ(round_to_bf16(-(1.0 + 3 * std::ldexp(1.0, -9))), -(1.0 + u));  // sign is symmetric
  EXPECT_EQ(round_to_bf16(0.1), 0.10009765625);                            // bf16 0x3DCD
  EXPECT_EQ(round_to_bf16(3.0e38), std::ldexp(226.0, 120));  // bf16 0x7F62 = (1 + 98/128) 2^127
  EXPECT_TRUE(std::isinf(round_to_bf16(FLT_MAX)));  // above the largest bf16, 0x7F7F: rounds up
  EXPECT_EQ(round_to_bf16(0.0), 0.0);
  EXPECT_TRUE(std::isinf(round_to_bf16(INFINITY)));
  EXPECT_TRUE(std::isnan(round_to_bf16(NAN)));
  const Tensors t{{"w", {1.0 + 3 * std::ldexp(1.0, -9), 0.1}}};
  EXPECT_EQ(round_to_bf16(t).at("w"), (std::vector<double>{1.0 + u, 0.10009765625}));
}

TEST(ReferenceGpt, RejectsMalformedInput) {
  const GptCatalogue c = make_gpt_catalogue(tiny(true), 1, 0.02);
  const Tensors p = init_reference_parameters(c, 1);
  std::vector<int32_t> tokens = random_tokens(2, c.dims.seq, c.dims.vocab, 1);
  EXPECT_THROW(reference_loss_and_grads(c, p, tokens, 3, nullptr), std::invalid_argument);
  tokens[4] = static_cast<int32_t>(c.dims.vocab);  // a padding row id is not a token
  EXPECT_THROW(reference_loss_and_grads(c, p, tokens, 2, nullptr), std::invalid_argument);
  tokens[4] = 0;
  Tensors missing = p;
  missing.erase("L1.mlp.fc1.bias");
  EXPECT_THROW(reference_loss_and_grads(c, missing, tokens, 2, nullptr), std::invalid_argument);
  Tensors short_tensor = p;
  short_tensor.at("embed.position").pop_back();
  EXPECT_THROW(reference_loss_and_grads(c, short_tensor, tokens, 2, nullptr),
               std::invalid_argument);
  // A Llama model's untied head is required.
  const GptCatalogue llama = make_gpt_catalogue(tiny_llama(), 1, 0.02);
  Tensors no_head = init_reference_parameters(llama, 1);
  EXPECT_NO_THROW(reference_loss_and_grads(llama, no_head, tokens, 2, nullptr));
  no_head.erase("head.logits.weight");
  EXPECT_THROW(reference_loss_and_grads(llama, no_head, tokens, 2, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace mpsim::executor
