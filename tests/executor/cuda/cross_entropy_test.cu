// The vocabulary-parallel cross-entropy (executor/cuda/cross_entropy.h) against float64 loops on
// the host, on random inputs with fixed seeds (conventions in kernel_test_support.h). Skips without
// a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "executor/cuda/cross_entropy.h"
#include "tests/executor/cuda/kernel_test_support.h"

namespace mpsim::executor::kernels {
namespace {

struct CrossEntropyCase {
  int64_t rows, vocab, padded;  // padded vocabulary, split in two halves for TP 2
};
std::string name(const CrossEntropyCase& c) {
  return std::to_string(c.rows) + " rows, vocab " + std::to_string(c.vocab) + " padded to " +
         std::to_string(c.padded);
}

// Odd and even shard widths (the element-wise and vectorised paths), padding inside the last
// shard, GPT-2's vocabulary, and a last shard made only of padding (64 + 64 columns, vocab 60).
const std::vector<CrossEntropyCase> kCrossEntropyCases = {
    {37, 1000, 1008}, {16, 997, 1000}, {8, 50257, 50304}, {5, 60, 128}};

// Random logits [rows, padded], rounded to bf16; padding columns are 100, so any that leaked into
// the max or the sums would dominate them. Targets cover ids 0 and vocab - 1.
struct CrossEntropyInput {
  std::vector<bf16> logits;
  std::vector<int32_t> targets;
};
CrossEntropyInput cross_entropy_input(const CrossEntropyCase& cs) {
  std::vector<float> raw = randn(cs.rows * cs.padded, 101, 3.0);
  for (int64_t r = 0; r < cs.rows; ++r)
    for (int64_t j = cs.vocab; j < cs.padded; ++j) raw[r * cs.padded + j] = 100.f;
  std::mt19937 gen(102);
  std::vector<int32_t> targets(cs.rows);
  for (auto& t : targets) t = static_cast<int32_t>(gen() % cs.vocab);
  targets[0] = 0;
  targets[cs.rows - 1] = static_cast<int32_t>(cs.vocab - 1);
  return {to_bf16(raw), targets};
}

// Float64 reference of one shard's partial: over real columns [start, min(start + local, vocab)),
// the row max (-inf when there is none), the sum of exp(logit - max) and the target's logit if
// the shard owns it, else 0.
struct CrossEntropyPartialReference {
  std::vector<double> row_max, sums, target;  // [rows] each
};
CrossEntropyPartialReference cross_entropy_partial_reference(const CrossEntropyCase& cs,
                                                             const CrossEntropyInput& in,
                                                             int64_t start, int64_t local) {
  const int64_t end = std::min(start + local, cs.vocab);
  CrossEntropyPartialReference ref{std::vector<double>(cs.rows, -INFINITY),
                                   std::vector<double>(cs.rows, 0.0),
                                   std::vector<double>(cs.rows, 0.0)};
  for (int64_t r = 0; r < cs.rows; ++r) {
    const bf16* l = &in.logits[r * cs.padded];
    for (int64_t j = start; j < end; ++j)
      ref.row_max[r] = std::max(ref.row_max[r], double{__bfloat162float(l[j])});
    for (int64_t j = start; j < end; ++j)
      ref.sums[r] += std::exp(__bfloat162float(l[j]) - ref.row_max[r]);
    if (in.targets[r] >= start && in.targets[r] < end)
      ref.target[r] = __bfloat162float(l[in.targets[r]]);
  }
  return ref;
}

// Float64 loss summed over rows and gradient [rows, padded] of the whole vocabulary.
struct CrossEntropyReference {
  CrossEntropyPartialReference global;
  double loss = 0.0;
  std::vector<double> grad;
};
CrossEntropyReference cross_entropy_reference(const CrossEntropyCase& cs,
                                              const CrossEntropyInput& in, double grad_scale) {
  CrossEntropyReference ref{cross_entropy_partial_reference(cs, in, 0, cs.padded), 0.0,
                            std::vector<double>(cs.rows * cs.padded, 0.0)};
  const CrossEntropyPartialReference& g = ref.global;
  for (int64_t r = 0; r < cs.rows; ++r) {
    ref.loss += std::log(g.sums[r]) + g.row_max[r] - g.target[r];
    for (int64_t j = 0; j < cs.vocab; ++j)
      ref.grad[r * cs.padded + j] =
          grad_scale *
          (std::exp(__bfloat162float(in.logits[r * cs.padded + j]) - g.row_max[r]) / g.sums[r] -
           (j == in.targets[r]));
  }
  return ref;
}

// What the executor does on `tp` ranks, with the all-gather done on the host: every shard writes
// its partial block, the blocks are concatenated in rank order, combined on the GPU, and every
// shard's gradient follows from the combined max and sums. The last shard's logits start one
// element past a 16-byte boundary when `unaligned_last` (the element-wise path).
struct CrossEntropyRun {
  std::vector<std::vector<float>> partials;  // per shard: [3 * rows]
  std::vector<float> row_max, sums;          // combined: [rows], [2 * rows]
  double loss = 0.0;
  std::vector<double> grad;  // [rows, padded]
};
CrossEntropyRun run_cross_entropy(const CrossEntropyCase& cs, const CrossEntropyInput& in, int tp,
                                  float grad_scale, bool unaligned_last) {
  const int64_t rows = cs.rows, local = cs.padded / tp;
  DeviceArray<int32_t> d_targets(in.targets);
  std::vector<std::unique_ptr<DeviceArray<bf16>>> d_logits;
  std::vector<int64_t> offsets;
  CrossEntropyRun out;
  std::vector<float> gathered;
  for (int k = 0; k < tp; ++k) {
    const int64_t start = k * local, offset = unaligned_last && k == tp - 1 ? 1 : 0;
    std::vector<bf16> slice(offset + rows * local);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < local; ++j)
        slice[offset + r * local + j] = in.logits[r * cs.padded + start + j];
    d_logits.push_back(std::make_unique<DeviceArray<bf16>>(slice));
    offsets.push_back(offset);
    DeviceArray<float> d_partial(3 * rows);
    cross_entropy_partial(d_logits[k]->get() + offset, d_targets.get(), d_partial.get(), rows,
                          local, start, cs.vocab, nullptr);
    out.partials.push_back(d_partial.download());
    gathered.insert(gathered.end(), out.partials[k].begin(), out.partials[k].end());
  }
  // Combining twice onto 1.5 checks that the loss accumulates.
  DeviceArray<float> d_gathered(gathered), d_row_max(rows), d_sums(2 * rows);
  DeviceArray<float> d_loss(std::vector<float>{1.5f});
  for (int i = 0; i < 2; ++i)
    cross_entropy_combine(d_gathered.get(), tp, d_row_max.get(), d_sums.get(), d_loss.get(), rows,
                          nullptr);
  out.row_max = d_row_max.download();
  out.sums = d_sums.download();
  out.loss = (double{d_loss.download()[0]} - 1.5) / 2;
  out.grad.assign(rows * cs.padded, 0.0);
  for (int k = 0; k < tp; ++k) {
    const int64_t start = k * local;
    cross_entropy_backward(d_logits[k]->get() + offsets[k], d_targets.get(), d_row_max.get(),
                           d_sums.get(), rows, local, start, cs.vocab, grad_scale, nullptr);
    const std::vector<double> g = to_double(d_logits[k]->download());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < local; ++j)
        out.grad[r * cs.padded + start + j] = g[offsets[k] + r * local + j];
  }
  return out;
}

