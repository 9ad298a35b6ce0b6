// Tests of simulator/spec/parallel_config_check.cpp: validate_parallel_config fills the defaults
// and refuses every broken constraint with a FieldError naming the field to change.
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
// ParallelConfig: defaults.

ParallelConfig raw(int64_t gpus, int64_t tp, int64_t pp, int64_t mbs, int64_t gbs) {
  ParallelConfig c;
  c.set_num_gpus(gpus);
  c.set_tensor_parallel(tp);
  c.set_pipeline_parallel(pp);
  c.set_micro_batch_size(mbs);
  c.set_global_batch_size(gbs);
  return c;
}

class ParallelTest : public ::testing::Test {
 protected:
  const Hardware h100_ = load_hardware("h100-sxm");
  const ModelSpec gpt175_ = load_model_spec("gpt3-175b");

  // Validation of c on gpt3-175b must fail naming the field and containing words.
  void expect_field(const ParallelConfig& c, const char* field,
                    std::initializer_list<const char*> words, const ModelSpec* model = nullptr) {
    const ModelSpec& m = model ? *model : gpt175_;
    const FieldError e = field_error([&] { validate_parallel_config(c, m, h100_); });
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_EQ(e.what(), e.field() + ": " + e.message());
    expect_words(e.what(), words);
  }
};

TEST_F(ParallelTest, DefaultsFilled) {
  const ParallelConfig c = validate_parallel_config(raw(1024, 8, 16, 1, 1536), gpt175_, h100_);
  EXPECT_EQ(c.data_parallel(), 8);
  EXPECT_EQ(c.virtual_pipeline_stages(), 1);
  EXPECT_EQ(c.schedule(), ONE_F_ONE_B);
  EXPECT_EQ(c.recompute(), RECOMPUTE_NONE);
  EXPECT_EQ(c.rank_order(), TP_DP_PP);
  EXPECT_EQ(c.dp_bucket_params(), 40'000'000);
  EXPECT_EQ(c.attention(), ATTENTION_FLASH);
}

TEST_F(ParallelTest, ParameterGatherOverlapNeedsTheDistributedOptimizer) {
  ParallelConfig c = raw(1024, 8, 16, 1, 1536);
  c.set_overlap_param_gather(true);
  c.set_overlap_dp_comm(true);
  expect_field(c, "overlap_param_gather", {"zero stage is 0", "expected zero stage 1"});
  c.set_zero_stage(1);
  EXPECT_TRUE(validate_parallel_config(c, gpt175_, h100_).overlap_param_gather());
  c.set_overlap_dp_comm(false);
  expect_field(c, "overlap_param_gather", {"gradient reduction overlapped"});
}

