// parse_train_args(): defaults (the trainer's own), every flag, and the message of every kind of
// bad input.
#include "tools/mpsim/train_args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "executor/core/train_options.h"
#include "simulator/spec/spec_error.h"

namespace mpsim::cli {
namespace {

using Args = std::vector<std::string>;

// The FlagError message for `args`, or "no error".
std::string error_of(const Args& args) {
  try {
    parse_train_args(args);
  } catch (const spec::FlagError& e) {
    return e.what();
  }
  return "no error";
}

std::string flag_of(const Args& args) {
  try {
    parse_train_args(args);
  } catch (const spec::FlagError& e) {
    return e.flag();
  }
  return "no error";
}

TEST(TrainArgs, Defaults) {
  const TrainRequest r = parse_train_args({});
  EXPECT_FALSE(r.help);
  EXPECT_EQ(r.model, "gpt2-124m");
  const spec::ParallelConfig& c = r.options.config;
  EXPECT_EQ(c.num_gpus(), 1);
  EXPECT_EQ(c.tensor_parallel(), 1);
  EXPECT_EQ(c.pipeline_parallel(), 1);
  EXPECT_EQ(c.data_parallel(), 0);  // derived by validate_parallel_config
  EXPECT_EQ(c.micro_batch_size(), 4);
  EXPECT_EQ(c.global_batch_size(), 32);
  EXPECT_FALSE(c.sequence_parallel());
  EXPECT_EQ(c.virtual_pipeline_stages(), 1);
  EXPECT_EQ(c.schedule(), spec::ONE_F_ONE_B);
  EXPECT_EQ(c.recompute(), spec::RECOMPUTE_NONE);
  EXPECT_EQ(c.zero_stage(), 0);
  EXPECT_EQ(c.rank_order(), spec::TP_DP_PP);

  // Hyper-parameters are the trainer's defaults.
  const executor::TrainOptions trainer;
  const executor::TrainOptions& o = r.options;
  EXPECT_EQ(o.steps, 20);
  EXPECT_EQ(o.steps, trainer.steps);
  EXPECT_EQ(o.data_path, "data/shakespeare.txt");
  EXPECT_EQ(o.data_path, kDefaultTrainData);
  EXPECT_FALSE(o.synthetic);
  EXPECT_EQ(o.seed, trainer.seed);
  EXPECT_EQ(o.lr, trainer.lr);
  EXPECT_EQ(o.min_lr, trainer.min_lr);
  EXPECT_EQ(o.warmup_steps, trainer.warmup_steps);
  EXPECT_EQ(o.weight_decay, trainer.weight_decay);
  EXPECT_EQ(o.clip_grad, trainer.clip_grad);
  EXPECT_EQ(o.log_path, "");
  EXPECT_EQ(o.model.num_layers(), 0);  // loaded by the command, not the parser
}

TEST(TrainArgs, EveryFlagSetsItsField) {
  const TrainRequest r = parse_train_args({"--model",
                                           "models/tiny.textproto",
                                           "--gpus",
                                           "16",
                                           "--tp",
                                           "2",
                                           "--pp",
                                           "4",
                                           "--dp",
                                           "2",
                                           "--mbs",
                                           "2",
                                           "--gbs",
                                           "64",
                                           "--sp",
                                           "--vpp",
                                           "3",
                                           "--recompute",
                                           "selective",
                                           "--dist-opt",
                                           "--steps",
                                           "100",
                                           "--data=corpus.txt",
                                           "--lr",
                                           "3e-4",
                                           "--min-lr",
                                           "0.00003",
                                           "--warmup",
                                           "10",
                                           "--seed",
                                           "42",
                                           "--weight-decay",
                                           "0.05",
                                           "--clip",
                                           "0.5",
                                           "--log",
                                           "run.jsonl"});
  EXPECT_EQ(r.model, "models/tiny.textproto");
  const spec::ParallelConfig& c = r.options.config;
  EXPECT_EQ(c.num_gpus(), 16);
  EXPECT_EQ(c.tensor_parallel(), 2);
  EXPECT_EQ(c.pipeline_parallel(), 4);
  EXPECT_EQ(c.data_parallel(), 2);
  EXPECT_EQ(c.micro_batch_size(), 2);
  EXPECT_EQ(c.global_batch_size(), 64);
  EXPECT_TRUE(c.sequence_parallel());
  EXPECT_EQ(c.virtual_pipeline_stages(), 3);
  EXPECT_EQ(c.schedule(), spec::INTERLEAVED_1F1B);  // the default with --vpp > 1
  EXPECT_EQ(c.recompute(), spec::RECOMPUTE_SELECTIVE);
  EXPECT_EQ(c.zero_stage(), 1);
  const executor::TrainOptions& o = r.options;
  EXPECT_EQ(o.steps, 100);
  EXPECT_EQ(o.data_path, "corpus.txt");
  EXPECT_FALSE(o.synthetic);
  EXPECT_DOUBLE_EQ(o.lr, 3e-4);
  EXPECT_DOUBLE_EQ(o.min_lr, 3e-5);
  EXPECT_EQ(o.warmup_steps, 10);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_DOUBLE_EQ(o.weight_decay, 0.05);
  EXPECT_DOUBLE_EQ(o.clip_grad, 0.5);
  EXPECT_EQ(o.log_path, "run.jsonl");
}

TEST(TrainArgs, EnumValuesAndSchedules) {
  auto config = [](Args args) { return parse_train_args(args).options.config; };
  EXPECT_EQ(config({"--schedule", "gpipe"}).schedule(), spec::GPIPE);
  EXPECT_EQ(config({"--schedule", "1f1b"}).schedule(), spec::ONE_F_ONE_B);
  EXPECT_EQ(config({"--schedule", "interleaved"}).schedule(), spec::INTERLEAVED_1F1B);
  EXPECT_EQ(config({"--vpp", "2", "--schedule", "1f1b"}).schedule(), spec::ONE_F_ONE_B);
  EXPECT_EQ(config({"--recompute", "none"}).recompute(), spec::RECOMPUTE_NONE);
  EXPECT_EQ(config({"--recompute", "selective"}).recompute(), spec::RECOMPUTE_SELECTIVE);
  EXPECT_EQ(config({"--recompute", "full"}).recompute(), spec::RECOMPUTE_FULL);
  EXPECT_FALSE(config({"--tp", "2", "--no-sp"}).sequence_parallel());
  EXPECT_FALSE(config({"--tp", "2"}).sequence_parallel());  // off unless asked for
}

TEST(TrainArgs, Fp8) {
  EXPECT_FALSE(parse_train_args({}).fp8);
  EXPECT_TRUE(parse_train_args({"--fp8", "--tp", "2", "--gpus", "2"}).fp8);
  EXPECT_EQ(error_of({"--fp8", "--tp", "2", "--gpus", "2", "--sp"}),
            "--fp8: conflicts with --sp (FP8 inputs gathered over TP are not implemented); "
            "expected one of them");
}

TEST(TrainArgs, Synthetic) {
  const TrainRequest r = parse_train_args({"--synthetic"});
  EXPECT_TRUE(r.options.synthetic);
  EXPECT_EQ(r.options.data_path, "");
}

TEST(TrainArgs, BadInputNamesTheFlag) {
  EXPECT_EQ(error_of({"--synthetic", "--data", "x.txt"}),
            "--synthetic: conflicts with --data; give one of them");
  EXPECT_EQ(error_of({"--sp"}), "--sp: needs --tp > 1 (got --tp 1)");
  EXPECT_EQ(error_of({"--attention", "fused"}),
            "--attention: 'fused' is not one of flash, unfused");
  EXPECT_EQ(error_of({"--tp", "2", "--sp", "--no-sp"}), "--sp: conflicts with --no-sp");
  EXPECT_EQ(error_of({"--lr", "0"}), "--lr: '0' must be above 0");
  EXPECT_EQ(error_of({"--lr", "fast"}), "--lr: 'fast' is not a number");
  EXPECT_EQ(error_of({"--lr", "nan"}), "--lr: 'nan' is not a number");
  EXPECT_EQ(error_of({"--lr", "1e-3x"}), "--lr: '1e-3x' is not a number");
  EXPECT_EQ(error_of({"--min-lr", "-1e-5"}), "--min-lr: '-1e-5' must be at least 0");
  EXPECT_EQ(error_of({"--lr", "1e-4", "--min-lr", "1e-3"}),
            "--min-lr: 0.001 is above --lr (0.0001); expected the decay floor to be at most the "
            "peak");
  EXPECT_EQ(error_of({"--weight-decay", "-0.1"}), "--weight-decay: '-0.1' must be at least 0");
  EXPECT_EQ(error_of({"--clip", "inf"}), "--clip: 'inf' is not a number");
  EXPECT_EQ(error_of({"--steps", "0"}), "--steps: '0' must be at least 1");
  EXPECT_EQ(error_of({"--warmup", "-1"}), "--warmup: '-1' must be at least 0");
  EXPECT_EQ(error_of({"--seed", "x"}), "--seed: 'x' is not an integer");
  EXPECT_EQ(error_of({"--gpus", "0"}), "--gpus: '0' must be at least 1");
  EXPECT_EQ(error_of({"--tp", "two"}), "--tp: 'two' is not an integer");
  EXPECT_EQ(error_of({"--pp", "0"}), "--pp: '0' must be at least 1");
  EXPECT_EQ(error_of({"--dp", "-1"}), "--dp: '-1' must be at least 0");
  EXPECT_EQ(error_of({"--mbs", "0"}), "--mbs: '0' must be at least 1");
  EXPECT_EQ(error_of({"--gbs", "1.5"}), "--gbs: '1.5' is not an integer");
  EXPECT_EQ(error_of({"--vpp", "0"}), "--vpp: '0' must be at least 1");
  EXPECT_EQ(error_of({"--schedule", "zb"}),
            "--schedule: 'zb' is not one of gpipe, 1f1b, interleaved");
  EXPECT_EQ(error_of({"--recompute", "some"}),
            "--recompute: 'some' is not one of none, selective, full");
  EXPECT_EQ(error_of({"--model", ""}), "--model: must not be empty");
  EXPECT_EQ(error_of({"--data", ""}), "--data: needs a file name");
  EXPECT_EQ(error_of({"--log", ""}), "--log: needs a file name");
  EXPECT_EQ(flag_of({"--zero", "1"}), "--zero");  // simulate's flag; here it is --dist-opt
  EXPECT_EQ(flag_of({"--steps", "5", "--steps", "6"}), "--steps");
  EXPECT_EQ(flag_of({"--lr"}), "--lr");
  EXPECT_EQ(flag_of({"--dist-opt=yes"}), "--dist-opt");
  EXPECT_EQ(flag_of({"gpt2"}), "gpt2");
}

TEST(TrainArgs, Help) {
  EXPECT_TRUE(parse_train_args({"--help"}).help);
  EXPECT_TRUE(parse_train_args({"-h"}).help);
  const std::string help = train_help();
  for (const char* text : {"usage: mpsim train",
                           "srun -n N mpsim train",
                           "--model M (=gpt2-124m)",
                           "--gpus N (=1)",
                           "--tp T (=1)",
                           "--pp P (=1)",
                           "--dp D (=0)",
                           "--mbs B (=4)",
                           "--gbs G (=32)",
                           "--sp",
                           "--no-sp",
                           "--vpp V (=1)",
                           "--schedule gpipe|1f1b|interleaved",
                           "--recompute none|selective|full (=none)",
                           "--dist-opt",
                           "--steps K (=20)",
                           "--data FILE (=data/shakespeare.txt)",
                           "--synthetic",
                           "--lr X (=0.0006)",
                           "--min-lr X (=6e-05)",
                           "--warmup K (=0)",
                           "--seed S (=1234)",
                           "--weight-decay X (=0.1)",
                           "--clip X (=1)",
                           "--log FILE"}) {
    EXPECT_NE(help.find(text), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace mpsim::cli
