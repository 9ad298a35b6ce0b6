// The run mark's message (executor/core/run_mark.h): its prefix and JSON object, read back as the
// same messages; texts that are not run marks, or break the format, are told apart.
#include "executor/core/run_mark.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace mpsim::executor {
namespace {

using google::protobuf::util::MessageDifferencer;

spec::ModelSpec small_model() {
  spec::ModelSpec m;
  m.set_name("tiny");
  m.set_num_layers(2);
  m.set_hidden_size(64);
  m.set_num_attention_heads(4);
  m.set_seq_length(32);
  m.set_vocab_size(100);
  m.set_dropout(0.1);
  return m;
}

spec::ParallelConfig small_config() {
  spec::ParallelConfig c;
  c.set_num_gpus(4);
  c.set_tensor_parallel(2);
  c.set_data_parallel(2);
  c.set_micro_batch_size(1);
  c.set_global_batch_size(8);
  c.set_sequence_parallel(true);
  return c;
}

std::string refusal(const std::string& text) {
  try {
    parse_run_mark(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(RunMarkTest, ReadsBackWhatItWrites) {
  const std::string text = format_run_mark(small_model(), small_config());
  EXPECT_TRUE(text.starts_with("mpsim/run/{\"model\":{"));
  EXPECT_NE(text.find("\"parallel\":{"), std::string::npos);
  EXPECT_NE(text.find("\"num_layers\":\"2\""), std::string::npos);  // proto names, int64 as text
  const std::optional<RunMark> mark = parse_run_mark(text);
  ASSERT_TRUE(mark.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(mark->model, small_model()));
  EXPECT_TRUE(MessageDifferencer::Equals(mark->parallel, small_config()));
}

TEST(RunMarkTest, OtherTextsAreNotRunMarks) {
  EXPECT_FALSE(parse_run_mark("iteration/1").has_value());
  EXPECT_FALSE(parse_run_mark("mpsim/runs/{}").has_value());
  EXPECT_FALSE(parse_run_mark("").has_value());
}

TEST(RunMarkTest, BrokenMarksAreRefused) {
  EXPECT_NE(refusal("mpsim/run/not json").find("is not a JSON object"), std::string::npos);
  EXPECT_EQ(refusal("mpsim/run/{\"parallel\":{}}"),
            "run mark: field 'model' missing or not an object");
  EXPECT_EQ(refusal("mpsim/run/{\"model\":{},\"parallel\":{},\"gpus\":2}"),
            "run mark: unknown field 'gpus', expected model and parallel");
  EXPECT_NE(refusal("mpsim/run/{\"model\":{\"layers\":2},\"parallel\":{}}")
                .find("run mark: field 'model': "),
            std::string::npos);
}

}  // namespace
}  // namespace mpsim::executor
