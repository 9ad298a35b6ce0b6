// Tests of the shipped data (models/, hw_profiles/): every file loads through the spec loader
// with the numbers of its sources, in SI units, each number naming its source.
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
// Shipped data.

TEST(ShippedData, EveryModelLoadsAndNamesItsSource) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("models")) {
    if (entry.path().extension() != ".textproto") continue;
    ++count;
    const std::string stem = entry.path().stem().string();
    const ModelSpec m = load_model_spec(stem);
    EXPECT_EQ(m.name(), stem);
    EXPECT_FALSE(m.source().empty()) << stem;
    EXPECT_EQ(read(entry.path()).rfind("# ", 0), 0u) << stem << " lacks a # header line";
  }
  EXPECT_GE(count, 22);  // the 22 listed in models/README.md, more may come
}

TEST(ShippedData, EveryProfileLoads) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("hw_profiles")) {
    if (entry.path().extension() != ".textproto") continue;
    ++count;
    const Hardware hw = load_hardware(entry.path().string());
    EXPECT_EQ(hw.name, entry.path().stem().string());
    EXPECT_GE(hw.gpus_per_node, 1);
  }
  EXPECT_GE(count, 2);
}

TEST(ShippedData, Gpt3_175b) {
  const ModelSpec m = load_model_spec("gpt3-175b");
  EXPECT_EQ(m.num_layers(), 96);
  EXPECT_EQ(m.hidden_size(), 12288);
  EXPECT_EQ(m.num_attention_heads(), 96);
  EXPECT_EQ(m.num_kv_heads(), 96);
  EXPECT_EQ(m.ffn_hidden_size(), 4 * 12288);
  EXPECT_EQ(m.seq_length(), 2048);
  EXPECT_EQ(m.vocab_size(), 51200);
  EXPECT_EQ(m.norm(), LAYER_NORM);
  EXPECT_EQ(m.activation(), GELU);
  EXPECT_EQ(m.position_embedding(), LEARNED);
  EXPECT_TRUE(m.tied_embeddings());
  EXPECT_TRUE(m.linear_bias());
  EXPECT_DOUBLE_EQ(m.dropout(), 0.1);
  EXPECT_EQ(m.dtype(), BF16);
}

TEST(ShippedData, LlamaAndGpt2) {
  const ModelSpec l3 = load_model_spec("llama3-70b");
  EXPECT_EQ(l3.num_kv_heads(), 8);
  EXPECT_EQ(l3.num_attention_heads(), 64);
  EXPECT_EQ(l3.ffn_hidden_size(), 28672);
  EXPECT_EQ(l3.vocab_size(), 128256);
  EXPECT_EQ(l3.seq_length(), 8192);
  EXPECT_EQ(l3.activation(), SWIGLU);
  EXPECT_EQ(l3.position_embedding(), ROTARY);
  EXPECT_FALSE(l3.tied_embeddings());
  EXPECT_FALSE(l3.linear_bias());
  EXPECT_EQ(load_model_spec("llama3-405b").num_layers(), 126);
  EXPECT_EQ(load_model_spec("llama2-7b").num_kv_heads(), 32);
  EXPECT_EQ(load_model_spec("llama2-70b").num_kv_heads(), 8);
  const ModelSpec g2 = load_model_spec("gpt2-1.5b");
  EXPECT_EQ(g2.num_attention_heads(), 25);
  EXPECT_EQ(g2.vocab_size(), 50257);
  EXPECT_EQ(g2.seq_length(), 1024);
}

TEST(ShippedData, H100InSiUnits) {
  const Hardware hw = load_hardware("h100-sxm");
  EXPECT_DOUBLE_EQ(hw.peak_bf16_flops, 989.4e12);
  EXPECT_DOUBLE_EQ(hw.peak_fp16_flops, 989.4e12);
  EXPECT_DOUBLE_EQ(hw.peak_fp8_flops, 1978.9e12);
  EXPECT_DOUBLE_EQ(hw.peak_tf32_flops, 494.7e12);
  EXPECT_DOUBLE_EQ(hw.peak_fp32_flops, 66.9e12);
  EXPECT_DOUBLE_EQ(hw.hbm_bytes_per_s, 3.35e12);
  EXPECT_DOUBLE_EQ(hw.hbm_capacity_bytes, 80e9);
  EXPECT_DOUBLE_EQ(hw.nvlink_bytes_per_s, 450e9);
  EXPECT_DOUBLE_EQ(hw.network_bytes_per_s, 50e9);
  EXPECT_DOUBLE_EQ(hw.kernel_launch_s, 2e-6);
  EXPECT_DOUBLE_EQ(hw.nvlink_latency_s, 2e-6);
  EXPECT_DOUBLE_EQ(hw.network_latency_s, 5e-6);
  EXPECT_DOUBLE_EQ(hw.gemm_max_efficiency, 0.86);
  EXPECT_DOUBLE_EQ(hw.gemm_half_dim, 64);
  EXPECT_DOUBLE_EQ(hw.peak_flops(BF16), 989.4e12);
  EXPECT_DOUBLE_EQ(hw.peak_flops(FP8), 1978.9e12);
  EXPECT_DOUBLE_EQ(hw.peak_flops(FP32), 66.9e12);
  EXPECT_EQ(hw.peak_flops(DTYPE_UNSPECIFIED), 0);
}

TEST(ShippedData, A100HasNoFp8) {
  const Hardware hw = load_hardware("a100-sxm-80gb");
  EXPECT_DOUBLE_EQ(hw.peak_flops(BF16), 312e12);
  EXPECT_DOUBLE_EQ(hw.peak_tf32_flops, 156e12);
  EXPECT_EQ(hw.peak_fp8_flops, 0);
  EXPECT_EQ(hw.peak_flops(FP8), 0);
  EXPECT_DOUBLE_EQ(hw.hbm_bytes_per_s, 2039e9);
  EXPECT_DOUBLE_EQ(hw.nvlink_bytes_per_s, 300e9);
  EXPECT_DOUBLE_EQ(hw.network_bytes_per_s, 25e9);
}

TEST(ShippedData, EveryProfileQuantityHasASource) {
  const HardwareProfile p = load_hardware_profile("h100-sxm");
  EXPECT_EQ(p.efficiency().gemm_max().source().rfind("measured on", 0), 0u);
  EXPECT_EQ(p.efficiency().attention_max().source().rfind("measured on", 0), 0u);
  EXPECT_EQ(p.efficiency().flash_attention_max().source().rfind("assumed: ", 0), 0u);
  EXPECT_EQ(p.node().nvlink_latency().source().rfind("assumed: ", 0), 0u);
}

}  // namespace
}  // namespace mpsim::spec
