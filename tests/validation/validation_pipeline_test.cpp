// validation/validation_pipeline: run_validation() with a host that records what it is asked to
// do. A configuration without a measurement is run through the host (the train flags, the
// database and stdout paths it is given) and a failed run is listed, not fatal; under
// report_only the two committed profiled 2-GPU runs (traces/executor/) are compared, predicted
// with leave one out, and the report and the CSV go through the host.
#include "validation/validation_pipeline.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "profiler/analyze/run_measurement.h"

namespace mpsim::validation {
namespace {

namespace fs = std::filesystem;

struct Started {
  std::string config;
  std::vector<std::string> train_flags;
  std::string database, stdout_path;
};

class RecordingHost : public ValidationHost {
 public:
  int run_profiled_training(const std::string& config, const std::vector<std::string>& train_flags,
                            const std::string& database, const std::string& stdout_path) override {
    started.push_back({config, train_flags, database, stdout_path});
    return 3;  // every run fails
  }
  void write_file(const std::string& path, const std::string& text, OutputFolder folder) override {
    written[path] = text;
    folders[path] = folder;
  }
  void note(const std::string& line) override { notes.push_back(line); }

  std::vector<Started> started;
  std::map<std::string, std::string> written;
  std::map<std::string, OutputFolder> folders;
  std::vector<std::string> notes;
};

fs::path temp_dir() {
  const fs::path dir =
      fs::temp_directory_path() /
      ("mpsim-pipeline-test-" +
       std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
       std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// gpt-bytes-tiny on 2 GPUs, as `mpsim train` reads the flags of the case.
ValidationCase tiny_case(const std::string& name, const std::string& flags, int64_t tp,
                         int64_t pp) {
  ValidationCase c;
  c.name = name;
  for (size_t at = 0, next; at < flags.size(); at = next + 1) {
    next = std::min(flags.find(' ', at), flags.size());
    c.flags.push_back(flags.substr(at, next - at));
  }
  c.model = "gpt-bytes-tiny";
  c.parallel.set_num_gpus(2);
  c.parallel.set_tensor_parallel(tp);
  c.parallel.set_pipeline_parallel(pp);
  c.parallel.set_micro_batch_size(2);
  c.parallel.set_global_batch_size(4);
  c.parallel.set_virtual_pipeline_stages(1);
  c.parallel.set_schedule(spec::ONE_F_ONE_B);
  c.parallel.set_recompute(spec::RECOMPUTE_NONE);
  c.parallel.set_sequence_parallel(tp > 1);
  c.parallel.set_rank_order(spec::TP_DP_PP);
  c.parallel.set_attention(spec::ATTENTION_UNFUSED);  // the stored traces' executor core
  return c;
}

const char* kPipeline =
    "--model gpt-bytes-tiny --gpus 2 --pp 2 --schedule 1f1b --mbs 2 --gbs 4 --synthetic";
const char* kTensor = "--model gpt-bytes-tiny --gpus 2 --tp 2 --sp --mbs 2 --gbs 4 --synthetic";

ValidationSettings settings_in(const fs::path& dir) {
  ValidationSettings s;
  s.hardware = "h100-sxm";
  s.out = dir.string();
  s.runs = (dir / "runs").string();
  s.warmup = 1;
  s.steps = 2;
  s.command = "mpsim validate (test)";
  return s;
}

TEST(ValidationPipelineTest, RunsWhatHasNoMeasurementThroughTheHostAndListsAFailedRun) {
  const fs::path dir = temp_dir();
  RecordingHost host;
  const ValidationOutcome outcome =
      run_validation({tiny_case("pp2", kPipeline, 1, 2)}, settings_in(dir), host);
  ASSERT_EQ(host.started.size(), 1u);
  const std::string stem = (dir / "runs" / "pp2").string();
  EXPECT_EQ(host.started[0].config, "pp2");
  EXPECT_EQ(host.started[0].database, stem + ".sqlite");
  EXPECT_EQ(host.started[0].stdout_path, stem + ".stdout");
  const std::vector<std::string>& flags = host.started[0].train_flags;
  ASSERT_GE(flags.size(), 4u);
  EXPECT_EQ(std::vector<std::string>(flags.end() - 4, flags.end()),
            (std::vector<std::string>{"--steps", "3", "--log", stem + ".log.jsonl"}));
  EXPECT_TRUE(outcome.rows.empty());
  ASSERT_EQ(outcome.failures.size(), 1u);
  EXPECT_EQ(outcome.failures[0], "pp2: the run failed (exit status 3; see " + stem + ".stdout)");
  ASSERT_EQ(host.notes.size(), 1u);
  EXPECT_EQ(host.notes[0], outcome.failures[0]);
  EXPECT_EQ(outcome.report_path, (dir / "report.md").string());
  ASSERT_TRUE(host.written.count(outcome.report_path));
  EXPECT_EQ(host.folders[outcome.report_path], OutputFolder::kOut);
  EXPECT_NE(host.written[outcome.report_path].find("Not reported: pp2: the run failed"),
            std::string::npos);
  fs::remove_all(dir);
}

void store(const fs::path& dir, const std::string& name, const std::string& database,
           const std::string& flags) {
  nlohmann::json json;
  json["config"] = name;
  json["flags"] = flags;
  json["rank_peak_memory_bytes"] = {40000000, 41000000};
  json["measurement"] =
      profiler::to_json(profiler::measure_run(profiler::read_run_traces(database), 1));
  fs::create_directories(dir / "runs");
  std::ofstream(dir / "runs" / (name + ".json")) << json.dump();
}

// Runs stored before the fused core existed name no attention: they match a case that states
// the unfused core, and are simulated with it.
TEST(ValidationPipelineTest, ReportOnlyComparesStoredRunsWithLeaveOneOut) {
  const fs::path dir = temp_dir();
  store(dir, "pp2", "traces/executor/pp2.sqlite", kPipeline);
  store(dir, "tp2sp", "traces/executor/tp2sp.sqlite", kTensor);
  ValidationSettings settings = settings_in(dir);
  settings.report_only = true;
  RecordingHost host;
  const std::string unfused = " --attention unfused";
  const ValidationOutcome outcome = run_validation(
      {tiny_case("pp2", kPipeline + unfused, 1, 2), tiny_case("tp2sp", kTensor + unfused, 2, 1)},
      settings, host);
  EXPECT_TRUE(host.started.empty());
  EXPECT_TRUE(outcome.failures.empty());
  ASSERT_EQ(outcome.rows.size(), 2u);
  EXPECT_EQ(outcome.rows[0].name, "pp2");
  EXPECT_EQ(outcome.rows[1].name, "tp2sp");
  for (const ConfigComparison& row : outcome.rows) EXPECT_TRUE(row.predicted_loo_iteration_s);
  const std::string csv = host.written[(dir / "results.csv").string()];
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;
  EXPECT_NE(host.written[outcome.report_path].find("mpsim validate (test)"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir / "traces" / "pp2.json"));
  EXPECT_TRUE(fs::exists(dir / "traces" / "tp2sp.json"));
  fs::remove_all(dir);
}

// A case run with --fp8 is simulated under the FP8 recipe: against the same stored run, its GEMMs
// are predicted faster than in BF16 (the layers' linears at the FP8 peak) and its element-wise
// work slower (the recipe's casts; on this tiny model the iteration too).
TEST(ValidationPipelineTest, Fp8CasesAreSimulatedWithTheRecipe) {
  const fs::path dir = temp_dir();
  const std::string flags = std::string(kPipeline) + " --attention unfused";
  store(dir, "bf16", "traces/executor/pp2.sqlite", flags);
  store(dir, "fp8", "traces/executor/pp2.sqlite", flags + " --fp8");
  ValidationSettings settings = settings_in(dir);
  settings.report_only = true;
  RecordingHost host;
  ValidationCase fp8 = tiny_case("fp8", flags + " --fp8", 1, 2);
  fp8.fp8 = true;
  const ValidationOutcome outcome =
      run_validation({tiny_case("bf16", flags, 1, 2), fp8}, settings, host);
  ASSERT_EQ(outcome.rows.size(), 2u) << (outcome.failures.empty() ? "" : outcome.failures[0]);
  const auto gemm = static_cast<size_t>(OpCategory::kGemm);
  const auto elementwise = static_cast<size_t>(OpCategory::kNormElementwise);
  EXPECT_LT(outcome.rows[1].predicted[gemm], outcome.rows[0].predicted[gemm]);
  EXPECT_GT(outcome.rows[1].predicted[elementwise], outcome.rows[0].predicted[elementwise]);
  EXPECT_EQ(outcome.rows[1].measured_iteration_s, outcome.rows[0].measured_iteration_s);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mpsim::validation
