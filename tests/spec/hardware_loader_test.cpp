// Tests of simulator/spec/hardware_loader.cpp and hardware.cpp: units convert to SI, and every
// HardwareProfile check produces its own error with the right file, line and field.
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
// HardwareProfile checks and units.

// The H100 profile with one quantity replaced, converted.
Hardware with_quantity(const std::string& from, const std::string& to) {
  return to_hardware(parse_hardware_profile(replace_once(read(kH100Path), from, to), "p"), "p");
}

TEST(Units, ConvertToSi) {
  const std::string bw = "value: 400 unit: \"Gb/s\"";
  EXPECT_DOUBLE_EQ(with_quantity(bw, "value: 400 unit: \"Gbit/s\"").network_bytes_per_s, 50e9);
  EXPECT_DOUBLE_EQ(with_quantity(bw, "value: 2 unit: \"GiB/s\"").network_bytes_per_s,
                   2.0 * (1 << 30));
  EXPECT_DOUBLE_EQ(with_quantity(bw, "value: 3e9 unit: \"B/s\"").network_bytes_per_s, 3e9);
  EXPECT_DOUBLE_EQ(with_quantity(bw, "value: 0.1 unit: \"TB/s\"").network_bytes_per_s, 1e11);
  const std::string cap = "value: 80 unit: \"GB\"";
  EXPECT_DOUBLE_EQ(with_quantity(cap, "value: 80 unit: \"GiB\"").hbm_capacity_bytes,
                   80.0 * (1 << 30));
  EXPECT_DOUBLE_EQ(with_quantity(cap, "value: 0.08 unit: \"TB\"").hbm_capacity_bytes, 80e9);
  EXPECT_DOUBLE_EQ(with_quantity(cap, "value: 1e10 unit: \"B\"").hbm_capacity_bytes, 1e10);
  const std::string t = "value: 2 unit: \"us\" source: \"assumed: typical GPU-side";
  const std::string t_rest = " source: \"assumed: typical GPU-side";
  EXPECT_DOUBLE_EQ(with_quantity(t, "value: 1500 unit: \"ns\"" + t_rest).kernel_launch_s, 1.5e-6);
  EXPECT_DOUBLE_EQ(with_quantity(t, "value: 0.003 unit: \"ms\"" + t_rest).kernel_launch_s, 3e-6);
  EXPECT_DOUBLE_EQ(with_quantity(t, "value: 4e-6 unit: \"s\"" + t_rest).kernel_launch_s, 4e-6);
  const std::string flops = "value: 989.4 unit: \"TFLOP/s\"";
  EXPECT_DOUBLE_EQ(with_quantity(flops, "value: 0.9894 unit: \"PFLOP/s\"").peak_bf16_flops,
                   989.4e12);
  EXPECT_DOUBLE_EQ(with_quantity(flops, "value: 989400 unit: \"GFLOP/s\"").peak_bf16_flops,
                   989.4e12);
  EXPECT_DOUBLE_EQ(with_quantity(flops, "value: 9.894e14 unit: \"FLOP/s\"").peak_bf16_flops,
                   989.4e12);
  EXPECT_DOUBLE_EQ(
      with_quantity("value: 0.86 unit: \"fraction\"", "value: 86 unit: \"%\"").gemm_max_efficiency,
      0.86);
}

TEST(HardwareChecks, MissingQuantityPointsAtItsMessage) {
  const std::string text = read(kH100Path);
  const int peak_line = line_containing(text, "peak_bf16");
  const SpecError e =
      hw_error(text.substr(text.find("peak_bf16"),
                           text.find('\n', text.find("peak_bf16")) - text.find("peak_bf16")),
               "# removed", "gpu.peak_bf16", line_containing(text, "gpu {"));
  expect_words(e.what(), {"missing", "expected a FLOP rate", "unit:", "source:"});
  EXPECT_GT(peak_line, 0);
}

TEST(HardwareChecks, ValueMustBePositive) {
  const int line = line_containing(read(kH100Path), "peak_bf16");
  for (const char* v : {"value: 0 ", "value: -1 ", "value: inf ", "value: nan "}) {
    const SpecError e = hw_error("value: 989.4 ", v, "gpu.peak_bf16.value", line);
    expect_words(e.what(), {"not a positive number", "expected a FLOP rate > 0"});
  }
  // An absent value reads 0 and is refused the same way.
  hw_error("value: 989.4 ", "", "gpu.peak_bf16.value", line);
}

