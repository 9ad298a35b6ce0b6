#include "simulator/graph/model_math.h"

#include <gtest/gtest.h>

#include "tests/test_models.h"

namespace mpsim::graph {
namespace {

// Narayanan et al. 2021, eq. for parameters: P = 12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)).
// The published count leaves out the final LayerNorm (2h parameters), which the model has.
double narayanan_parameters(double l, double h, double v, double s) {
  return 12 * l * h * h * (1 + 13 / (12 * h) + (v + s) / (12 * l * h));
}

// docs/design.md ("Model FLOPs") / Narayanan et al. 2021: F = 72 B s l h^2 (1 + s/(6h) + V/(12 h
// l)).
double narayanan_flops(double batch, double l, double h, double v, double s) {
  return 72 * batch * s * l * h * h * (1 + s / (6 * h) + v / (12 * h * l));
}

struct PublishedModel {
  const char* name;
  int64_t layers, hidden, heads;
  double published_billions;  // the size the papers quote
};

class GptFamily : public ::testing::TestWithParam<PublishedModel> {};

TEST_P(GptFamily, ParametersMatchNarayananFormula) {
  const PublishedModel& p = GetParam();
  const ModelDims d = model_dims(testing::gpt(p.layers, p.hidden, p.heads));
  const double expected = narayanan_parameters(p.layers, p.hidden, 51200, 2048) + 2.0 * p.hidden;
  EXPECT_NEAR(static_cast<double>(model_parameters(d)), expected, 1e-12 * expected);
  // And the headline size of the paper, to 3%.
  EXPECT_NEAR(model_parameters(d) / 1e9, p.published_billions, 0.03 * p.published_billions);
}

TEST_P(GptFamily, FlopsMatchNarayananFormula) {
  const PublishedModel& p = GetParam();
  const ModelDims d = model_dims(testing::gpt(p.layers, p.hidden, p.heads));
  for (int64_t batch : {1, 512, 1536}) {
    const double expected = narayanan_flops(batch, p.layers, p.hidden, 51200, 2048);
    EXPECT_NEAR(model_flops_per_iteration(d, batch), expected, 1e-12 * expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Megatron, GptFamily,
                         ::testing::Values(PublishedModel{"1.7B", 24, 2304, 24, 1.7},
                                           PublishedModel{"18B", 40, 6144, 48, 18.4},
                                           PublishedModel{"175B", 96, 12288, 96, 175},
                                           PublishedModel{"530B", 105, 20480, 128, 530},
                                           PublishedModel{"1T", 128, 25600, 160, 1008}),
                         [](const auto& info) {
                           return std::string("gpt_") + std::to_string(info.index);
                         });

TEST(ModelMath, Llama2SevenBHasPublishedParameterCount) {
  // Llama-2 7B: 6,738,415,616 parameters (the released checkpoint's count).
  const ModelDims d = model_dims(testing::llama(32, 4096, 11008, 32, 32, 4096, 32000));
  EXPECT_EQ(model_parameters(d), 6'738'415'616);
}

TEST(ModelMath, Llama3SeventyBWithGqaHasPublishedParameterCount) {
  // Llama-3 70B: 70,553,706,496 parameters (the released checkpoint's count).
  const ModelDims d = model_dims(testing::llama(80, 8192, 28672, 64, 8, 8192, 128256));
  EXPECT_EQ(model_parameters(d), 70'553'706'496);
}

TEST(ModelMath, SwigluFlopsCountThreeMatrices) {
  // Forward FLOPs of one layer per sequence: 2 s (weights) + 4 s^2 h.
  const ModelDims d = model_dims(testing::llama(1, 1024, 2816, 16, 4, 512, 32000));
  const double weights = 1024.0 * (1024 + 2 * 4 * 64) + 1024.0 * 1024 + 3.0 * 1024 * 2816;
  EXPECT_DOUBLE_EQ(layer_forward_flops(d), 2.0 * 512 * weights + 4.0 * 512 * 512 * 1024);
}

TEST(ModelMath, VocabularyPaddedLikeMegatron) {
  EXPECT_EQ(padded_vocab(50257, 1), 50304);
  EXPECT_EQ(padded_vocab(50257, 8), 51200);
  EXPECT_EQ(padded_vocab(51200, 8), 51200);
}

}  // namespace
}  // namespace mpsim::graph
