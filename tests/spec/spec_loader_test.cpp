// Tests of simulator/spec/spec_loader.cpp and hardware.cpp: the shipped data loads with the
// numbers of its sources, units convert to SI, and every check produces its own error with the
// right file, line, field or flag. Run from the repository root (ctest does).
#include "simulator/spec/spec_loader.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>

#include "tests/test_models.h"

namespace mpsim::spec {
namespace {

namespace fs = std::filesystem;
using mpsim::testing::gpt;
using mpsim::testing::llama;

// ---------------------------------------------------------------------------------------------
// Helpers.

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs f, which must throw E; returns the error (a default-looking one after a test failure).
template <typename E>
E expect_throw(const std::function<void()>& f, const E& fallback) {
  try {
    f();
  } catch (const E& e) {
    return e;
  }
  ADD_FAILURE() << "expected an exception, none thrown";
  return fallback;
}

SpecError spec_error(const std::function<void()>& f) {
  return expect_throw<SpecError>(f, SpecError("", 0, "", "none"));
}
FlagError flag_error(const std::function<void()>& f) {
  return expect_throw<FlagError>(f, FlagError("", "none"));
}

void expect_words(const std::string& what, std::initializer_list<const char*> words) {
  for (const char* w : words)
    EXPECT_NE(what.find(w), std::string::npos) << what << "\nlacks: " << w;
}

// A valid model, one field per line after a comment, so field i is on line i + 2.
const std::vector<std::pair<std::string, std::string>> kModelFields = {
    {"name", "\"m\""},
    {"num_layers", "24"},
    {"hidden_size", "1024"},
    {"ffn_hidden_size", "4096"},
    {"num_attention_heads", "16"},
    {"num_kv_heads", "16"},
    {"seq_length", "2048"},
    {"vocab_size", "51200"},
    {"norm", "LAYER_NORM"},
    {"activation", "GELU"},
    {"position_embedding", "LEARNED"},
    {"dtype", "BF16"},
    {"dropout", "0.1"},
    {"source", "\"test\""}};

int model_line(const std::string& field) {
  for (size_t i = 0; i < kModelFields.size(); ++i) {
    if (kModelFields[i].first == field) return static_cast<int>(i) + 2;
  }
  return -1;
}

// The model text with some values replaced; a value of "" leaves a comment in the field's place
// so that line numbers do not move.
std::string model_text(const std::map<std::string, std::string>& replace = {}) {
  std::string text = "# test model\n";
  for (const auto& [field, value] : kModelFields) {
    const auto r = replace.find(field);
    if (r == replace.end()) {
      text += field + ": " + value + "\n";
    } else {
      text += r->second.empty() ? "# removed\n" : field + ": " + r->second + "\n";
    }
  }
  return text;
}

// The model error for one replaced field, checked for file, line and field.
SpecError model_error(const std::map<std::string, std::string>& replace, const std::string& field,
                      int line) {
  SpecError e = spec_error([&] { parse_model_spec(model_text(replace), "models/x.textproto"); });
  EXPECT_EQ(e.file(), "models/x.textproto");
  EXPECT_EQ(e.field(), field) << e.what();
  EXPECT_EQ(e.line(), line) << e.what();
  return e;
}

const std::string kH100Path = "hw_profiles/h100-sxm.textproto";

// 1-based line of the first line of text containing needle.
int line_containing(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// The H100 profile text with one piece replaced; the error must name field at line.
SpecError hw_error(const std::string& from, const std::string& to, const std::string& field,
                   int line) {
  const std::string text = replace_once(read(kH100Path), from, to);
  SpecError e = spec_error([&] { parse_hardware_profile(text, "hw/p.textproto"); });
  EXPECT_EQ(e.field(), field) << e.what();
  EXPECT_EQ(e.line(), line) << e.what();
  return e;
}

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
  EXPECT_EQ(p.efficiency().attention_max().source().rfind("assumed: ", 0), 0u);
  EXPECT_EQ(p.node().nvlink_latency().source().rfind("assumed: ", 0), 0u);
}

// ---------------------------------------------------------------------------------------------
// Finding files.

TEST(Resolve, NamePathAndUnknownName) {
  EXPECT_EQ(resolve_spec_path("gpt3-175b", "models"), "models/gpt3-175b.textproto");
  EXPECT_EQ(resolve_spec_path("models/gpt2-124m.textproto", "models"),
            "models/gpt2-124m.textproto");
  SpecError e = spec_error([] { resolve_spec_path("gpt3-176b", "models"); });
  EXPECT_EQ(e.file(), "gpt3-176b");
  expect_words(e.what(), {"no such models entry", "expected one of", "gpt3-175b"});
  e = spec_error([] { resolve_spec_path("nowhere/x.textproto", "models"); });
  expect_words(e.what(), {"nowhere/x.textproto: no such file"});
  e = spec_error([] { load_hardware("h200-nvl"); });
  expect_words(e.what(), {"h100-sxm", "a100-sxm-80gb"});
}

TEST(Resolve, DataDirComesFirst) {
  const fs::path dir = fs::temp_directory_path() / "mpsim_spec_test_data";
  fs::create_directories(dir / "models");
  std::ofstream(dir / "models" / "gpt3-175b.textproto")
      << replace_once(model_text(), "name: \"m\"", "name: \"override\"");
  ::setenv("MPSIM_DATA_DIR", dir.c_str(), 1);
  const ModelSpec m = load_model_spec("gpt3-175b");
  ::unsetenv("MPSIM_DATA_DIR");
  fs::remove_all(dir);
  EXPECT_EQ(m.name(), "override");
}

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

// ---------------------------------------------------------------------------------------------
// ModelSpec checks.

TEST(ModelChecks, ValidModelAndDefaults) {
  const ModelSpec m =
      parse_model_spec(model_text({{"ffn_hidden_size", ""}, {"num_kv_heads", ""}}), "m.textproto");
  EXPECT_EQ(m.ffn_hidden_size(), 4 * 1024);
  EXPECT_EQ(m.num_kv_heads(), 16);
}

TEST(ModelChecks, NameRequired) {
  const SpecError e = model_error({{"name", "\"\""}}, "name", model_line("name"));
  expect_words(e.what(), {"missing", "expected"});
}

TEST(ModelChecks, CountsMustBePositive) {
  for (const char* field :
       {"num_layers", "hidden_size", "num_attention_heads", "seq_length", "vocab_size"}) {
    SpecError e = model_error({{field, "0"}}, field, model_line(field));
    expect_words(e.what(), {"missing or 0", "expected a positive count"});
    e = model_error({{field, "-3"}}, field, model_line(field));
    expect_words(e.what(), {"-3 is not positive"});
    e = model_error({{field, ""}}, field, 0);  // absent: no line to point at
    expect_words(e.what(), {"missing or 0"});
  }
}

TEST(ModelChecks, AbsurdSizesRefusedWithTheLimit) {
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"num_layers", {"1025", "limit 1024"}},
      {"hidden_size", {"262144", "limit 131072"}},
      {"ffn_hidden_size", {"2097152", "limit 1048576"}},
      {"num_attention_heads", {"8192", "limit 4096"}},
      {"num_kv_heads", {"8192", "limit 4096"}},
      {"seq_length", {"8388608", "limit 4194304"}},
      {"vocab_size", {"33554432", "limit 16777216"}}};
  for (const auto& [field, c] : cases) {
    const SpecError e = model_error({{field, c.first}}, field, model_line(field));
    expect_words(e.what(), {c.second.c_str(), "expected at most"});
  }
}

