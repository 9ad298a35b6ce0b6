// to_json() and to_table() on a hand-made SimulationResult: every contract key, the config
// spellings, the null-memory note and the breakdown identity (parts sum to the iteration).
#include <gtest/gtest.h>

#include <string>

#include "simulator/report/simulation_result.h"

namespace mpsim::report {
namespace {

using nlohmann::json;

SimulationResult sample() {
  SimulationResult r;
  r.iteration_time_s = 2.0;
  r.breakdown = {1.5, 0.2, 0.3};
  r.tokens_per_s = 1536.0 * 2048 / 2.0;
  r.model_flops = 4.0e18;
  r.hardware_flops = 5.0e18;
  r.model_tflops_per_gpu = 4.0e18 / 2.0 / 1024 / 1e12;
  r.peak_flops_per_gpu = 989e12;
  r.mfu = r.model_tflops_per_gpu * 1e12 / r.peak_flops_per_gpu;
  r.hfu = 5.0e18 / 2.0 / 1024 / r.peak_flops_per_gpu;
  r.slowest_rank = 17;
  r.simulated_ranks = 16;
  r.ops = 12345;
  r.events = 67890;
  r.model_name = "gpt3-175b";
  r.hardware_name = "h100-sxm";
  r.cost_model = "roofline";
  spec::ParallelConfig& c = r.config;
  c.set_num_gpus(1024);
  c.set_tensor_parallel(8);
  c.set_pipeline_parallel(16);
  c.set_data_parallel(8);
  c.set_sequence_parallel(true);
  c.set_virtual_pipeline_stages(2);
  c.set_micro_batch_size(1);
  c.set_global_batch_size(1536);
  c.set_schedule(spec::INTERLEAVED_1F1B);
  c.set_recompute(spec::RECOMPUTE_SELECTIVE);
  c.set_attention(spec::ATTENTION_UNFUSED);
  c.set_zero_stage(1);
  c.set_overlap_dp_comm(true);
  c.set_rank_order(spec::TP_PP_DP);
  return r;
}

TEST(ResultJson, HasExactlyTheContractKeys) {
  const json j = to_json(sample());
  for (const char* key : {"iteration_time_s", "tokens_per_s", "model_tflops_per_gpu", "mfu", "hfu",
                          "peak_memory_bytes", "peak_memory_note", "breakdown", "slowest_rank",
                          "config", "model", "hardware", "cost_model", "simulated_ranks", "ops",
                          "events", "model_flops", "hardware_flops", "peak_flops_per_gpu"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 19u) << j.dump(2);
}

TEST(ResultJson, CarriesTheValues) {
  const SimulationResult r = sample();
  const json j = to_json(r);
  EXPECT_EQ(j["iteration_time_s"], 2.0);
  EXPECT_EQ(j["tokens_per_s"], 1536.0 * 1024);
  EXPECT_EQ(j["model_tflops_per_gpu"], r.model_tflops_per_gpu);
  EXPECT_EQ(j["mfu"], r.mfu);
  EXPECT_EQ(j["hfu"], r.hfu);
  EXPECT_EQ(j["slowest_rank"], 17);
  EXPECT_EQ(j["model"], "gpt3-175b");
  EXPECT_EQ(j["hardware"], "h100-sxm");
  EXPECT_EQ(j["cost_model"], "roofline");
  EXPECT_EQ(j["simulated_ranks"], 16);
  EXPECT_EQ(j["ops"], 12345);
  EXPECT_EQ(j["events"], 67890);
  EXPECT_EQ(j["model_flops"], 4.0e18);
  EXPECT_EQ(j["hardware_flops"], 5.0e18);
  EXPECT_EQ(j["peak_flops_per_gpu"], 989e12);
}

TEST(ResultJson, BreakdownSumsToIterationTime) {
  const json j = to_json(sample());
  const json& b = j["breakdown"];
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b["compute_s"], 1.5);
  EXPECT_EQ(b["exposed_comm_s"], 0.2);
  EXPECT_EQ(b["bubble_s"], 0.3);
  EXPECT_DOUBLE_EQ(b["compute_s"].get<double>() + b["exposed_comm_s"].get<double>() +
                       b["bubble_s"].get<double>(),
                   j["iteration_time_s"].get<double>());
}

TEST(ResultJson, MemoryIsNullWithNoteWhenNotSimulated) {
  SimulationResult r = sample();
  json j = to_json(r);
  EXPECT_TRUE(j["peak_memory_bytes"].is_null());
  EXPECT_EQ(j["peak_memory_note"], "not simulated");

  r.peak_memory_bytes = int64_t{70} << 30;
  r.peak_memory_rank = 3;
  r.peak_model_state_bytes = 30.0 * (1 << 30);
  r.peak_activation_bytes = 40.0 * (1 << 30);
  r.memory_capacity_bytes = 80e9;
  r.fits_memory = false;
  j = to_json(r);
  EXPECT_EQ(j["peak_memory_bytes"], int64_t{70} << 30);
  EXPECT_FALSE(j.contains("peak_memory_note"));
  EXPECT_EQ(j["memory"]["peak_rank"], 3);
  EXPECT_EQ(j["memory"]["fits"], false);
  EXPECT_DOUBLE_EQ(j["memory"]["capacity_bytes"].get<double>(), 80e9);
  EXPECT_DOUBLE_EQ(j["memory"]["model_state_bytes"].get<double>() +
                       j["memory"]["activation_bytes"].get<double>(),
                   70.0 * (1 << 30));
  EXPECT_NE(to_table(r).find("DOES NOT FIT"), std::string::npos);
}

TEST(ResultJson, ConfigUsesFlagSpellings) {
  const json c = to_json(sample())["config"];
  EXPECT_EQ(c, json({{"num_gpus", 1024},
                     {"tp", 8},
                     {"pp", 16},
                     {"cp", 1},
                     {"dp", 8},
                     {"sp", true},
                     {"vpp", 2},
                     {"micro_batch_size", 1},
                     {"global_batch_size", 1536},
                     {"schedule", "interleaved"},
                     {"recompute", "selective"},
                     {"attention", "unfused"},
                     {"zero_stage", 1},
                     {"overlap_dp_comm", true},
                     {"overlap_param_gather", false},
                     {"tp_comm_overlap", false},
                     {"rank_order", "tp-pp-dp"}}));
}

TEST(ResultJson, EverySpellingOfTheConfigEnums) {
  SimulationResult r = sample();
  r.config.set_virtual_pipeline_stages(0);  // 0 and 1 both mean not interleaved
  EXPECT_EQ(to_json(r)["config"]["vpp"], 1);
  const std::pair<spec::Schedule, const char*> schedules[] = {
      {spec::GPIPE, "gpipe"}, {spec::ONE_F_ONE_B, "1f1b"}, {spec::INTERLEAVED_1F1B, "interleaved"}};
  for (const auto& [value, name] : schedules) {
    r.config.set_schedule(value);
    EXPECT_EQ(to_json(r)["config"]["schedule"], name);
  }
  const std::pair<spec::Recompute, const char*> recomputes[] = {
      {spec::RECOMPUTE_NONE, "none"},
      {spec::RECOMPUTE_SELECTIVE, "selective"},
      {spec::RECOMPUTE_FULL, "full"}};
  for (const auto& [value, name] : recomputes) {
    r.config.set_recompute(value);
    EXPECT_EQ(to_json(r)["config"]["recompute"], name);
  }
  r.config.set_rank_order(spec::TP_DP_PP);
  EXPECT_EQ(to_json(r)["config"]["rank_order"], "tp-dp-pp");
  r.config.set_attention(spec::ATTENTION_FLASH);
  EXPECT_EQ(to_json(r)["config"]["attention"], "flash");
}

TEST(ResultTable, ShowsMetricsInTheirUnits) {
  const std::string t = to_table(sample());
  for (const char* text :
       {"gpt3-175b", "h100-sxm", "1024 = TP 8 x PP 16 x DP 8", "interleaved, vpp 2",
        "iteration time", "2000.000 ms", "1572864 tokens/s", "TFLOP/s", "MFU", "HFU",
        "breakdown, rank 17", "1500.000 ms  (75.0 %)", "200.000 ms  (10.0 %)",
        "300.000 ms  (15.0 %)", "not simulated", "16 ranks, 12345 ops, 67890 events"}) {
    EXPECT_NE(t.find(text), std::string::npos) << text << "\n" << t;
  }
}

TEST(ResultTable, ValuesAreAligned) {
  const std::string t = to_table(sample());
  // Every value column starts at the same offset: find it from the first row.
  const size_t column = t.find("gpt3-175b");
  const size_t line_start = t.rfind('\n', column);
  const size_t offset = column - (line_start == std::string::npos ? 0 : line_start + 1);
  const size_t time = t.find("2000.000 ms");
  EXPECT_EQ(time - (t.rfind('\n', time) + 1), offset) << t;
  const size_t bubble = t.find("300.000 ms");
  EXPECT_EQ(bubble - (t.rfind('\n', bubble) + 1), offset) << t;
}

}  // namespace
}  // namespace mpsim::report