// Sums of exp are within 2e-5 (fp32 accumulation of up to 50k terms, in a different order).
constexpr double kSumRtol = 2e-5;

void expect_loss_near(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-5 * std::abs(want) + 1e-4) << what;
}

// The combined statistics and loss against float64; the target logit and the row max are exact.
void expect_combined_matches(const CrossEntropyRun& run, const CrossEntropyReference& ref,
                             int64_t rows, const std::string& what) {
  const std::vector<double> sums = to_double(run.sums);
  expect_close(to_double(run.row_max), ref.global.row_max, 0.0, 0.0, what + " row max");
  expect_close(std::vector<double>(sums.begin(), sums.begin() + rows), ref.global.sums, kSumRtol,
               0.0, what + " sums");
  expect_close(std::vector<double>(sums.begin() + rows, sums.end()), ref.global.target, 0.0, 0.0,
               what + " target logits");
  expect_loss_near(run.loss, ref.loss, what + " loss");
}

int64_t nonzero_padding_grads(const CrossEntropyRun& run, const CrossEntropyCase& cs) {
  int64_t n = 0;
  for (int64_t r = 0; r < cs.rows; ++r)
    for (int64_t j = cs.vocab; j < cs.padded; ++j) n += run.grad[r * cs.padded + j] != 0.0;
  return n;
}