TEST(ModelChecks, OptionalCountsRefuseNegatives) {
  SpecError e =
      model_error({{"ffn_hidden_size", "-1"}}, "ffn_hidden_size", model_line("ffn_hidden_size"));
  expect_words(e.what(), {"negative", "0 for 4 * hidden_size"});
  e = model_error({{"num_kv_heads", "-1"}}, "num_kv_heads", model_line("num_kv_heads"));
  expect_words(e.what(), {"negative", "0 for num_attention_heads"});
}

TEST(ModelChecks, HeadsMustDivideHiddenPointsAtHeadsLine) {
  const SpecError e = model_error({{"hidden_size", "1000"}, {"num_attention_heads", "96"}},
                                  "hidden_size", model_line("num_attention_heads"));
  EXPECT_STREQ(e.what(),
               "models/x.textproto:6: hidden_size: 1000 is not divisible by num_attention_heads "
               "(96); expected a multiple");
}

TEST(ModelChecks, KvHeadsMustDivideHeads) {
  const SpecError e =
      model_error({{"num_kv_heads", "5"}}, "num_attention_heads", model_line("num_kv_heads"));
  expect_words(e.what(), {"16 is not divisible by num_kv_heads (5)", "expected a multiple"});
}

TEST(ModelChecks, KindsMustBeSpecified) {
  const std::map<std::string, std::string> choices = {
      {"norm", "LAYER_NORM or RMS_NORM"},
      {"activation", "GELU or SWIGLU"},
      {"position_embedding", "LEARNED or ROTARY or NO_POSITION"},
      {"dtype", "BF16 or FP16 or FP32 or FP8"}};
  for (const auto& [field, expected] : choices) {
    SpecError e = model_error({{field, ""}}, field, 0);
    expect_words(e.what(), {"not specified", expected.c_str()});
    e = model_error({{field, "0"}}, field, model_line(field));
    expect_words(e.what(), {"not specified"});
  }
}

