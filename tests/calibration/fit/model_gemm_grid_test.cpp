// The GEMM grid derived from the models' graphs: every model GEMM's m, n and k lies within the
// sampled axes (clipped at max_dim), each axis is bounded and holds only sizes the models use,
// the models outside the parameter range and the TP sizes a model refuses are left out (noted),
// and the bench's GEMM time for the grid of the whole models/ folder stays within budget.
#include "calibration/fit/model_gemm_grid.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {
namespace {

using Values = std::vector<int64_t>;

std::vector<spec::ModelSpec> load(const std::vector<std::string>& names) {
  std::vector<spec::ModelSpec> models;
  for (const std::string& name : names) models.push_back(spec::load_model_spec(name));
  return models;
}

const spec::Hardware& h100() {
  static const spec::Hardware hw = spec::load_hardware("h100-sxm");
  return hw;
}

// Every shape's (clipped) sizes lie within the axes; every axis value is a model size or the clip.
void expect_covers(const GemmGrid& grid, int64_t max_dim) {
  std::set<int64_t> used_m, used_n, used_k;
  for (const GemmShapeKey& s : grid.shapes) {
    used_m.insert(std::min(s[0], max_dim));
    used_n.insert(std::min(s[1], max_dim));
    used_k.insert(std::min(s[2], max_dim));
  }
  const std::array<std::pair<const Values*, const std::set<int64_t>*>, 3> axes = {
      {{&grid.m, &used_m}, {&grid.n, &used_n}, {&grid.k, &used_k}}};
  for (const auto& [axis, used] : axes) {
    ASSERT_FALSE(axis->empty());
    EXPECT_TRUE(std::is_sorted(axis->begin(), axis->end()));
    EXPECT_EQ(axis->front(), *used->begin());
    EXPECT_EQ(axis->back(), *used->rbegin());
    for (const int64_t v : *axis) EXPECT_TRUE(used->count(v)) << v << " is no model's size";
  }
}

TEST(ModelGemmGridTest, AxesCoverEveryModelGemm) {
  const GemmGrid grid = model_gemm_grid(
      load({"gpt2-124m", "gpt3-1.7b", "llama2-7b", "llama3-8b", "gpt3-18b", "gpt-bytes-tiny"}),
      h100());
  // gpt3-18b is above 1e10 parameters, gpt-bytes-tiny below 1e8.
  ASSERT_EQ(grid.models.size(), 4u);
  EXPECT_EQ(grid.models[0], "gpt2-124m (1.24e+08 parameters)");
  EXPECT_EQ(grid.models[3].rfind("llama3-8b (8.03e+09", 0), 0u) << grid.models[3];
  EXPECT_EQ(grid.tensor_parallel, (Values{1, 2, 4, 8}));  // h100-sxm: 8 GPUs per node
  const GemmGridOptions defaults;
  expect_covers(grid, defaults.max_dim);
  for (const Values* axis : {&grid.m, &grid.n, &grid.k}) {
    EXPECT_LE(axis->size(), static_cast<std::size_t>(defaults.max_values));
    EXPECT_GE(axis->size(), 5u);
  }
  // Tokens reach 16 x 8192 (llama3-8b) and the vocabulary 128256: every axis is clipped.
  EXPECT_EQ(grid.m.back(), 32768);
  EXPECT_EQ(grid.n.back(), 32768);
  EXPECT_EQ(grid.k.back(), 32768);
  // The smallest: gpt2-124m at TP 4 (its largest), attn.proj k = 768 / 4 and qkv.wgrad
  // m = 3 x 768 / 4.
  EXPECT_EQ(grid.k.front(), 192);
  EXPECT_EQ(grid.m.front(), 576);
  // The graph's shapes, e.g. llama3-8b at TP 1, micro-batch 1: fc1 [8192 x 28672 x 4096] and
  // its weight gradient [28672 x 4096 x 8192].
  EXPECT_TRUE(
      std::binary_search(grid.shapes.begin(), grid.shapes.end(), GemmShapeKey{8192, 28672, 4096}));
  EXPECT_TRUE(
      std::binary_search(grid.shapes.begin(), grid.shapes.end(), GemmShapeKey{28672, 4096, 8192}));
  // gpt2-124m's 12 heads do not split 8 ways; Llama 2 7B's 32 and gpt3-1.7b's 24 do at TP <= 8.
  ASSERT_EQ(grid.notes.size(), 1u);
  EXPECT_EQ(grid.notes[0].rfind("gpt2-124m at TP 8 left out: ", 0), 0u) << grid.notes[0];
}

// The grid of the whole folder, as `mpsim calibrate` derives it: the bench runs every shape in
// 3 layouts, 2 warm-ups + 5 repetitions each; at 500 TFLOP/s (below the H100's measured 600-800
// on large GEMMs) that stays under a minute, within the bench's 2-minute budget.
TEST(ModelGemmGridTest, TheModelsFolderGivesABoundedGrid) {
  const GemmGrid grid = model_gemm_grid(load_model_folder("models"), h100());
  expect_covers(grid, GemmGridOptions{}.max_dim);
  const double shapes = static_cast<double>(grid.m.size() * grid.n.size() * grid.k.size());
  EXPECT_LE(shapes, 512);
  const double seconds = 3 * 7 * grid.flop_per_layout() / 500e12;
  EXPECT_LT(seconds, 60) << comma_list(grid.m) << " x " << comma_list(grid.n) << " x "
                         << comma_list(grid.k);
  std::printf("models/ grid: m %s, n %s, k %s; %.0f s of GEMMs at 500 TFLOP/s\n",
              comma_list(grid.m).c_str(), comma_list(grid.n).c_str(), comma_list(grid.k).c_str(),
              seconds);
  // The largest shape's buffers fit the bench's 8 GiB limit (bf16 inputs, fp32 wgrad output).
  const double largest = 2.0 * grid.m.back() * grid.k.back() + 2.0 * grid.n.back() * grid.k.back() +
                         4.0 * grid.m.back() * grid.n.back();
  EXPECT_LE(largest, 8.0 * (1 << 30));
}

TEST(ModelGemmGridTest, AxisSampling) {
  // Few enough values: all of them, clipped and without repeats.
  EXPECT_EQ(sample_gemm_axis({4096, 768, 100000, 50000}, 32768, 8), (Values{768, 4096, 32768}));
  // Log-spaced targets 1, 16, 256 picked exactly.
  EXPECT_EQ(sample_gemm_axis({1, 2, 4, 8, 16, 32, 64, 128, 256}, 1000, 3), (Values{1, 16, 256}));
  // The value nearest each target in log scale: targets 100, 1000, 10000.
  EXPECT_EQ(sample_gemm_axis({100, 300, 900, 1200, 5000, 10000}, 1 << 20, 3),
            (Values{100, 900, 10000}));
}

TEST(ModelGemmGridTest, BadOptionsAndEmptySelectionsAreRefused) {
  GemmGridOptions options;
  options.max_values = 1;
  EXPECT_THROW(model_gemm_grid(load({"llama2-7b"}), h100(), options), std::invalid_argument);
  try {
    model_gemm_grid(load({"gpt3-175b"}), h100());
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()),
              "GEMM grid: none of the 1 models has between 1e+08 and 1e+10 parameters");
  }
  EXPECT_THROW(load_model_folder("no/such/folder"), spec::SpecError);
}

}  // namespace
}  // namespace mpsim::calibration
