// Megatron-LM command lines in (simulator/spec/megatron_args.h): Megatron-LM's own example
// launch scripts read into the specs they describe, every flag accounted for, bad values and
// contradictions named. The way out (every configuration of a sweep's space written as flags
// and read back) is tests/sweep/megatron_round_trip_test.cpp.
#include "simulator/spec/megatron_args.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"
#include "tests/spec/spec_test_helpers.h"
#include "tests/test_models.h"

namespace mpsim::spec {
namespace {

using namespace mpsim::spec::testing;

MegatronRun parse_file(const std::string& path, int64_t gpus) {
  return parse_megatron_args(read(path), path, gpus);
}

bool listed(const std::vector<std::string>& list, const std::string& flag) {
  return std::find(list.begin(), list.end(), flag) != list.end();
}

SpecError megatron_error(const std::string& args, int64_t gpus = 8) {
  return spec_error([&] { parse_megatron_args(args, "--megatron-args", gpus); });
}

// The GPT-3 175B example: the published architecture (Brown et al. 2020) and layout.
TEST(MegatronArgs, Gpt3ExampleScript) {
  const MegatronRun run = parse_file("tests/spec/data/megatron/gpt3-175b.args", 1024);
  const ModelSpec& m = run.model;
  EXPECT_EQ(m.num_layers(), 96);
  EXPECT_EQ(m.hidden_size(), 12288);
  EXPECT_EQ(m.num_attention_heads(), 96);
  EXPECT_EQ(m.num_kv_heads(), 96);
  EXPECT_EQ(m.ffn_hidden_size(), 4 * 12288);
  EXPECT_EQ(m.seq_length(), 2048);
  EXPECT_EQ(m.vocab_size(), 50257);  // GPT-2's BPE (--vocab-file / --merge-file)
  EXPECT_EQ(m.norm(), LAYER_NORM);
  EXPECT_EQ(m.activation(), GELU);
  EXPECT_EQ(m.position_embedding(), LEARNED);
  EXPECT_TRUE(m.tied_embeddings());
  EXPECT_TRUE(m.linear_bias());
  EXPECT_DOUBLE_EQ(m.dropout(), 0.1);
  EXPECT_EQ(m.dtype(), FP16);
  const ParallelConfig& c = run.config;
  EXPECT_EQ(c.num_gpus(), 1024);
  EXPECT_EQ(c.tensor_parallel(), 8);
  EXPECT_EQ(c.pipeline_parallel(), 16);
  EXPECT_EQ(c.micro_batch_size(), 1);
  EXPECT_EQ(c.global_batch_size(), 1536);
  EXPECT_FALSE(c.sequence_parallel());
  EXPECT_EQ(c.recompute(), RECOMPUTE_NONE);
  EXPECT_EQ(c.zero_stage(), 0);
  EXPECT_FALSE(c.overlap_dp_comm());  // no --overlap-grad-reduce
  EXPECT_EQ(c.attention(), ATTENTION_FLASH);
  EXPECT_EQ(c.schedule(), ONE_F_ONE_B);
  // The same architecture as the shipped spec, whose vocabulary is GPT-2's padded to 1024.
  const ModelSpec shipped = load_model_spec("gpt3-175b");
  EXPECT_EQ(m.num_layers(), shipped.num_layers());
  EXPECT_EQ(m.hidden_size(), shipped.hidden_size());
  EXPECT_EQ((m.vocab_size() + 1023) / 1024 * 1024, shipped.vocab_size());
  // Every flag accounted for.
  EXPECT_TRUE(listed(run.notes.not_modelled, "--rampup-batch-size"));
  for (const char* f : {"--lr", "--train-iters", "--data-path", "--save", "--tensorboard-dir",
                        "--nproc_per_node (the GPU count is given)"}) {
    EXPECT_TRUE(listed(run.notes.no_effect, f)) << f;
  }
  EXPECT_TRUE(run.notes.unknown.empty());
  EXPECT_TRUE(run.notes.stray_words.empty());
  EXPECT_NO_THROW(validate_parallel_config(c, m, load_hardware("h100-sxm")));
}

// The Llama 3 8B FP8 example: GQA, SwiGLU, RoPE with its base, untied, no biases, the
// NullTokenizer's extra token, the GPU count from torchrun, and what is not modelled yet.
TEST(MegatronArgs, Llama3ExampleScript) {
  const MegatronRun run = parse_file("tests/spec/data/megatron/llama3-8b-fp8.args", 0);
  const ModelSpec& m = run.model;
  EXPECT_EQ(m.num_layers(), 32);
  EXPECT_EQ(m.hidden_size(), 4096);
  EXPECT_EQ(m.ffn_hidden_size(), 14336);
  EXPECT_EQ(m.num_attention_heads(), 32);
  EXPECT_EQ(m.num_kv_heads(), 8);
  EXPECT_EQ(m.seq_length(), 8192);
  EXPECT_EQ(m.vocab_size(), 128257);
  EXPECT_EQ(m.activation(), SWIGLU);
  EXPECT_EQ(m.position_embedding(), ROTARY);
  EXPECT_DOUBLE_EQ(m.rotary_base(), 1e6);
  EXPECT_FALSE(m.tied_embeddings());
  EXPECT_FALSE(m.linear_bias());
  EXPECT_DOUBLE_EQ(m.dropout(), 0);
  EXPECT_EQ(m.dtype(), FP8);
  const ParallelConfig& c = run.config;
  EXPECT_EQ(c.num_gpus(), 8);
  EXPECT_EQ(c.tensor_parallel(), 1);
  EXPECT_FALSE(c.sequence_parallel());  // Megatron-LM turns it off with TP 1
  EXPECT_EQ(c.zero_stage(), 1);
  EXPECT_TRUE(c.overlap_dp_comm());
  EXPECT_EQ(c.global_batch_size(), 128);
  EXPECT_TRUE(c.overlap_param_gather());
  for (const char* f : {"--fp8-amax-history-len", "--fp8-param-gather", "--grad-reduce-in-bf16",
                        "--cross-entropy-loss-fusion"}) {
    EXPECT_TRUE(listed(run.notes.not_modelled, f)) << f;
  }
  EXPECT_EQ(run.notes.stray_words,
            (std::vector<std::string>{"torchrun", "examples/classes/pretrain_gpt.py"}));
  EXPECT_EQ(run.notes.adjusted.size(), 4u);  // vocab + 1, FP8 pricing, SP off, GPUs from torchrun
}

TEST(MegatronArgs, UnknownFlagsAreReportedByName) {
  const MegatronRun run = parse_megatron_args(
      "--num-layers 2 --hidden-size 64 --num-attention-heads 4 --seq-length 128 --vocab-size 100 "
      "--micro-batch-size 1 --my-own-flag 3 4 --another",
      "--megatron-args", 1);
  EXPECT_EQ(run.notes.unknown, (std::vector<std::string>{"--my-own-flag", "--another"}));
}

TEST(MegatronArgs, BadValuesAndContradictionsNameTheFlags) {
  const std::string base =
      "--num-layers 4 --hidden-size 256 --num-attention-heads 8 --seq-length 128 "
      "--vocab-size 1000 --micro-batch-size 1 ";
  SpecError e = megatron_error(base + "--tensor-model-parallel-size two");
  EXPECT_EQ(e.field(), "--tensor-model-parallel-size");
  expect_words(e.what(), {"--megatron-args", "'two' is not a whole number"});
  e = megatron_error(base + "--bf16 --fp16");
  EXPECT_EQ(e.field(), "--bf16");
  expect_words(e.what(), {"contradicts --fp16"});
  e = megatron_error(base + "--attention-dropout 0.1 --hidden-dropout 0.0");
  expect_words(e.what(), {"--attention-dropout", "contradicts --hidden-dropout", "0.1", "0"});
  e = megatron_error(base + "--num-query-groups 2");
  expect_words(e.what(), {"--num-query-groups", "contradicts --group-query-attention"});
  e = megatron_error(base + "--use-flash-attn --attention-backend unfused");
  expect_words(e.what(), {"--use-flash-attn", "contradicts --attention-backend"});
  e = megatron_error(base +
                     "--recompute-granularity full --recompute-method uniform "
                     "--recompute-num-layers 2");
  expect_words(e.what(), {"--recompute-num-layers", "cannot represent", "uniform with 1"});
  e = megatron_error(base + "--recompute-method block");
  expect_words(e.what(), {"--recompute-method", "contradicts --recompute-granularity"});
  e = megatron_error(base + "--overlap-param-gather --overlap-grad-reduce");
  expect_words(e.what(), {"--overlap-param-gather", "contradicts --use-distributed-optimizer"});
  e = megatron_error(base + "--tensor-model-parallel-size 2 --tp-comm-overlap");
  expect_words(e.what(), {"--tp-comm-overlap", "contradicts --sequence-parallel"});
  e = megatron_error(base + "--rotary-percent 0.5");
  expect_words(e.what(), {"--rotary-percent", "cannot be represented"});
  e = megatron_error(base + "--kv-channels 64");
  expect_words(e.what(), {"--kv-channels", "expected 32"});
  e = megatron_error(base + "--num-experts 8");
  expect_words(e.what(), {"--num-experts", "mixture of experts"});
  e = megatron_error(base + "--make-vocab-size-divisible-by 64");
  expect_words(e.what(), {"--make-vocab-size-divisible-by", "expected 128"});
  e = megatron_error(base + "--num-layers 8");
  expect_words(e.what(), {"--num-layers", "given twice"});
  e = megatron_error(base + "--tensor-model-parallel-size $TP");
  expect_words(e.what(), {"'$TP' is a shell variable"});
  e = megatron_error("--hidden-size 256");
  EXPECT_EQ(e.field(), "--num-layers");
  expect_words(e.what(), {"missing"});
  e = megatron_error(base, 0);
  expect_words(e.what(), {"no GPU count", "--nproc_per_node"});
  // A line number points at the flag.
  e = megatron_error(base + "\n\n--pipeline-model-parallel-size x");
  EXPECT_EQ(e.line(), 3);
}

// Transformer Engine's TP-communication overlap needs sequence parallelism; at TP 1, where
// Megatron-LM turns SP off, it is off too and said so.
TEST(MegatronArgs, TpCommOverlap) {
  const std::string base =
      "--num-layers 4 --hidden-size 256 --num-attention-heads 8 --seq-length 128 "
      "--vocab-size 1000 --micro-batch-size 1 --sequence-parallel --tp-comm-overlap ";
  MegatronRun run =
      parse_megatron_args(base + "--tensor-model-parallel-size 2", "--megatron-args", 2);
  EXPECT_TRUE(run.config.tp_comm_overlap());
  EXPECT_FALSE(listed(run.notes.not_modelled, "--tp-comm-overlap"));
  const ParallelConfig valid =
      validate_parallel_config(run.config, run.model, load_hardware("h100-sxm"));
  EXPECT_NE(megatron_args(run.model, valid).value().find("--tp-comm-overlap"), std::string::npos);
  run = parse_megatron_args(base, "--megatron-args", 2);
  EXPECT_FALSE(run.config.tp_comm_overlap());
  ASSERT_EQ(run.notes.adjusted.size(), 2u);  // SP and the overlap
  EXPECT_EQ(run.notes.adjusted[1].rfind("--tp-comm-overlap: off", 0), 0u);
}

// Context parallelism: the size read and written back; the GPUs divide by TP x CP x PP.
TEST(MegatronArgs, ContextParallelism) {
  const std::string args =
      "--num-layers 4 --hidden-size 256 --num-attention-heads 8 --seq-length 8192 "
      "--vocab-size 1000 --micro-batch-size 1 --tensor-model-parallel-size 2 "
      "--context-parallel-size 4 --sequence-parallel";
  const MegatronRun run = parse_megatron_args(args, "--megatron-args", 32);
  EXPECT_EQ(run.config.context_parallel(), 4);
  EXPECT_EQ(run.config.global_batch_size(), 4);  // micro-batch x DP = 32 / (2 x 4)
  const ParallelConfig valid =
      validate_parallel_config(run.config, run.model, load_hardware("h100-sxm"));
  EXPECT_EQ(valid.data_parallel(), 4);
  EXPECT_NE(megatron_args(run.model, valid).value().find("--context-parallel-size 4"),
            std::string::npos);
}

// Megatron-Core's optimizer CPU offload: the fraction (1 unless given), read and written back.
TEST(MegatronArgs, OptimizerOffload) {
  const std::string base =
      "--num-layers 4 --hidden-size 256 --num-attention-heads 8 --seq-length 128 "
      "--vocab-size 1000 --micro-batch-size 1 --use-distributed-optimizer ";
  EXPECT_EQ(parse_megatron_args(base + "--optimizer-cpu-offload", "--megatron-args", 8)
                .config.optimizer_offload(),
            1);
  const MegatronRun run = parse_megatron_args(
      base + "--optimizer-cpu-offload --optimizer-offload-fraction 0.25", "--megatron-args", 8);
  EXPECT_EQ(run.config.optimizer_offload(), 0.25);
  const ParallelConfig valid =
      validate_parallel_config(run.config, run.model, load_hardware("h100-sxm"));
  EXPECT_NE(megatron_args(run.model, valid)
                .value()
                .find("--optimizer-cpu-offload --optimizer-offload-fraction 0.25"),
            std::string::npos);
  SpecError e = megatron_error(base + "--optimizer-offload-fraction 0.5");
  expect_words(e.what(), {"--optimizer-offload-fraction", "contradicts --optimizer-cpu-offload"});
  e = megatron_error(base + "--optimizer-cpu-offload --optimizer-offload-fraction 2");
  expect_words(e.what(), {"--optimizer-offload-fraction", "expected a fraction"});
}

TEST(MegatronArgs, FieldsNameTheirFlags) {
  EXPECT_EQ(megatron_flag_of_field("context_parallel"), "--context-parallel-size");
  EXPECT_EQ(megatron_flag_of_field("tp_comm_overlap"), "--tp-comm-overlap");
  EXPECT_EQ(megatron_flag_of_field("tensor_parallel"), "--tensor-model-parallel-size");
  EXPECT_EQ(megatron_flag_of_field("virtual_pipeline_stages"),
            "--num-layers-per-virtual-pipeline-stage");
  EXPECT_EQ(megatron_flag_of_field("num_gpus"), "");
}

}  // namespace
}  // namespace mpsim::spec