TEST(ModelChecks, UnknownEnumNumber) {
  // proto3 enums are open: the parser accepts a number, the check refuses it.
  const SpecError e = model_error({{"norm", "7"}}, "norm", model_line("norm"));
  expect_words(e.what(), {"unknown value 7", "LAYER_NORM or RMS_NORM"});
}

TEST(ModelChecks, DropoutIsAProbability) {
  for (const char* bad : {"1", "1.5", "-0.1"}) {
    const SpecError e = model_error({{"dropout", bad}}, "dropout", model_line("dropout"));
    expect_words(e.what(), {"out of range", "[0, 1)"});
  }
  EXPECT_NO_THROW(parse_model_spec(model_text({{"dropout", "0"}}), "m"));
}

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
  e = hw_error("value: 0.55 unit: \"fraction\"", "value: 0.55 unit: \"ratio\"",
               "efficiency.attention_max.unit", line_containing(text, "attention_max"));
  expect_words(e.what(), {"fraction, %"});
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

  // Validation of c on gpt3-175b must fail naming flag and containing words.
  void expect_flag(const ParallelConfig& c, const char* flag,
                   std::initializer_list<const char*> words, const ModelSpec* model = nullptr) {
    const ModelSpec& m = model ? *model : gpt175_;
    const FlagError e = flag_error([&] { validate_parallel_config(c, m, h100_); });
    EXPECT_EQ(e.flag(), flag) << e.what();
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
  expect_flag(raw(0, 1, 1, 1, 8), "--gpus", {"num_gpus (0)", "expected 1 to 1048576"});
  expect_flag(raw(2097152, 1, 1, 1, 8), "--gpus", {"num_gpus (2097152)", "1048576"});
  expect_flag(raw(8, 0, 1, 1, 8), "--tp", {"tp (0)", "expected 1 to 8"});
  expect_flag(raw(8, 16, 1, 1, 8), "--tp", {"tp (16)", "expected 1 to 8"});
  expect_flag(raw(8, 1, 0, 1, 8), "--pp", {"pp (0)", "expected 1 to 8"});
  expect_flag(raw(8, 1, 1, 0, 8), "--mbs", {"micro-batch size (0)", "expected 1 to 8"});
  expect_flag(raw(8, 1, 1, 16, 8), "--mbs", {"micro-batch size (16)", "expected 1 to 8"});
  expect_flag(raw(8, 1, 1, 1, 0), "--gbs", {"global batch size (0)", "expected 1 to 16777216"});
  expect_flag(raw(8, 1, 1, 1, 16777217), "--gbs", {"global batch size (16777217)", "16777216"});
  ParallelConfig c = raw(8, 1, 1, 1, 8);
  c.set_data_parallel(-1);
  expect_flag(c, "--dp", {"dp (-1)", "expected 1 to 8"});
  c = raw(8, 1, 1, 1, 8);
  c.set_virtual_pipeline_stages(-2);
  expect_flag(c, "--vpp", {"vpp (-2) is negative"});
  c = raw(8, 1, 1, 1, 8);
  c.set_dp_bucket_params(-5);
  expect_flag(c, "--dp-bucket-params", {"negative"});
}

