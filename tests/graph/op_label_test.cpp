#include "simulator/graph/op_label.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace mpsim::graph {
namespace {

// Every label has one name, the names are unique and parse back to their label.
TEST(OpLabel, NamesRoundTrip) {
  std::set<std::string> names;
  for (int i = 0; i < kNumOpLabels; ++i) {
    const OpLabel label = static_cast<OpLabel>(i);
    const std::string name(label_name(label));
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
    EXPECT_EQ(op_label_from_name(name), label) << name;
  }
  EXPECT_EQ(label_name(OpLabel::kAttnQkv), "attn.qkv");
  EXPECT_EQ(label_name(OpLabel::kMlpFc1Wgrad), "mlp.fc1.wgrad");
  EXPECT_EQ(label_name(OpLabel::kAttnAllReduce), "attn.allreduce");
  EXPECT_EQ(label_name(OpLabel::kNone), "");
  EXPECT_FALSE(op_label_from_name("attn.qvk").has_value());
}

// The GEMM layout is the label's .dgrad / .wgrad suffix.
TEST(OpLabel, GemmLayoutFollowsTheSuffix) {
  EXPECT_EQ(gemm_layout(OpLabel::kMlpFc1), GemmLayout::kForward);
  EXPECT_EQ(gemm_layout(OpLabel::kLogits), GemmLayout::kForward);
  EXPECT_EQ(gemm_layout(OpLabel::kAttnQkvDgrad), GemmLayout::kDgrad);
  EXPECT_EQ(gemm_layout(OpLabel::kLogitsWgrad), GemmLayout::kWgrad);
  for (int i = 0; i < kNumOpLabels; ++i) {
    const OpLabel label = static_cast<OpLabel>(i);
    const std::string_view name = label_name(label);
    const GemmLayout expected = name.ends_with(".dgrad")   ? GemmLayout::kDgrad
                                : name.ends_with(".wgrad") ? GemmLayout::kWgrad
                                                           : GemmLayout::kForward;
    EXPECT_EQ(gemm_layout(label), expected) << name;
  }
}

}  // namespace
}  // namespace mpsim::graph