TEST(HardwareChecks, UnitMustBeKnownForTheDimension) {
  const std::string text = read(kH100Path);
  SpecError e = hw_error("value: 989.4 unit: \"TFLOP/s\"", "value: 989.4 unit: \"TFLOPS\"",
                         "gpu.peak_bf16.unit", line_containing(text, "peak_bf16"));
  expect_words(e.what(), {"unknown unit \"TFLOPS\" for a FLOP rate",
                          "expected one of FLOP/s, GFLOP/s, TFLOP/s, PFLOP/s"});
  e = hw_error("value: 80 unit: \"GB\"", "value: 80 unit: \"GB/s\"", "gpu.hbm_capacity.unit",
               line_containing(text, "hbm_capacity"));
  expect_words(e.what(), {"for a capacity", "B, GB, GiB, TB"});
  e = hw_error("value: 450 unit: \"GB/s\"", "value: 450 unit: \"GB\"", "node.nvlink_bandwidth.unit",
               line_containing(text, "nvlink_bandwidth"));
  expect_words(e.what(), {"for a bandwidth", "Gb/s", "Gbit/s", "GiB/s"});
  e = hw_error("value: 5 unit: \"us\"", "value: 5 unit: \"µs\"", "network.latency.unit",
               line_containing(text, "latency { value: 5"));
  expect_words(e.what(), {"for a time", "s, ms, us, ns"});
  e = hw_error("value: 64 unit: \"elements\"", "value: 64 unit: \"\"",
               "efficiency.gemm_half_dim.unit", line_containing(text, "gemm_half_dim"));
  expect_words(e.what(), {"unknown unit \"\"", "elements"});
  e = hw_error("value: 0.3 unit: \"fraction\"", "value: 0.3 unit: \"ratio\"",
               "efficiency.attention_max.unit", line_containing(text, "  attention_max"));
  expect_words(e.what(), {"fraction, %"});
}

// MemoryOverheads: each given field replaces its default; a wrong unit names the field and line.
TEST(HardwareChecks, MemoryOverheadsOverrideTheDefaults) {
  const std::string tail = "provenance:";
  const std::string text = read(kH100Path);
  ASSERT_NE(text.find(tail), std::string::npos);
  const std::string block =
      "memory_overheads {\n"
      "  cuda_context { value: 1 unit: \"GiB\" source: \"assumed: test\" }\n"
      "  fragmentation { value: 10 unit: \"%\" source: \"assumed: test\" }\n"
      "}\n";
  const Hardware hw =
      to_hardware(parse_hardware_profile(replace_once(text, tail, block + tail), "p"), "p");
  EXPECT_DOUBLE_EQ(hw.cuda_context_bytes, 1 << 30);
  EXPECT_DOUBLE_EQ(hw.allocator_fragmentation, 0.1);
  EXPECT_DOUBLE_EQ(hw.library_workspace_bytes, kDefaultLibraryWorkspaceBytes);
  EXPECT_DOUBLE_EQ(hw.nccl_communicator_bytes, kDefaultNcclCommunicatorBytes);
  const std::string bad = replace_once(text, tail,
                                       "memory_overheads {\n  nccl_per_communicator { value: 1 "
                                       "unit: \"GB/s\" source: \"assumed: test\" }\n}\n" +
                                           tail);
  const SpecError e = spec_error([&] { parse_hardware_profile(bad, "hw/p.textproto"); });
  EXPECT_EQ(e.field(), "memory_overheads.nccl_per_communicator.unit") << e.what();
  EXPECT_EQ(e.line(), line_containing(bad, "nccl_per_communicator"));
  expect_words(e.what(), {"for a capacity", "GiB"});
}

TEST(HardwareChecks, SourceRequired) {
  const std::string text = read(kH100Path);
  const std::string from = text.substr(text.find("source:", text.find("hbm_bandwidth")));
  const std::string quoted = from.substr(0, from.find("\" }") + 1);
  const SpecError e = hw_error(quoted, "source: \"\"", "gpu.hbm_bandwidth.source",
                               line_containing(text, "hbm_bandwidth"));
  expect_words(e.what(), {"empty", "expected where the number comes from"});
}