TEST_F(ParallelTest, GpusMustSplitIntoTpPpDp) {
  expect_flag(raw(12, 8, 1, 1, 12), "--gpus",
              {"num_gpus (12) is not divisible by tp x pp (8 x 1 = 8)", "expected a multiple"});
  ParallelConfig c = raw(64, 8, 2, 1, 64);
  c.set_data_parallel(3);
  expect_flag(c, "--dp", {"tp x pp x dp (8 x 2 x 3 = 48) does not equal num_gpus (64)"});
}

TEST_F(ParallelTest, TpMustDivideHeadsKvHeadsAndFfn) {
  expect_flag(raw(5, 5, 1, 1, 8), "--tp",
              {"num_attention_heads (96) is not divisible by tp (5)", "expected tp to divide 96"});
  const ModelSpec l70 = load_model_spec("llama3-70b");
  expect_flag(raw(16, 16, 1, 1, 16), "--tp", {"num_kv_heads (8) is not divisible by tp (16)"},
              &l70);
  ModelSpec odd_ffn = gpt(24, 1024, 16);
  odd_ffn.set_ffn_hidden_size(1000);
  expect_flag(raw(16, 16, 1, 1, 16), "--tp", {"ffn_hidden_size (1000) is not divisible by tp (16)"},
              &odd_ffn);
  // 0 means the default and is checked as its value.
  ModelSpec defaults = gpt(24, 1024, 16);
  defaults.set_ffn_hidden_size(0);
  defaults.set_num_kv_heads(0);
  EXPECT_NO_THROW(validate_parallel_config(raw(16, 16, 1, 1, 16), defaults, h100_));
}

TEST_F(ParallelTest, PpAndVppMustDivideLayers) {
  expect_flag(raw(7, 1, 7, 1, 7), "--pp", {"num_layers (96) is not divisible by pp (7)"});
  ParallelConfig c = raw(16, 1, 16, 1, 16);
  c.set_virtual_pipeline_stages(4);
  expect_flag(c, "--vpp", {"num_layers (96) is not divisible by pp x vpp (64)"});
  c = raw(2, 1, 2, 1, 16);
  c.set_virtual_pipeline_stages(200);
  expect_flag(c, "--vpp", {"vpp (200) is larger than num_layers (96)"});
}

TEST_F(ParallelTest, GlobalBatchMustSplitIntoMicroBatches) {
  expect_flag(
      raw(64, 8, 1, 2, 100), "--gbs",
      {"global batch size (100) is not divisible by mbs x dp (2 x 8 = 16)", "expected a multiple"});
  const ModelSpec small = gpt(2, 64, 1);
  expect_flag(raw(1, 1, 1, 1, 2'000'000), "--gbs",
              {"micro-batches per pipeline (2000000) exceed the limit 1048576"}, &small);
}

TEST_F(ParallelTest, InterleavedScheduleRules) {
  ParallelConfig c = raw(8, 1, 8, 1, 16);
  c.set_schedule(INTERLEAVED_1F1B);
  expect_flag(c, "--vpp", {"interleaved schedule needs vpp >= 2", "got 1"});
  c = raw(1, 1, 1, 1, 16);
  c.set_virtual_pipeline_stages(2);
  expect_flag(c, "--pp", {"interleaved schedule needs pp >= 2", "got 1"});
  c = raw(4, 1, 4, 1, 6);
  c.set_virtual_pipeline_stages(2);
  expect_flag(c, "--gbs",
              {"micro-batches per pipeline (6) is not divisible by pp (4)",
               "interleaved schedule expects a multiple"});
}

