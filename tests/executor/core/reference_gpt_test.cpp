// Tests of the float64 reference GPT against finite differences, closed forms and the
// initialisation contract it shares with the GPU executor.
#include "executor/core/reference_gpt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <set>
#include <string>
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

void check_gradients(bool tied) {
  const GptCatalogue c = make_gpt_catalogue(tiny(tied), 1, 0.4);
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

TEST(ReferenceGpt, GradientsMatchFiniteDifferencesTied) { check_gradients(true); }
TEST(ReferenceGpt, GradientsMatchFiniteDifferencesUntied) { check_gradients(false); }

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
}

}  // namespace
}  // namespace mpsim::executor
