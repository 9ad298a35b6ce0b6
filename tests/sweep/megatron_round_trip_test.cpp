// Megatron-LM command lines out (simulator/spec/megatron_args.h): every configuration of a
// sweep's space that Megatron-LM can run is written as flags that read back into the same
// validated configuration and model; the others name the framework that runs them.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>

#include "simulator/spec/megatron_args.h"
#include "simulator/spec/spec_loader.h"
#include "simulator/sweep/config_space.h"
#include "tests/test_models.h"

namespace mpsim::spec {
namespace {

using google::protobuf::util::MessageDifferencer;

TEST(MegatronArgs, EveryConfigurationOfASweepRoundTrips) {
  const Hardware hw = load_hardware("h100-sxm");
  for (const ModelSpec& model :
       {load_model_spec("gpt3-175b"), mpsim::testing::llama(8, 1024, 2816, 16, 4, 512, 32000)}) {
    for (Attention attention : {ATTENTION_FLASH, ATTENTION_UNFUSED}) {
      sweep::Constraints constraints;
      constraints.attention = attention;
      // The stack's overlaps with one kind, not the other: both spellings round-trip.
      constraints.tp_comm_overlap = attention == ATTENTION_FLASH;
      constraints.overlap_param_gather = attention == ATTENTION_FLASH;
      constraints.max_mbs = 2;
      const int64_t gpus = 64;
      const auto configs = sweep::enumerate_configs(model, hw, gpus, 128, constraints);
      ASSERT_GT(configs.size(), 100u);
      int64_t megatron = 0, other = 0;
      for (const ParallelConfig& c : configs) {
        const std::optional<std::string> args = megatron_args(model, c);
        if (!args) {
          EXPECT_NE(framework_for(c), "megatron-lm");
          ++other;
          continue;
        }
        ++megatron;
        const MegatronRun back = parse_megatron_args(*args, "round trip", gpus);
        EXPECT_TRUE(back.notes.unknown.empty() && back.notes.not_modelled.empty()) << *args;
        const ParallelConfig again = validate_parallel_config(back.config, back.model, hw);
        EXPECT_TRUE(MessageDifferencer::Equals(again, c)) << *args << "\n"
                                                          << again.DebugString() << "\nagainst\n"
                                                          << c.DebugString();
        ModelSpec expected = model;
        expected.set_name(back.model.name());
        expected.set_source(back.model.source());
        if (expected.ffn_hidden_size() == 0) expected.set_ffn_hidden_size(4 * model.hidden_size());
        if (expected.num_kv_heads() == 0) expected.set_num_kv_heads(model.num_attention_heads());
        EXPECT_TRUE(MessageDifferencer::Equals(back.model, expected))
            << back.model.DebugString() << "\nagainst\n"
            << expected.DebugString();
      }
      EXPECT_GT(megatron, 0);
      EXPECT_GT(other, 0);  // ZeRO-2/3 and GPipe rows
    }
  }
}

}  // namespace
}  // namespace mpsim::spec
