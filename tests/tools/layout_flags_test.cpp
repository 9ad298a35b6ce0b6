// tools/mpsim/layout_flags: every field the spec layer names in its errors maps to the flag it is
// parsed from, so a FieldError reads as the FlagError users saw before ("--tp: ..."), and a
// command's declaration carries its own defaults.
#include "tools/mpsim/layout_flags.h"

#include <gtest/gtest.h>

#include <sstream>

namespace mpsim::cli {
namespace {

TEST(LayoutFlags, FieldsMapToTheFlagsTheyAreParsedFrom) {
  const std::pair<const char*, const char*> expected[] = {
      {"num_gpus", "--gpus"},
      {"tensor_parallel", "--tp"},
      {"pipeline_parallel", "--pp"},
      {"data_parallel", "--dp"},
      {"global_batch_size", "--gbs"},
      {"micro_batch_size", "--mbs"},
      {"virtual_pipeline_stages", "--vpp"},
      {"dp_bucket_params", "--dp-bucket-params"},
      {"sequence_parallel", "--sp"},
      {"schedule", "--schedule"},
      {"recompute", "--recompute"},
      {"zero_stage", "--zero"},
      {"rank_order", "--rank-order"},
      {"model", "--model"},
      {"num_layers", "--model"},
      {"num_kv_heads", "--model"},
      {"dtype", "--model"},
      {"hardware", "--hw"},
      {"gpu.peak_bf16", "--hw"},
  };
  for (const auto& [field, flag] : expected) EXPECT_EQ(flag_of_field(field), flag) << field;
  EXPECT_EQ(flag_of_field("no_such_field"), "");
}

TEST(LayoutFlags, AFieldErrorReadsAsTheFlagError) {
  const spec::FlagError e =
      flag_error_from(spec::FieldError("tensor_parallel", "num_attention_heads (12) is not ..."));
  EXPECT_EQ(e.flag(), "--tp");
  EXPECT_STREQ(e.what(), "--tp: num_attention_heads (12) is not ...");
  // A field no flag sets keeps its text.
  EXPECT_STREQ(flag_error_from(spec::FieldError("other", "bad")).what(), "other: bad");
}

TEST(LayoutFlags, EachCommandDeclaresItsOwnDefaults) {
  boost::program_options::options_description d("flags");
  add_layout_flags(d, {{LayoutFlag::kTp, "8"}, {LayoutFlag::kSp}, {LayoutFlag::kPp}});
  std::ostringstream help;
  help << d;
  EXPECT_NE(help.str().find("--tp T (=8)"), std::string::npos) << help.str();
  EXPECT_NE(help.str().find("--sp "), std::string::npos) << help.str();
  EXPECT_NE(help.str().find("--pp P "), std::string::npos) << help.str();
  EXPECT_EQ(help.str().find("--pp P (="), std::string::npos) << help.str();
}

}  // namespace
}  // namespace mpsim::cli