// Transformer Engine's FP8 GEMMs need input rows divisible by 8 and columns by 16.
TEST_F(ParallelTest, Fp8NeedsGemmShapesTransformerEngineRuns) {
  ModelSpec m = gpt175_;
  m.set_dtype(FP8);
  ParallelConfig c = raw(1024, 8, 16, 1, 1536);
  EXPECT_NO_THROW(validate_parallel_config(c, m, h100_));
  m.set_ffn_hidden_size(4 * 12288 + 8);  // 6145 per TP rank of 8: not a multiple of 16
  try {
    validate_parallel_config(raw(1024, 8, 16, 1, 1536), m, h100_);
    FAIL() << "expected an FP8 shape error";
  } catch (const FieldError& e) {
    EXPECT_EQ(e.field(), "dtype");
    EXPECT_NE(std::string(e.what()).find("the FFN width per TP rank (fc2 input) is 6145"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(ParallelTest, OptimizerOffloadIsAFractionOnAProfileWithAHostLink) {
  ParallelConfig c = raw(1024, 8, 16, 1, 1536);
  c.set_optimizer_offload(1.5);
  expect_field(c, "optimizer_offload", {"is not a fraction", "expected 0 (none) to 1 (all)"});
  c.set_optimizer_offload(0.5);
  EXPECT_EQ(validate_parallel_config(c, gpt175_, h100_).optimizer_offload(), 0.5);
  Hardware no_link = h100_;
  no_link.host_link_bytes_per_s = 0;
  try {
    validate_parallel_config(c, gpt175_, no_link);
    FAIL() << "expected a field error";
  } catch (const FieldError& e) {
    EXPECT_EQ(e.field(), "node.host_link_bandwidth");
  }
}

TEST_F(ParallelTest, TpCommOverlapNeedsSequenceParallelismWithinANode) {
  ParallelConfig c = raw(1024, 8, 16, 1, 1536);
  c.set_tp_comm_overlap(true);
  expect_field(c, "tp_comm_overlap", {"sequence parallelism is off"});
  c.set_sequence_parallel(true);
  EXPECT_TRUE(validate_parallel_config(c, gpt175_, h100_).tp_comm_overlap());
  c = raw(1024, 16, 8, 1, 1536);
  c.set_sequence_parallel(true);
  c.set_tp_comm_overlap(true);
  expect_field(c, "tp_comm_overlap",
               {"tp 16 exceeds the 8 GPUs per node", "expected tp at most 8"});
}

// Flash kernels take head sizes that are multiples of 8 up to 256; the unfused core any.
TEST_F(ParallelTest, FlashAttentionNeedsASupportedHeadSize) {
  const ParallelConfig c = raw(1, 1, 1, 1, 1);
  for (int64_t head_dim : {8, 80, 128, 256}) {
    const ModelSpec m = gpt(2, 4 * head_dim, 4, 128, 1000);
    EXPECT_EQ(validate_parallel_config(c, m, h100_).attention(), ATTENTION_FLASH) << head_dim;
  }
  for (int64_t head_dim : {12, 100, 264, 512}) {
    const ModelSpec m = gpt(2, 4 * head_dim, 4, 128, 1000);
    expect_field(c, "attention",
                 {"flash attention", "multiple of 8", "at most 256",
                  std::to_string(head_dim).c_str(), "unfused"},
                 &m);
    ParallelConfig unfused = c;
    unfused.set_attention(ATTENTION_UNFUSED);
    EXPECT_EQ(validate_parallel_config(unfused, m, h100_).attention(), ATTENTION_UNFUSED);
  }
  ParallelConfig unknown = c;
  unknown.set_attention(static_cast<Attention>(7));
  expect_field(unknown, "attention", {"unknown attention implementation (7)", "flash or unfused"});
}

TEST_F(ParallelTest, BucketGrowsWithDp) {
  const ParallelConfig c = validate_parallel_config(raw(4096, 8, 8, 1, 4096), gpt175_, h100_);
  EXPECT_EQ(c.data_parallel(), 64);
  EXPECT_EQ(c.dp_bucket_params(), 64'000'000);
}

TEST_F(ParallelTest, InterleavedWhenVppAboveOne) {
  ParallelConfig r = raw(512, 8, 8, 1, 512);
  r.set_virtual_pipeline_stages(2);
  const ParallelConfig c = validate_parallel_config(r, gpt175_, h100_);
  EXPECT_EQ(c.schedule(), INTERLEAVED_1F1B);
  EXPECT_EQ(c.virtual_pipeline_stages(), 2);
}

TEST_F(ParallelTest, GivenValuesKept) {
  ParallelConfig r = raw(64, 8, 8, 2, 64);
  r.set_data_parallel(1);
  r.set_schedule(GPIPE);
  r.set_recompute(RECOMPUTE_FULL);
  r.set_rank_order(TP_PP_DP);
  r.set_dp_bucket_params(5);
  r.set_sequence_parallel(true);
  r.set_zero_stage(1);
  const ParallelConfig c = validate_parallel_config(r, gpt175_, h100_);
  EXPECT_EQ(c.schedule(), GPIPE);
  EXPECT_EQ(c.recompute(), RECOMPUTE_FULL);
  EXPECT_EQ(c.rank_order(), TP_PP_DP);
  EXPECT_EQ(c.dp_bucket_params(), 5);
  EXPECT_TRUE(c.sequence_parallel());
  EXPECT_EQ(c.zero_stage(), 1);
}

TEST_F(ParallelTest, NormalizedConfigIsAFixedPoint) {
  const ParallelConfig c = mpsim::testing::config(8, 8, 16, 1, 1536);
  const ParallelConfig v = validate_parallel_config(c, gpt175_, h100_);
  EXPECT_EQ(v.SerializeAsString(), c.SerializeAsString());
}

// ---------------------------------------------------------------------------------------------
// ParallelConfig: every constraint.

TEST_F(ParallelTest, CountsInRange) {
  expect_field(raw(0, 1, 1, 1, 8), "num_gpus", {"num_gpus (0)", "expected 1 to 1048576"});
  expect_field(raw(2097152, 1, 1, 1, 8), "num_gpus", {"num_gpus (2097152)", "1048576"});
  expect_field(raw(8, 0, 1, 1, 8), "tensor_parallel", {"tp (0)", "expected 1 to 8"});
  expect_field(raw(8, 16, 1, 1, 8), "tensor_parallel", {"tp (16)", "expected 1 to 8"});
  expect_field(raw(8, 1, 0, 1, 8), "pipeline_parallel", {"pp (0)", "expected 1 to 8"});
  expect_field(raw(8, 1, 1, 0, 8), "micro_batch_size", {"micro-batch size (0)", "expected 1 to 8"});
  expect_field(raw(8, 1, 1, 16, 8), "micro_batch_size",
               {"micro-batch size (16)", "expected 1 to 8"});
  expect_field(raw(8, 1, 1, 1, 0), "global_batch_size",
               {"global batch size (0)", "expected 1 to 16777216"});
  expect_field(raw(8, 1, 1, 1, 16777217), "global_batch_size",
               {"global batch size (16777217)", "16777216"});
  ParallelConfig c = raw(8, 1, 1, 1, 8);
  c.set_data_parallel(-1);
  expect_field(c, "data_parallel", {"dp (-1)", "expected 1 to 8"});
  c = raw(8, 1, 1, 1, 8);
  c.set_virtual_pipeline_stages(-2);
  expect_field(c, "virtual_pipeline_stages", {"vpp (-2) is negative"});
  c = raw(8, 1, 1, 1, 8);
  c.set_dp_bucket_params(-5);
  expect_field(c, "dp_bucket_params", {"negative"});
}

TEST_F(ParallelTest, GpusMustSplitIntoTpPpDp) {
  expect_field(raw(12, 8, 1, 1, 12), "num_gpus",
               {"num_gpus (12) is not divisible by tp x pp (8 x 1 = 8)", "expected a multiple"});
  ParallelConfig c = raw(64, 8, 2, 1, 64);
  c.set_data_parallel(3);
  expect_field(c, "data_parallel", {"tp x pp x dp (8 x 2 x 3 = 48) does not equal num_gpus (64)"});
}

TEST_F(ParallelTest, TpMustDivideHeadsKvHeadsAndFfn) {
  // The field, and the message as a caller prints it after naming where the field came from.
  const FieldError e =
      field_error([&] { validate_parallel_config(raw(5, 5, 1, 1, 8), gpt175_, h100_); });
  EXPECT_EQ(e.field(), "tensor_parallel");
  EXPECT_EQ(e.message(),
            "num_attention_heads (96) is not divisible by tp (5); expected tp to divide 96");
  expect_field(raw(5, 5, 1, 1, 8), "tensor_parallel",
               {"num_attention_heads (96) is not divisible by tp (5)", "expected tp to divide 96"});
  const ModelSpec l70 = load_model_spec("llama3-70b");
  expect_field(raw(16, 16, 1, 1, 16), "tensor_parallel",
               {"num_kv_heads (8) is not divisible by tp (16)"}, &l70);
  ModelSpec odd_ffn = gpt(24, 1024, 16);
  odd_ffn.set_ffn_hidden_size(1000);
  expect_field(raw(16, 16, 1, 1, 16), "tensor_parallel",
               {"ffn_hidden_size (1000) is not divisible by tp (16)"}, &odd_ffn);
  // 0 means the default and is checked as its value.
  ModelSpec defaults = gpt(24, 1024, 16);
  defaults.set_ffn_hidden_size(0);
  defaults.set_num_kv_heads(0);
  EXPECT_NO_THROW(validate_parallel_config(raw(16, 16, 1, 1, 16), defaults, h100_));
}

TEST_F(ParallelTest, PpAndVppMustDivideLayers) {
  expect_field(raw(7, 1, 7, 1, 7), "pipeline_parallel",
               {"num_layers (96) is not divisible by pp (7)"});
  ParallelConfig c = raw(16, 1, 16, 1, 16);
  c.set_virtual_pipeline_stages(4);
  expect_field(c, "virtual_pipeline_stages", {"num_layers (96) is not divisible by pp x vpp (64)"});
  c = raw(2, 1, 2, 1, 16);
  c.set_virtual_pipeline_stages(200);
  expect_field(c, "virtual_pipeline_stages", {"vpp (200) is larger than num_layers (96)"});
}

TEST_F(ParallelTest, GlobalBatchMustSplitIntoMicroBatches) {
  expect_field(
      raw(64, 8, 1, 2, 100), "global_batch_size",
      {"global batch size (100) is not divisible by mbs x dp (2 x 8 = 16)", "expected a multiple"});
  const ModelSpec small = gpt(2, 64, 1);
  expect_field(raw(1, 1, 1, 1, 2'000'000), "global_batch_size",
               {"micro-batches per pipeline (2000000) exceed the limit 1048576"}, &small);
}

TEST_F(ParallelTest, InterleavedScheduleRules) {
  ParallelConfig c = raw(8, 1, 8, 1, 16);
  c.set_schedule(INTERLEAVED_1F1B);
  expect_field(c, "virtual_pipeline_stages", {"interleaved schedule needs vpp >= 2", "got 1"});
  c = raw(1, 1, 1, 1, 16);
  c.set_virtual_pipeline_stages(2);
  expect_field(c, "pipeline_parallel", {"interleaved schedule needs pp >= 2", "got 1"});
  c = raw(4, 1, 4, 1, 6);
  c.set_virtual_pipeline_stages(2);
  expect_field(c, "global_batch_size",
               {"micro-batches per pipeline (6) is not divisible by pp (4)",
                "interleaved schedule expects a multiple"});
}

TEST_F(ParallelTest, VppNeedsInterleaved) {
  ParallelConfig c = raw(8, 1, 8, 1, 16);
  c.set_virtual_pipeline_stages(2);
  c.set_schedule(GPIPE);
  expect_field(c, "virtual_pipeline_stages", {"vpp (2) needs the interleaved schedule, not gpipe"});
  c.set_schedule(ONE_F_ONE_B);
  expect_field(c, "virtual_pipeline_stages", {"vpp (2) needs the interleaved schedule, not 1f1b"});
}

TEST_F(ParallelTest, SequenceParallelRules) {
  ParallelConfig c = raw(8, 1, 1, 1, 8);
  c.set_sequence_parallel(true);
  expect_field(c, "sequence_parallel", {"sequence parallelism needs tp > 1 (got tp 1)"});
  ModelSpec odd_seq = gpt(24, 1024, 16, /*seq=*/1000);
  c = raw(16, 16, 1, 1, 16);
  c.set_sequence_parallel(true);
  expect_field(c, "sequence_parallel", {"seq_length (1000) is not divisible by tp (16)"}, &odd_seq);
}

TEST_F(ParallelTest, ZeroRules) {
  ParallelConfig c = raw(8, 8, 1, 1, 8);
  c.set_zero_stage(4);
  expect_field(c, "zero_stage", {"zero stage (4) is out of range; expected 0 to 3"});
  c.set_zero_stage(-1);
  expect_field(c, "zero_stage", {"zero stage (-1)"});
  c = raw(16, 8, 2, 1, 8);
  for (int stage : {2, 3}) {
    c.set_zero_stage(stage);
    expect_field(c, "zero_stage", {"with pp 2 is not supported", "DeepSpeed"});
  }
  c = raw(16, 8, 1, 1, 8);
  c.set_zero_stage(3);
  EXPECT_NO_THROW(validate_parallel_config(c, gpt175_, h100_));
}

TEST_F(ParallelTest, UnknownEnumNumbers) {
  ParallelConfig c = raw(8, 8, 1, 1, 8);
  c.set_schedule(static_cast<Schedule>(9));
  expect_field(c, "schedule", {"unknown schedule (9)"});
  c = raw(8, 8, 1, 1, 8);
  c.set_recompute(static_cast<Recompute>(9));
  expect_field(c, "recompute", {"unknown recompute mode (9)"});
  c = raw(8, 8, 1, 1, 8);
  c.set_rank_order(static_cast<RankOrder>(9));
  expect_field(c, "rank_order", {"unknown rank order (9)"});
}

TEST_F(ParallelTest, ModelDtypeNeedsAPeakOnTheHardware) {
  ModelSpec fp8 = gpt175_;
  fp8.set_dtype(FP8);
  EXPECT_NO_THROW(validate_parallel_config(raw(8, 8, 1, 1, 8), fp8, h100_));
  const Hardware a100 = load_hardware("a100-sxm-80gb");
  const FieldError e =
      field_error([&] { validate_parallel_config(raw(8, 8, 1, 1, 8), fp8, a100); });
  EXPECT_EQ(e.field(), "gpu.peak_fp8");
  expect_words(e.what(), {"'a100-sxm-80gb' has no peak FLOP rate for the model's dtype FP8"});
}

TEST_F(ParallelTest, ModelMustBeUsable) {
  ModelSpec m = gpt175_;
  m.set_dtype(DTYPE_UNSPECIFIED);
  expect_field(raw(8, 8, 1, 1, 8), "dtype", {"dtype is not specified"}, &m);
  m = gpt175_;
  m.set_num_attention_heads(0);
  expect_field(raw(8, 8, 1, 1, 8), "num_attention_heads",
               {"num_attention_heads (0) is not positive"}, &m);
  m = gpt175_;
  m.set_num_kv_heads(-1);
  expect_field(raw(8, 8, 1, 1, 8), "num_kv_heads", {"negative"}, &m);
}

}  // namespace
}  // namespace mpsim::spec
