// Tests of simulator/spec/model_spec_loader.cpp: every ModelSpec check produces its own error with
// the right file, line and field; defaults are filled.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "simulator/spec/spec_loader.h"
#include "tests/spec/spec_test_helpers.h"
#include "tests/test_models.h"

namespace mpsim::spec {
namespace {

namespace fs = std::filesystem;
using namespace mpsim::spec::testing;
using mpsim::testing::gpt;
using mpsim::testing::llama;

// ---------------------------------------------------------------------------------------------
// ModelSpec checks.

TEST(ModelChecks, ValidModelAndDefaults) {
  const ModelSpec m =
      parse_model_spec(model_text({{"ffn_hidden_size", ""}, {"num_kv_heads", ""}}), "m.textproto");
  EXPECT_EQ(m.ffn_hidden_size(), 4 * 1024);
  EXPECT_EQ(m.num_kv_heads(), 16);
}

TEST(ModelChecks, NameRequired) {
  const SpecError e = model_error({{"name", "\"\""}}, "name", model_line("name"));
  expect_words(e.what(), {"missing", "expected"});
}

TEST(ModelChecks, CountsMustBePositive) {
  for (const char* field :
       {"num_layers", "hidden_size", "num_attention_heads", "seq_length", "vocab_size"}) {
    SpecError e = model_error({{field, "0"}}, field, model_line(field));
    expect_words(e.what(), {"missing or 0", "expected a positive count"});
    e = model_error({{field, "-3"}}, field, model_line(field));
    expect_words(e.what(), {"-3 is not positive"});
    e = model_error({{field, ""}}, field, 0);  // absent: no line to point at
    expect_words(e.what(), {"missing or 0"});
  }
}

TEST(ModelChecks, AbsurdSizesRefusedWithTheLimit) {
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"num_layers", {"1025", "limit 1024"}},
      {"hidden_size", {"262144", "limit 131072"}},
      {"ffn_hidden_size", {"2097152", "limit 1048576"}},
      {"num_attention_heads", {"8192", "limit 4096"}},
      {"num_kv_heads", {"8192", "limit 4096"}},
      {"seq_length", {"8388608", "limit 4194304"}},
      {"vocab_size", {"33554432", "limit 16777216"}}};
  for (const auto& [field, c] : cases) {
    const SpecError e = model_error({{field, c.first}}, field, model_line(field));
    expect_words(e.what(), {c.second.c_str(), "expected at most"});
  }
}

TEST(ModelChecks, OptionalCountsRefuseNegatives) {
  SpecError e =
      model_error({{"ffn_hidden_size", "-1"}}, "ffn_hidden_size", model_line("ffn_hidden_size"));
  expect_words(e.what(), {"negative", "0 for 4 * hidden_size"});
  e = model_error({{"num_kv_heads", "-1"}}, "num_kv_heads", model_line("num_kv_heads"));
  expect_words(e.what(), {"negative", "0 for num_attention_heads"});
}

TEST(ModelChecks, HeadsMustDivideHiddenPointsAtHeadsLine) {
  const SpecError e = model_error({{"hidden_size", "1000"}, {"num_attention_heads", "96"}},
                                  "hidden_size", model_line("num_attention_heads"));
  EXPECT_STREQ(e.what(),
               "models/x.textproto:6: hidden_size: 1000 is not divisible by num_attention_heads "
               "(96); expected a multiple");
}

TEST(ModelChecks, KvHeadsMustDivideHeads) {
  const SpecError e =
      model_error({{"num_kv_heads", "5"}}, "num_attention_heads", model_line("num_kv_heads"));
  expect_words(e.what(), {"16 is not divisible by num_kv_heads (5)", "expected a multiple"});
}

TEST(ModelChecks, KindsMustBeSpecified) {
  const std::map<std::string, std::string> choices = {
      {"norm", "LAYER_NORM or RMS_NORM"},
      {"activation", "GELU or SWIGLU"},
      {"position_embedding", "LEARNED or ROTARY or NO_POSITION"},
      {"dtype", "BF16 or FP16 or FP32 or FP8"}};
  for (const auto& [field, expected] : choices) {
    SpecError e = model_error({{field, ""}}, field, 0);
    expect_words(e.what(), {"not specified", expected.c_str()});
    e = model_error({{field, "0"}}, field, model_line(field));
    expect_words(e.what(), {"not specified"});
  }
}

TEST(ModelChecks, UnknownEnumNumber) {
  // proto3 enums are open: the parser accepts a number, the check refuses it.
  const SpecError e = model_error({{"norm", "7"}}, "norm", model_line("norm"));
  expect_words(e.what(), {"unknown value 7", "LAYER_NORM or RMS_NORM"});
}

TEST(ModelChecks, DropoutIsAProbability) {
  for (const char* bad : {"1", "1.5", "-0.1"}) {
    const SpecError e = model_error({{"dropout", bad}}, "dropout", model_line("dropout"));
    expect_words(e.what(), {"out of range", "[0, 1)"});
  }
  EXPECT_NO_THROW(parse_model_spec(model_text({{"dropout", "0"}}), "m"));
}

}  // namespace
}  // namespace mpsim::spec