TEST_F(ParallelTest, VppNeedsInterleaved) {
  ParallelConfig c = raw(8, 1, 8, 1, 16);
  c.set_virtual_pipeline_stages(2);
  c.set_schedule(GPIPE);
  expect_flag(c, "--vpp", {"vpp (2) needs the interleaved schedule, not gpipe"});
  c.set_schedule(ONE_F_ONE_B);
  expect_flag(c, "--vpp", {"vpp (2) needs the interleaved schedule, not 1f1b"});
}

TEST_F(ParallelTest, SequenceParallelRules) {
  ParallelConfig c = raw(8, 1, 1, 1, 8);
  c.set_sequence_parallel(true);
  expect_flag(c, "--sp", {"sequence parallelism needs tp > 1 (got tp 1)"});
  ModelSpec odd_seq = gpt(24, 1024, 16, /*seq=*/1000);
  c = raw(16, 16, 1, 1, 16);
  c.set_sequence_parallel(true);
  expect_flag(c, "--sp", {"seq_length (1000) is not divisible by tp (16)"}, &odd_seq);
}

TEST_F(ParallelTest, ZeroRules) {
  ParallelConfig c = raw(8, 8, 1, 1, 8);
  c.set_zero_stage(4);
  expect_flag(c, "--zero", {"zero stage (4) is out of range; expected 0 to 3"});
  c.set_zero_stage(-1);
  expect_flag(c, "--zero", {"zero stage (-1)"});
  c = raw(16, 8, 2, 1, 8);
  for (int stage : {2, 3}) {
    c.set_zero_stage(stage);
    expect_flag(c, "--zero", {"with pp 2 is not supported", "DeepSpeed"});
  }
  c = raw(16, 8, 1, 1, 8);
  c.set_zero_stage(3);
  EXPECT_NO_THROW(validate_parallel_config(c, gpt175_, h100_));
}

TEST_F(ParallelTest, UnknownEnumNumbers) {
  ParallelConfig c = raw(8, 8, 1, 1, 8);
  c.set_schedule(static_cast<Schedule>(9));
  expect_flag(c, "--schedule", {"unknown schedule (9)"});
  c = raw(8, 8, 1, 1, 8);
  c.set_recompute(static_cast<Recompute>(9));
  expect_flag(c, "--recompute", {"unknown recompute mode (9)"});
  c = raw(8, 8, 1, 1, 8);
  c.set_rank_order(static_cast<RankOrder>(9));
  expect_flag(c, "--rank-order", {"unknown rank order (9)"});
}

TEST_F(ParallelTest, ModelDtypeNeedsAPeakOnTheHardware) {
  ModelSpec fp8 = gpt175_;
  fp8.set_dtype(FP8);
  EXPECT_NO_THROW(validate_parallel_config(raw(8, 8, 1, 1, 8), fp8, h100_));
  const Hardware a100 = load_hardware("a100-sxm-80gb");
  const FlagError e = flag_error([&] { validate_parallel_config(raw(8, 8, 1, 1, 8), fp8, a100); });
  EXPECT_EQ(e.flag(), "--hw");
  expect_words(e.what(), {"'a100-sxm-80gb' has no peak FLOP rate for the model's dtype FP8"});
}

TEST_F(ParallelTest, ModelMustBeUsable) {
  ModelSpec m = gpt175_;
  m.set_dtype(DTYPE_UNSPECIFIED);
  expect_flag(raw(8, 8, 1, 1, 8), "--model", {"dtype is not specified"}, &m);
  m = gpt175_;
  m.set_num_attention_heads(0);
  expect_flag(raw(8, 8, 1, 1, 8), "--model", {"num_attention_heads (0) is not positive"}, &m);
  m = gpt175_;
  m.set_num_kv_heads(-1);
  expect_flag(raw(8, 8, 1, 1, 8), "--model", {"negative"}, &m);
}

}  // namespace
}  // namespace mpsim::spec
