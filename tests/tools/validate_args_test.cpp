// `mpsim validate` flags and configuration lists: defaults, and every refusal names the flag or
// the file:line.
#include "tools/mpsim/validate_args.h"

#include <gtest/gtest.h>

#include "simulator/spec/spec_error.h"

namespace mpsim::cli {
namespace {

template <typename Error, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ValidateArgsTest, DefaultsAndFlags) {
  const ValidateRequest r =
      parse_validate_args({"--configs", "c.txt", "--hw", "h100-sxm-measured"});
  EXPECT_EQ(r.configs, "c.txt");
  EXPECT_EQ(r.out, "docs/validation");
  EXPECT_EQ(r.runs, "docs/validation/runs");
  EXPECT_EQ(r.warmup, 2);
  EXPECT_EQ(r.steps, 4);
  EXPECT_TRUE(r.leave_one_out);
  const ValidateRequest s =
      parse_validate_args({"--configs", "c", "--hw", "h", "--out", "o", "--only", "a,b", "--steps",
                           "3", "--report-only", "--no-leave-one-out"});
  EXPECT_EQ(s.runs, "o/runs");
  EXPECT_EQ(s.only, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.steps, 3);
  EXPECT_TRUE(s.report_only);
  EXPECT_FALSE(s.leave_one_out);
}

TEST(ValidateArgsTest, RefusalsNameTheFlag) {
  EXPECT_EQ(error_of<spec::FlagError>([] {
              parse_validate_args({"--hw", "h"});
            }),
            "--configs: is required: the configuration list");
  EXPECT_EQ(error_of<spec::FlagError>([] {
              parse_validate_args({"--configs", "c"});
            }),
            "--hw: is required: the calibrated hardware profile");
  EXPECT_EQ(error_of<spec::FlagError>([] {
              parse_validate_args({"--configs", "c", "--hw", "h", "--steps", "0"});
            }).rfind("--steps:", 0),
            0u);
  EXPECT_EQ(error_of<spec::FlagError>([] {
              parse_validate_args({"--configs", "c", "--hw", "h", "--report-only", "--remeasure"});
            }),
            "--remeasure: conflicts with --report-only");
}

TEST(ValidateArgsTest, ConfigListIsParsedWithTrainFlags) {
  const auto configs = parse_validation_configs(
      "# a comment\n\ntp2  --model gpt2-355m --gpus 2 --tp 2 --sp --mbs 4 --gbs 16\n"
      "pp2 --gpus 2 --pp 2 --schedule gpipe --recompute full --dist-opt\n",
      "configs.txt");
  ASSERT_EQ(configs.size(), 2u);
  EXPECT_EQ(configs[0].name, "tp2");
  EXPECT_EQ(configs[0].line, 3);
  EXPECT_EQ(configs[0].request.model, "gpt2-355m");
  EXPECT_EQ(configs[0].request.options.config.tensor_parallel(), 2);
  EXPECT_TRUE(configs[0].request.options.config.sequence_parallel());
  EXPECT_EQ(configs[1].request.options.config.schedule(), spec::GPIPE);
  EXPECT_EQ(configs[1].request.options.config.recompute(), spec::RECOMPUTE_FULL);
  EXPECT_EQ(configs[1].request.options.config.zero_stage(), 1);
}

TEST(ValidateArgsTest, ConfigListRefusalsNameFileLineAndFlag) {
  EXPECT_EQ(error_of<spec::SpecError>(
                [] { parse_validation_configs("a --gpus 1\nb --tp x\n", "c.txt"); }),
            "c.txt:2: b: --tp: 'x' is not an integer");
  EXPECT_EQ(error_of<spec::SpecError>([] { parse_validation_configs("a --gpus 1\na\n", "c.txt"); }),
            "c.txt:2: name: configuration 'a' is given twice");
  EXPECT_EQ(error_of<spec::SpecError>([] { parse_validation_configs("a --steps 3\n", "c.txt"); }),
            "c.txt:1: a: --steps is set by mpsim validate; remove it from the list");
  EXPECT_EQ(error_of<spec::SpecError>([] {
              parse_validation_configs("a/b --gpus 1\n", "c.txt");
            }).rfind("c.txt:1: name: 'a/b' is not a configuration name", 0),
            0u);
  EXPECT_EQ(error_of<spec::SpecError>([] { parse_validation_configs("# nothing\n", "c.txt"); }),
            "c.txt: no configuration (expected `<name> <flags>` lines)");
}

}  // namespace
}  // namespace mpsim::cli