TEST_F(KernelsTest, CrossEntropyOnOneShardMatchesFloat64) {
  for (const CrossEntropyCase& cs : kCrossEntropyCases) {
    SCOPED_TRACE(name(cs));
    const CrossEntropyInput in = cross_entropy_input(cs);
    const float grad_scale = 1.0f / static_cast<float>(cs.rows);
    const CrossEntropyReference ref = cross_entropy_reference(cs, in, grad_scale);
    for (bool unaligned : {false, true}) {
      SCOPED_TRACE(unaligned ? "unaligned logits" : "aligned logits");
      const CrossEntropyRun one = run_cross_entropy(cs, in, 1, grad_scale, unaligned);
      // With one rank the partial already is the global statistics; combining keeps them.
      const std::vector<float>& p = one.partials[0];
      EXPECT_EQ(std::vector<float>(p.begin(), p.begin() + cs.rows), one.row_max);
      EXPECT_EQ(std::vector<float>(p.begin() + cs.rows, p.end()), one.sums);
      expect_combined_matches(one, ref, cs.rows, "one shard");
      expect_close(one.grad, ref.grad, 1e-2, 1e-7, "grad, one shard");
      EXPECT_EQ(nonzero_padding_grads(one, cs), 0);
    }
  }
}

TEST_F(KernelsTest, CrossEntropyOverTwoVocabularyShardsEqualsOneShard) {
  for (const CrossEntropyCase& cs : kCrossEntropyCases) {
    SCOPED_TRACE(name(cs));
    const CrossEntropyInput in = cross_entropy_input(cs);
    const float grad_scale = 1.0f / static_cast<float>(cs.rows);
    const CrossEntropyReference ref = cross_entropy_reference(cs, in, grad_scale);
    const CrossEntropyRun one = run_cross_entropy(cs, in, 1, grad_scale, false);
    // Shard 0 aligned, shard 1 not: both paths feed one combination.
    const CrossEntropyRun two = run_cross_entropy(cs, in, 2, grad_scale, true);

    const int64_t local = cs.padded / 2;
    for (int k = 0; k < 2; ++k) {
      SCOPED_TRACE("shard " + std::to_string(k));
      const CrossEntropyPartialReference want =
          cross_entropy_partial_reference(cs, in, k * local, local);
      const std::vector<double> got = to_double(two.partials[k]);
      const auto block = [&](int i) {
        return std::vector<double>(got.begin() + i * cs.rows, got.begin() + (i + 1) * cs.rows);
      };
      if (k * local < cs.vocab) {  // an empty shard's max is checked below
        expect_close(block(0), want.row_max, 0.0, 0.0, "partial row max");
      }
      expect_close(block(1), want.sums, kSumRtol, 0.0, "partial sums");
      expect_close(block(2), want.target, 0.0, 0.0, "partial target logits");
    }

    EXPECT_EQ(two.row_max, one.row_max);
    expect_close(to_double(two.sums), to_double(one.sums), kSumRtol, 0.0, "sums, two vs one");
    expect_loss_near(two.loss, one.loss, "loss, two vs one");
    expect_combined_matches(two, ref, cs.rows, "two shards");
    expect_close(two.grad, ref.grad, 1e-2, 1e-7, "grad, two shards");
    expect_close(two.grad, one.grad, 1e-2, 1e-7, "grad, two shards vs one");
    EXPECT_EQ(nonzero_padding_grads(two, cs), 0);
  }
}

TEST_F(KernelsTest, CrossEntropyShardWithoutRealColumnsContributesNothing) {
  const CrossEntropyCase cs{5, 60, 128};  // shard 1 holds columns [64, 128): padding only
  const CrossEntropyInput in = cross_entropy_input(cs);
  const float grad_scale = 0.25f;
  const CrossEntropyReference ref = cross_entropy_reference(cs, in, grad_scale);
  for (bool unaligned : {false, true}) {
    SCOPED_TRACE(unaligned ? "unaligned padding shard" : "aligned padding shard");
    const CrossEntropyRun two = run_cross_entropy(cs, in, 2, grad_scale, unaligned);
    const std::vector<float>& p = two.partials[1];
    for (int64_t r = 0; r < cs.rows; ++r) {
      EXPECT_LE(p[r], std::numeric_limits<float>::lowest()) << "row " << r << " max";
      EXPECT_EQ(p[cs.rows + r], 0.f) << "row " << r << " sum";
      EXPECT_EQ(p[2 * cs.rows + r], 0.f) << "row " << r << " target logit";
    }
    expect_combined_matches(two, ref, cs.rows, "with a padding shard");
    expect_close(two.grad, ref.grad, 1e-2, 1e-7, "grad");
    EXPECT_EQ(nonzero_padding_grads(two, cs), 0);
  }
}

}  // namespace
}  // namespace mpsim::executor::kernels
