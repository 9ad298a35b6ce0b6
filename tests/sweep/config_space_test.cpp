// enumerate_configs() against a brute-force enumeration of a small case, plus validity,
// determinism and constraints. The brute force tries every value of every field and lets
// validate_parallel_config() judge, so it shares no loop logic with the code under test.
#include "simulator/sweep/config_space.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "tests/test_models.h"

namespace mpsim::sweep {
namespace {

spec::ModelSpec toy() { return testing::gpt(8, 256, 8, 128, 1000); }

const spec::Hardware& h100() {
  static const spec::Hardware hw = spec::load_hardware("h100-sxm");
  return hw;
}

std::set<std::string> as_set(const std::vector<spec::ParallelConfig>& configs) {
  std::set<std::string> out;
  for (const spec::ParallelConfig& c : configs) out.insert(c.SerializeAsString());
  return out;
}

// Every combination with tp x pp x dp = gpus (the space's definition), judged by validation.
std::vector<spec::ParallelConfig> brute_force(const spec::ModelSpec& model, int64_t gpus,
                                              int64_t gbs) {
  std::vector<spec::ParallelConfig> out;
  for (int64_t tp = 1; tp <= gpus; ++tp)
    for (int64_t pp = 1; pp <= gpus; ++pp)
      for (int64_t dp = 1; dp <= gpus; ++dp) {
        if (tp * pp * dp != gpus) continue;
        for (int64_t mbs = 1; mbs <= gbs; ++mbs)
          for (int64_t vpp = 1; vpp <= 8; ++vpp)
            for (bool sp : {false, true})
              for (spec::Schedule s : {spec::GPIPE, spec::ONE_F_ONE_B, spec::INTERLEAVED_1F1B})
                for (spec::Recompute r :
                     {spec::RECOMPUTE_NONE, spec::RECOMPUTE_SELECTIVE, spec::RECOMPUTE_FULL})
                  for (int64_t zero = 0; zero <= 3; ++zero) {
                    spec::ParallelConfig c;
                    c.set_num_gpus(gpus);
                    c.set_global_batch_size(gbs);
                    c.set_tensor_parallel(tp);
                    c.set_pipeline_parallel(pp);
                    c.set_data_parallel(dp);
                    c.set_micro_batch_size(mbs);
                    c.set_virtual_pipeline_stages(vpp);
                    c.set_sequence_parallel(sp);
                    c.set_schedule(s);
                    c.set_recompute(r);
                    c.set_zero_stage(zero);
                    c.set_overlap_dp_comm(true);
                    c.set_rank_order(spec::TP_DP_PP);
                    try {
                      out.push_back(spec::validate_parallel_config(c, model, h100()));
                    } catch (const spec::FieldError&) {
                    }
                  }
      }
  return out;
}

TEST(ConfigSpace, SmallCaseEqualsBruteForce) {
  const std::vector<spec::ParallelConfig> configs = enumerate_configs(toy(), h100(), 8, 16);
  const std::set<std::string> got = as_set(configs);
  EXPECT_EQ(got.size(), configs.size()) << "duplicates";
  const std::set<std::string> expected = as_set(brute_force(toy(), 8, 16));
  EXPECT_GT(expected.size(), 100u);
  EXPECT_EQ(got, expected);
}

TEST(ConfigSpace, EveryConfigIsValidAndNormalized) {
  for (const spec::ParallelConfig& c : enumerate_configs(toy(), h100(), 8, 16)) {
    spec::ParallelConfig again;
    ASSERT_NO_THROW(again = spec::validate_parallel_config(c, toy(), h100())) << config_label(c);
    EXPECT_EQ(again.SerializeAsString(), c.SerializeAsString()) << config_label(c);
    EXPECT_TRUE(c.overlap_dp_comm());
    EXPECT_EQ(c.rank_order(), spec::TP_DP_PP);
    EXPECT_EQ(c.tensor_parallel() * c.pipeline_parallel() * c.data_parallel(), 8);
  }
}

TEST(ConfigSpace, DeterministicOrder) {
  const auto a = enumerate_configs(toy(), h100(), 8, 16);
  const auto b = enumerate_configs(toy(), h100(), 8, 16);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(a[i].SerializeAsString(), b[i].SerializeAsString());
}

TEST(ConfigSpace, ConstraintsNarrowTheSpace) {
  const auto all = enumerate_configs(toy(), h100(), 8, 16);
  auto subset = [&](const Constraints& c, auto keep) {
    std::vector<spec::ParallelConfig> expected;
    for (const auto& config : all)
      if (keep(config)) expected.push_back(config);
    const auto got = enumerate_configs(toy(), h100(), 8, 16, c);
    EXPECT_FALSE(got.empty());
    EXPECT_LT(got.size(), all.size());
    EXPECT_EQ(as_set(got), as_set(expected));
  };
  Constraints c;
  c.tp = 2;
  subset(c, [](const auto& x) { return x.tensor_parallel() == 2; });
  c = {};
  c.pp = 2;
  c.dp = 2;
  subset(c, [](const auto& x) { return x.pipeline_parallel() == 2 && x.data_parallel() == 2; });
  c = {};
  c.max_tp = 2;
  c.max_pp = 4;
  c.max_mbs = 2;
  subset(c, [](const auto& x) {
    return x.tensor_parallel() <= 2 && x.pipeline_parallel() <= 4 && x.micro_batch_size() <= 2;
  });
  c = {};
  c.mbs = 1;
  c.sp = true;
  subset(c, [](const auto& x) { return x.micro_batch_size() == 1 && x.sequence_parallel(); });
  c = {};
  c.schedule = spec::INTERLEAVED_1F1B;
  c.vpp = 2;
  subset(c, [](const auto& x) {
    return x.schedule() == spec::INTERLEAVED_1F1B && x.virtual_pipeline_stages() == 2;
  });
  c = {};
  c.recompute = spec::RECOMPUTE_FULL;
  c.zero = 1;
  subset(c, [](const auto& x) {
    return x.recompute() == spec::RECOMPUTE_FULL && x.zero_stage() == 1;
  });
  c = {};
  c.allow_zero23 = false;
  subset(c, [](const auto& x) { return x.zero_stage() <= 1; });
}

TEST(ConfigSpace, ImpossibleConstraintsGiveNothing) {
  Constraints c;
  c.tp = 3;
  EXPECT_TRUE(enumerate_configs(toy(), h100(), 8, 16, c).empty());
  EXPECT_TRUE(enumerate_configs(toy(), h100(), 0, 16).empty());
}

// The real case the sweep is for; the count depends only on the validation rules.
TEST(ConfigSpace, Gpt3On1024GpusIsQuick) {
  const spec::ModelSpec gpt3 = spec::load_model_spec("gpt3-175b");
  const auto start = std::chrono::steady_clock::now();
  const auto configs = enumerate_configs(gpt3, h100(), 1024, 1536);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(configs.size(), 1000u);
  EXPECT_EQ(as_set(configs).size(), configs.size());
  RecordProperty("configs", static_cast<int>(configs.size()));
  std::printf("gpt3-175b, 1024 GPUs, gbs 1536: %zu configs enumerated in %.3f s\n", configs.size(),
              seconds);
}

}  // namespace
}  // namespace mpsim::sweep
