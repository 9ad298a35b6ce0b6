// parse_sweep_args(): defaults, every flag, constraints, and the message of every kind of bad
// input (in the same words as mpsim simulate's flags).
#include "tools/mpsim/sweep_args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "simulator/spec/spec_error.h"

namespace mpsim::cli {
namespace {

using Args = std::vector<std::string>;

std::string error_of(const Args& args) {
  try {
    parse_sweep_args(args);
  } catch (const spec::FlagError& e) {
    return e.what();
  }
  return "no error";
}

TEST(SweepArgs, Defaults) {
  const SweepRequest r = parse_sweep_args({});
  EXPECT_FALSE(r.help);
  EXPECT_EQ(r.model, "gpt3-175b");
  EXPECT_EQ(r.hardware, "h100-sxm");
  EXPECT_EQ(r.gpus, 1024);
  EXPECT_EQ(r.gbs, 1536);
  EXPECT_EQ(r.top, 10);
  EXPECT_EQ(r.format, SweepFormat::kTable);
  EXPECT_EQ(r.out_path, "");
  EXPECT_EQ(r.threads, 0);
  EXPECT_EQ(r.trace_best_path, "");
  const sweep::Constraints& c = r.constraints;
  EXPECT_FALSE(c.tp || c.pp || c.dp || c.mbs || c.vpp || c.sp || c.schedule || c.recompute ||
               c.zero || c.max_tp || c.max_pp || c.max_mbs);
  EXPECT_TRUE(c.allow_zero23);
  EXPECT_EQ(c.attention, spec::ATTENTION_FLASH);
  EXPECT_EQ(r.memory_headroom, 0);
}

TEST(SweepArgs, EveryFlagSetsItsField) {
  const SweepRequest r = parse_sweep_args({"--model",
                                           "models/x.textproto",
                                           "--hw=a100",
                                           "--gpus",
                                           "64",
                                           "--gbs",
                                           "512",
                                           "--top",
                                           "3",
                                           "--format",
                                           "csv",
                                           "--out",
                                           "r.sqlite",
                                           "--threads",
                                           "2",
                                           "--trace-best",
                                           "b.json",
                                           "--tp",
                                           "4",
                                           "--pp",
                                           "2",
                                           "--dp",
                                           "8",
                                           "--mbs",
                                           "2",
                                           "--vpp",
                                           "3",
                                           "--sp",
                                           "on",
                                           "--schedule",
                                           "interleaved",
                                           "--recompute",
                                           "selective",
                                           "--zero",
                                           "1",
                                           "--max-tp",
                                           "8",
                                           "--max-pp",
                                           "16",
                                           "--max-mbs",
                                           "4"});
  EXPECT_EQ(r.model, "models/x.textproto");
  EXPECT_EQ(r.hardware, "a100");
  EXPECT_EQ(r.gpus, 64);
  EXPECT_EQ(r.gbs, 512);
  EXPECT_EQ(r.top, 3);
  EXPECT_EQ(r.format, SweepFormat::kCsv);
  EXPECT_EQ(r.out_path, "r.sqlite");
  EXPECT_EQ(r.threads, 2);
  EXPECT_EQ(r.trace_best_path, "b.json");
  const sweep::Constraints& c = r.constraints;
  EXPECT_EQ(c.tp, 4);
  EXPECT_EQ(c.pp, 2);
  EXPECT_EQ(c.dp, 8);
  EXPECT_EQ(c.mbs, 2);
  EXPECT_EQ(c.vpp, 3);
  EXPECT_EQ(c.sp, true);
  EXPECT_EQ(c.schedule, spec::INTERLEAVED_1F1B);
  EXPECT_EQ(c.recompute, spec::RECOMPUTE_SELECTIVE);
  EXPECT_EQ(c.zero, 1);
  EXPECT_EQ(c.max_tp, 8);
  EXPECT_EQ(c.max_pp, 16);
  EXPECT_EQ(c.max_mbs, 4);
}

TEST(SweepArgs, EnumValues) {
  EXPECT_EQ(parse_sweep_args({"--format", "json"}).format, SweepFormat::kJson);
  EXPECT_EQ(parse_sweep_args({"--format", "table"}).format, SweepFormat::kTable);
  EXPECT_EQ(parse_sweep_args({"--sp", "off"}).constraints.sp, false);
  EXPECT_EQ(parse_sweep_args({"--schedule", "gpipe"}).constraints.schedule, spec::GPIPE);
  EXPECT_EQ(parse_sweep_args({"--schedule", "1f1b"}).constraints.schedule, spec::ONE_F_ONE_B);
  EXPECT_EQ(parse_sweep_args({"--recompute", "none"}).constraints.recompute, spec::RECOMPUTE_NONE);
  EXPECT_EQ(parse_sweep_args({"--recompute", "full"}).constraints.recompute, spec::RECOMPUTE_FULL);
  EXPECT_EQ(parse_sweep_args({"--zero", "3"}).constraints.zero, 3);
  EXPECT_EQ(parse_sweep_args({"--memory-headroom", "0.1"}).memory_headroom, 0.1);
  EXPECT_EQ(parse_sweep_args({"--format", "megatron"}).format, SweepFormat::kMegatron);
  EXPECT_TRUE(parse_sweep_args({"--framework", "megatron"}).constraints.megatron_only);
  EXPECT_FALSE(parse_sweep_args({}).constraints.megatron_only);
  EXPECT_EQ(parse_sweep_args({"--attention", "unfused"}).constraints.attention,
            spec::ATTENTION_UNFUSED);
  EXPECT_EQ(parse_sweep_args({"--threads", "0"}).threads, 0);
}

TEST(SweepArgs, BadValues) {
  EXPECT_EQ(error_of({"--format", "xml"}),
            "--format: 'xml' is not one of table, json, csv, megatron");
  EXPECT_EQ(error_of({"--framework", "deepspeed"}),
            "--framework: 'deepspeed' is not one of any, megatron");
  EXPECT_EQ(error_of({"--sp", "yes"}), "--sp: 'yes' is not one of on, off");
  EXPECT_EQ(error_of({"--schedule", "foo"}),
            "--schedule: 'foo' is not one of gpipe, 1f1b, interleaved");
  EXPECT_EQ(error_of({"--recompute", "some"}),
            "--recompute: 'some' is not one of none, selective, full");
  EXPECT_EQ(error_of({"--zero", "4"}), "--zero: '4' is not one of 0, 1, 2, 3");
  for (const char* flag : {"--gpus", "--gbs", "--top", "--tp", "--pp", "--dp", "--mbs", "--vpp",
                           "--max-tp", "--max-pp", "--max-mbs"}) {
    EXPECT_EQ(error_of({flag, "eight"}), std::string(flag) + ": 'eight' is not an integer");
    EXPECT_EQ(error_of({flag, "0"}), std::string(flag) + ": '0' must be at least 1");
    EXPECT_EQ(error_of({flag, "99999999999999999999"}),
              std::string(flag) + ": '99999999999999999999' is out of range");
  }
  EXPECT_EQ(error_of({"--threads", "-1"}), "--threads: '-1' must be at least 0");
  EXPECT_EQ(error_of({"--top", "9999999999"}), "--top: '9999999999' is out of range");
  EXPECT_EQ(error_of({"--model", ""}), "--model: must not be empty");
  EXPECT_EQ(error_of({"--out="}), "--out: needs a value");
  EXPECT_EQ(error_of({"--trace-best", ""}), "--trace-best: needs a file name");
}

TEST(SweepArgs, BadSyntax) {
  EXPECT_EQ(error_of({"--tpp", "8"}), "--tpp: unknown flag (see mpsim sweep --help)");
  EXPECT_EQ(error_of({"--max", "8"}), "--max: unknown flag (see mpsim sweep --help)");
  EXPECT_EQ(error_of({"--gpus"}), "--gpus: needs a value");
  EXPECT_EQ(error_of({"--tp", "8", "--tp", "4"}), "--tp: given more than once");
  EXPECT_EQ(error_of({"extra"}), "extra: unexpected argument; mpsim sweep takes only flags");
}

TEST(SweepArgs, Help) {
  EXPECT_TRUE(parse_sweep_args({"--help"}).help);
  const std::string help = sweep_help();
  for (const char* flag : {"--model", "--hw", "--gpus", "--gbs", "--top", "--format", "--out",
                           "--threads", "--trace-best", "--tp", "--max-pp", "--sp"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace mpsim::cli
