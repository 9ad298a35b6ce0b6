// Tests of simulator/spec/text_format.cpp: the parser's errors come back as SpecError with the
// file, the 1-based line and the field, in the project's style.
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
// Parser errors.

TEST(ParseErrors, SyntaxErrorGivesItsLine) {
  const SpecError e = model_error({{"num_layers", "twelve"}}, "", model_line("num_layers"));
  expect_words(e.what(), {"models/x.textproto:3: syntax error: expected integer"});
}

TEST(ParseErrors, UnknownFieldGivesItsLineAndTheKnownFields) {
  const std::string text = model_text() + "num_heads: 16\n";
  const SpecError e = spec_error([&] { parse_model_spec(text, "m.textproto"); });
  EXPECT_EQ(e.line(), static_cast<int>(kModelFields.size()) + 2);
  EXPECT_EQ(e.field(), "num_heads");
  expect_words(e.what(),
               {"unknown field in mpsim.spec.ModelSpec", "expected one of", "num_attention_heads"});
}

TEST(ParseErrors, UnknownNestedFieldInProfile) {
  const SpecError e = hw_error("gpus_per_node: 8", "gpus_per_host: 8", "gpus_per_host",
                               line_containing(read(kH100Path), "gpus_per_node"));
  expect_words(e.what(), {"mpsim.spec.NodeSpec", "gpus_per_node"});
}

TEST(ParseErrors, RepeatedField) {
  const std::string text = model_text() + "hidden_size: 2048\n";
  const SpecError e = spec_error([&] { parse_model_spec(text, "m.textproto"); });
  EXPECT_EQ(e.field(), "hidden_size");
  EXPECT_EQ(e.line(), static_cast<int>(kModelFields.size()) + 2);
  expect_words(e.what(), {"more than once"});
}

TEST(ParseErrors, UnknownEnumName) {
  // The parser notices after reading the value, on the next token; the error still points at
  // the field's own line.
  SpecError e = model_error({{"norm", "BATCH_NORM"}}, "norm", model_line("norm"));
  expect_words(e.what(), {"unknown enumeration value of \"BATCH_NORM\""});
  const std::string text = "# m\nname: \"m\"\ntied_embeddings:\n  maybe\n\nnum_layers: 2\n";
  e = spec_error([&] { parse_model_spec(text, "m"); });
  EXPECT_EQ(e.field(), "tied_embeddings");
  EXPECT_EQ(e.line(), 3) << e.what();
}

TEST(ParseErrors, UnreadableFile) {
  const SpecError e = spec_error([] { load_model_spec("models/"); });
  EXPECT_EQ(e.line(), 0);
}

}  // namespace
}  // namespace mpsim::spec