TEST(HardwareChecks, FractionAtMostOne) {
  const int line = line_containing(read(kH100Path), "gemm_max {");
  SpecError e = hw_error("value: 0.86 unit: \"fraction\"", "value: 1.2 unit: \"fraction\"",
                         "efficiency.gemm_max.value", line);
  expect_words(e.what(), {"more than the whole", "(0, 1]"});
  e = hw_error("value: 0.86 unit: \"fraction\"", "value: 120 unit: \"%\"",
               "efficiency.gemm_max.value", line);
  expect_words(e.what(), {"120 %"});
  EXPECT_DOUBLE_EQ(with_quantity("value: 0.86 unit", "value: 1 unit").gemm_max_efficiency, 1);
}

TEST(HardwareChecks, GpusPerNodeAtLeastOne) {
  const int line = line_containing(read(kH100Path), "gpus_per_node");
  SpecError e = hw_error("gpus_per_node: 8", "gpus_per_node: 0", "node.gpus_per_node", line);
  expect_words(e.what(), {"missing or 0", "expected at least 1 GPU per node"});
  e = hw_error("gpus_per_node: 8", "gpus_per_node: -2", "node.gpus_per_node", line);
  expect_words(e.what(), {"-2 is not positive"});
}

TEST(HardwareChecks, NamesRequired) {
  const std::string text = read(kH100Path);
  SpecError e = hw_error("name: \"h100-sxm\"", "name: \"\"", "name",
                         line_containing(text, "name: \"h100-sxm\""));
  expect_words(e.what(), {"missing", "profile's name"});
  e = hw_error("name: \"NVIDIA H100 SXM5 80GB\"", "", "gpu.name", line_containing(text, "gpu {"));
  expect_words(e.what(), {"missing", "GPU's name"});
}

TEST(HardwareChecks, OptionalPeaksAbsentOrValid) {
  const std::string text = read(kH100Path);
  const size_t at = text.find("  peak_fp8");
  const std::string without_fp8 = text.substr(0, at) + text.substr(text.find('\n', at) + 1);
  EXPECT_EQ(to_hardware(parse_hardware_profile(without_fp8, "p"), "p").peak_fp8_flops, 0);
  hw_error("value: 1978.9 unit: \"TFLOP/s\"", "value: 1978.9 unit: \"TB/s\"", "gpu.peak_fp8.unit",
           line_containing(text, "peak_fp8"));
}

TEST(HardwareChecks, MissingSectionsNamedByFirstQuantity) {
  const std::string text = read(kH100Path);
  const std::string no_network = text.substr(0, text.find("network {"));
  SpecError e = spec_error([&] { parse_hardware_profile(no_network, "p.textproto"); });
  EXPECT_EQ(e.field(), "network.bandwidth_per_gpu");
  EXPECT_EQ(e.line(), 0);
  expect_words(e.what(), {"missing", "expected a bandwidth"});
}

TEST(HardwareChecks, ToHardwareOnProfileBuiltInCodeHasNoLine) {
  HardwareProfile p = load_hardware_profile("h100-sxm");
  p.mutable_network()->mutable_latency()->set_unit("fortnights");
  const SpecError e = spec_error([&] { to_hardware(p, "in-code"); });
  EXPECT_EQ(e.file(), "in-code");
  EXPECT_EQ(e.line(), 0);
  EXPECT_EQ(e.field(), "network.latency.unit");
}

TEST(HardwareChecks, CalibratedTablesCopied) {
  const std::string text = read(kH100Path) +
                           "calibrated { op: \"gemm.bf16\" key_names: \"m\" key_names: \"n\" "
                           "points { key: 1 key: 2 seconds: 3e-6 } provenance: \"test\" }\n";
  const Hardware hw = to_hardware(parse_hardware_profile(text, "p"), "p");
  ASSERT_EQ(hw.calibrated.size(), 1u);
  EXPECT_EQ(hw.calibrated[0].op(), "gemm.bf16");
  ASSERT_EQ(hw.calibrated[0].points_size(), 1);
  EXPECT_DOUBLE_EQ(hw.calibrated[0].points(0).seconds(), 3e-6);
}

}  // namespace
}  // namespace mpsim::spec
