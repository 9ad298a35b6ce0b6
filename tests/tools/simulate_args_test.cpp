// parse_simulate_args(): defaults, every enum flag value, and the message of every kind of bad
// input. Also checks that the config spellings round-trip through report::to_json(), so the
// flag vocabulary and the JSON output cannot drift apart.
#include "tools/mpsim/simulate_args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "simulator/simulation/simulation.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::cli {
namespace {

using Args = std::vector<std::string>;

// The FlagError message for `args`, or "no error".
std::string error_of(const Args& args) {
  try {
    parse_simulate_args(args);
  } catch (const spec::FlagError& e) {
    return e.what();
  }
  return "no error";
}

TEST(SimulateArgs, Defaults) {
  const SimulateRequest r = parse_simulate_args({});
  EXPECT_FALSE(r.help);
  EXPECT_EQ(r.model, "gpt3-175b");
  EXPECT_EQ(r.hardware, "h100-sxm");
  EXPECT_FALSE(r.all_ranks);
  EXPECT_EQ(r.trace_path, "");
  EXPECT_EQ(r.format, OutputFormat::kTable);
  const spec::ParallelConfig& c = r.config;
  EXPECT_EQ(c.num_gpus(), 1024);
  EXPECT_EQ(c.tensor_parallel(), 8);
  EXPECT_EQ(c.pipeline_parallel(), 16);
  EXPECT_EQ(c.data_parallel(), 0);  // derived by validate_parallel_config
  EXPECT_EQ(c.micro_batch_size(), 1);
  EXPECT_EQ(c.global_batch_size(), 1536);
  EXPECT_TRUE(c.sequence_parallel());  // SP is the default with TP > 1
  EXPECT_EQ(c.virtual_pipeline_stages(), 1);
  EXPECT_EQ(c.schedule(), spec::ONE_F_ONE_B);
  EXPECT_EQ(c.recompute(), spec::RECOMPUTE_SELECTIVE);
  EXPECT_EQ(c.zero_stage(), 0);
  EXPECT_TRUE(c.overlap_dp_comm());
  EXPECT_EQ(c.rank_order(), spec::TP_DP_PP);
  EXPECT_EQ(c.dp_bucket_params(), 0);
}

TEST(SimulateArgs, SequenceParallelDefaultsToOnWithTensorParallelism) {
  EXPECT_FALSE(parse_simulate_args({"--tp", "1"}).config.sequence_parallel());
  EXPECT_TRUE(parse_simulate_args({"--tp", "2"}).config.sequence_parallel());
  EXPECT_FALSE(parse_simulate_args({"--tp", "2", "--no-sp"}).config.sequence_parallel());
  EXPECT_TRUE(parse_simulate_args({"--tp", "1", "--sp"}).config.sequence_parallel());
  try {
    parse_simulate_args({"--sp", "--no-sp"});
    FAIL() << "expected a conflict";
  } catch (const spec::FlagError& e) {
    EXPECT_EQ(e.flag(), "--sp");
    EXPECT_NE(std::string(e.what()).find("conflicts with --no-sp"), std::string::npos);
  }
}

TEST(SimulateArgs, EveryFlagSetsItsField) {
  const SimulateRequest r = parse_simulate_args({"--model",
                                                 "models/llama.textproto",
                                                 "--hw=a100",
                                                 "--gpus",
                                                 "64",
                                                 "--tp",
                                                 "4",
                                                 "--pp",
                                                 "2",
                                                 "--dp",
                                                 "8",
                                                 "--mbs",
                                                 "2",
                                                 "--gbs",
                                                 "512",
                                                 "--sp",
                                                 "--vpp",
                                                 "3",
                                                 "--no-overlap-dp",
                                                 "--all-ranks",
                                                 "--trace",
                                                 "out.json",
                                                 "--format",
                                                 "json"});
  EXPECT_EQ(r.model, "models/llama.textproto");
  EXPECT_EQ(r.hardware, "a100");
  const spec::ParallelConfig& c = r.config;
  EXPECT_EQ(c.num_gpus(), 64);
  EXPECT_EQ(c.tensor_parallel(), 4);
  EXPECT_EQ(c.pipeline_parallel(), 2);
  EXPECT_EQ(c.data_parallel(), 8);
  EXPECT_EQ(c.micro_batch_size(), 2);
  EXPECT_EQ(c.global_batch_size(), 512);
  EXPECT_TRUE(c.sequence_parallel());
  EXPECT_EQ(c.virtual_pipeline_stages(), 3);
  EXPECT_FALSE(c.overlap_dp_comm());
  EXPECT_TRUE(r.all_ranks);
  EXPECT_EQ(r.trace_path, "out.json");
  EXPECT_EQ(r.format, OutputFormat::kJson);
}

TEST(SimulateArgs, ScheduleDefaultsToInterleavedWithVirtualStages) {
  EXPECT_EQ(parse_simulate_args({"--vpp", "2"}).config.schedule(), spec::INTERLEAVED_1F1B);
  EXPECT_EQ(parse_simulate_args({"--vpp", "1"}).config.schedule(), spec::ONE_F_ONE_B);
  // An explicit schedule wins; validate_parallel_config judges the combination.
  EXPECT_EQ(parse_simulate_args({"--vpp", "2", "--schedule", "gpipe"}).config.schedule(),
            spec::GPIPE);
}

TEST(SimulateArgs, EveryEnumValue) {
  auto config = [](Args args) { return parse_simulate_args(args).config; };
  EXPECT_EQ(config({"--schedule", "gpipe"}).schedule(), spec::GPIPE);
  EXPECT_EQ(config({"--schedule", "1f1b"}).schedule(), spec::ONE_F_ONE_B);
  EXPECT_EQ(config({"--schedule", "interleaved"}).schedule(), spec::INTERLEAVED_1F1B);
  EXPECT_EQ(config({"--recompute", "none"}).recompute(), spec::RECOMPUTE_NONE);
  EXPECT_EQ(config({"--recompute", "selective"}).recompute(), spec::RECOMPUTE_SELECTIVE);
  EXPECT_EQ(config({"--recompute", "full"}).recompute(), spec::RECOMPUTE_FULL);
  for (int stage = 0; stage <= 3; ++stage) {
    EXPECT_EQ(config({"--zero", std::to_string(stage)}).zero_stage(), stage);
  }
  EXPECT_EQ(config({}).attention(), spec::ATTENTION_FLASH);
  EXPECT_EQ(parse_simulate_args({}).memory_headroom, 0);
  EXPECT_FALSE(parse_simulate_args({}).ignore_memory);
  EXPECT_EQ(parse_simulate_args({"--memory-headroom", "0.05"}).memory_headroom, 0.05);
  EXPECT_TRUE(parse_simulate_args({"--ignore-memory"}).ignore_memory);
  EXPECT_FALSE(config({}).overlap_param_gather());
  EXPECT_TRUE(config({"--overlap-param-gather"}).overlap_param_gather());
  EXPECT_FALSE(config({}).tp_comm_overlap());
  EXPECT_TRUE(config({"--tp-comm-overlap"}).tp_comm_overlap());
  EXPECT_EQ(config({"--attention", "flash"}).attention(), spec::ATTENTION_FLASH);
  EXPECT_EQ(config({"--attention", "unfused"}).attention(), spec::ATTENTION_UNFUSED);
  EXPECT_EQ(config({"--rank-order", "tp-dp-pp"}).rank_order(), spec::TP_DP_PP);
  EXPECT_EQ(config({"--rank-order", "tp-pp-dp"}).rank_order(), spec::TP_PP_DP);
  EXPECT_EQ(parse_simulate_args({"--format", "table"}).format, OutputFormat::kTable);
  EXPECT_EQ(parse_simulate_args({"--format", "json"}).format, OutputFormat::kJson);
}

TEST(SimulateArgs, EnumSpellingsRoundTripThroughJson) {
  for (const char* schedule : {"gpipe", "1f1b", "interleaved"}) {
    for (const char* recompute : {"none", "selective", "full"}) {
      for (const char* order : {"tp-dp-pp", "tp-pp-dp"}) {
        report::SimulationResult result;
        result.config = parse_simulate_args({"--schedule", schedule, "--recompute", recompute,
                                             "--rank-order", order})
                            .config;
        const nlohmann::json config = report::to_json(result)["config"];
        EXPECT_EQ(config["schedule"], schedule);
        EXPECT_EQ(config["recompute"], recompute);
        EXPECT_EQ(config["rank_order"], order);
      }
    }
  }
}

TEST(SimulateArgs, Help) {
  EXPECT_TRUE(parse_simulate_args({"--help"}).help);
  EXPECT_TRUE(parse_simulate_args({"-h"}).help);
  const std::string help = simulate_help();
  for (const char* text : {"--model M (=gpt3-175b)",
                           "--hw H (=h100-sxm)",
                           "--gpus N (=1024)",
                           "--tp T (=8)",
                           "--pp P (=16)",
                           "--dp D (=0)",
                           "--mbs B (=1)",
                           "--gbs G (=1536)",
                           "--sp",
                           "--vpp V (=1)",
                           "--schedule gpipe|1f1b|interleaved",
                           "--recompute none|selective|full (=selective)",
                           "--attention flash|unfused (=flash)",
                           "--zero 0|1|2|3 (=0)",
                           "--no-sp",
                           "--no-overlap-dp",
                           "--rank-order tp-dp-pp|tp-pp-dp (=tp-dp-pp)",
                           "--all-ranks",
                           "--trace FILE",
                           "--format table|json (=table)",
                           "--memory-headroom F (=0)",
                           "--ignore-memory"}) {
    EXPECT_NE(help.find(text), std::string::npos) << text << "\n" << help;
  }
}

TEST(SimulateArgs, BadEnumValuesListTheAllowedOnes) {
  EXPECT_EQ(error_of({"--schedule", "foo"}),
            "--schedule: 'foo' is not one of gpipe, 1f1b, interleaved");
  EXPECT_EQ(error_of({"--recompute", "some"}),
            "--recompute: 'some' is not one of none, selective, full");
  EXPECT_EQ(error_of({"--zero", "4"}), "--zero: '4' is not one of 0, 1, 2, 3");
  EXPECT_EQ(error_of({"--memory-headroom", "1"}),
            "--memory-headroom: '1' must be below 1: the fraction of the GPU's usable memory kept "
            "free, e.g. 0.05");
  EXPECT_EQ(error_of({"--memory-headroom", "-0.1"}),
            "--memory-headroom: '-0.1' must be at least 0");
  EXPECT_EQ(error_of({"--memory-headroom", "5%"}), "--memory-headroom: '5%' is not a number");
  EXPECT_EQ(error_of({"--attention", "fused"}),
            "--attention: 'fused' is not one of flash, unfused");
  EXPECT_EQ(error_of({"--rank-order", "pp-dp-tp"}),
            "--rank-order: 'pp-dp-tp' is not one of tp-dp-pp, tp-pp-dp");
  EXPECT_EQ(error_of({"--format", "csv"}), "--format: 'csv' is not one of table, json");
  EXPECT_EQ(error_of({"--schedule", "1F1B"}),  // case matters, as in the docs
            "--schedule: '1F1B' is not one of gpipe, 1f1b, interleaved");
}

TEST(SimulateArgs, BadNumbersNameTheFlag) {
  for (const char* flag : {"--gpus", "--tp", "--pp", "--dp", "--mbs", "--gbs", "--vpp"}) {
    EXPECT_EQ(error_of({flag, "eight"}), std::string(flag) + ": 'eight' is not an integer");
    EXPECT_EQ(error_of({flag, "8x"}), std::string(flag) + ": '8x' is not an integer");
    EXPECT_EQ(error_of({flag, "99999999999999999999"}),
              std::string(flag) + ": '99999999999999999999' is out of range");
  }
  for (const char* flag : {"--gpus", "--tp", "--pp", "--mbs", "--gbs", "--vpp"}) {
    EXPECT_EQ(error_of({flag, "0"}), std::string(flag) + ": '0' must be at least 1");
  }
  EXPECT_EQ(error_of({"--dp", "-1"}), "--dp: '-1' must be at least 0");
  EXPECT_EQ(error_of({"--tp=-3"}), "--tp: '-3' must be at least 1");
  EXPECT_EQ(error_of({"--tp", "1.5"}), "--tp: '1.5' is not an integer");
}

TEST(SimulateArgs, MalformedCommandLines) {
  EXPECT_EQ(error_of({"--tpp", "8"}), "--tpp: unknown flag (see mpsim simulate --help)");
  EXPECT_EQ(error_of({"--sched", "gpipe"}),  // no abbreviations
            "--sched: unknown flag (see mpsim simulate --help)");
  EXPECT_EQ(error_of({"-x"}), "-x: unknown flag (see mpsim simulate --help)");
  EXPECT_EQ(error_of({"--tp"}), "--tp: needs a value");
  EXPECT_EQ(error_of({"--trace="}), "--trace: needs a value");
  EXPECT_EQ(error_of({"--sp=1"}), "--sp: takes no value");
  EXPECT_EQ(error_of({"--tp", "8", "--tp", "4"}), "--tp: given more than once");
  EXPECT_EQ(error_of({"gpt3"}), "gpt3: unexpected argument; mpsim simulate takes only flags");
  EXPECT_EQ(error_of({"--model", ""}), "--model: must not be empty");
  EXPECT_EQ(error_of({"--hw="}), "--hw: needs a value");
}

TEST(SimulateArgs, ErrorsCarryTheFlag) {
  try {
    parse_simulate_args({"--pp", "two"});
    FAIL() << "expected FlagError";
  } catch (const spec::FlagError& e) {
    EXPECT_EQ(e.flag(), "--pp");
  }
}

}  // namespace
}  // namespace mpsim::cli
