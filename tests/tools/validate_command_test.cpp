// run_validate() --report-only over measurements of the two committed profiled 2-GPU runs
// (traces/executor/: a 1F1B pipeline and TP + SP on gpt-bytes-tiny): the report, the CSV and
// the side-by-side traces are written, the leave-one-out prediction is made, and a stale or
// missing measurement is reported, not silently used.
#ifdef MPSIM_HAVE_CALIBRATE
#include "tools/mpsim/validate_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "profiler/analyze/run_measurement.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

const char* kPipeline =
    "--model gpt-bytes-tiny --gpus 2 --pp 2 --schedule 1f1b --mbs 2 --gbs 4 --synthetic";
const char* kTensor = "--model gpt-bytes-tiny --gpus 2 --tp 2 --sp --mbs 2 --gbs 4 --synthetic";

fs::path temp_dir() {
  const fs::path dir =
      fs::temp_directory_path() /
      ("mpsim-validate-test-" +
       std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
       std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "runs");
  return dir;
}

void store(const fs::path& dir, const std::string& name, const std::string& database,
           const std::string& flags) {
  nlohmann::json json;
  json["config"] = name;
  json["flags"] = flags;
  json["rank_peak_memory_bytes"] = {40000000, 41000000};
  json["measurement"] =
      profiler::to_json(profiler::measure_run(profiler::read_run_traces(database), 1));
  std::ofstream(dir / "runs" / (name + ".json")) << json.dump();
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ValidateCommandTest, ReportsStoredMeasurements) {
  const fs::path dir = temp_dir();
  store(dir, "pp2", "traces/executor/pp2.sqlite", kPipeline);
  store(dir, "tp2sp", "traces/executor/tp2sp.sqlite", kTensor);
  // The stored runs (the unfused core, before flags named it) match lines that state it.
  std::ofstream(dir / "configs.txt") << "pp2 " << kPipeline << " --attention unfused\ntp2sp "
                                     << kTensor << " --attention unfused\n";
  std::ostringstream out, err;
  const int status = run_validate({"--configs", (dir / "configs.txt").string(), "--hw", "h100-sxm",
                                   "--out", dir.string(), "--report-only", "--warmup", "1"},
                                  out, err);
  EXPECT_EQ(status, 0) << err.str();
  EXPECT_NE(out.str().find("validated 2 configurations"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("leave-one-out MAPE"), std::string::npos) << out.str();
  const std::string csv = read(dir / "results.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;
  EXPECT_NE(csv.find("\npp2,gpt-bytes-tiny,"), std::string::npos);
  const std::string md = read(dir / "report.md");
  EXPECT_NE(md.find("| tp2sp | gpt-bytes-tiny | TP2 PP1 DP1 SP"), std::string::npos) << md;
  EXPECT_NE(md.find("iteration time, leave-one-out over runs"), std::string::npos);
  for (const char* name : {"pp2", "tp2sp"}) {
    const nlohmann::json trace =
        nlohmann::json::parse(read(dir / "traces" / (std::string(name) + ".json")));
    int measured = 0, simulated = 0;
    for (const auto& e : trace["traceEvents"]) {
      if (e["ph"] != "X") continue;
      (e["pid"] == 0 ? measured : simulated)++;
    }
    EXPECT_GT(measured, 50) << name;
    EXPECT_GT(simulated, 50) << name;
  }
  if (!std::getenv("MPSIM_KEEP_TEST_DIR")) fs::remove_all(dir);
}

TEST(ValidateCommandTest, StaleOrMissingMeasurementsAreReported) {
  const fs::path dir = temp_dir();
  store(dir, "pp2", "traces/executor/pp2.sqlite", "--model gpt-bytes-tiny --gpus 2 --pp 2");
  std::ofstream(dir / "configs.txt") << "pp2 " << kPipeline << "\ntp2sp " << kTensor << "\n";
  std::ostringstream out, err;
  const int status = run_validate({"--configs", (dir / "configs.txt").string(), "--hw", "h100-sxm",
                                   "--out", dir.string(), "--report-only", "--warmup", "1"},
                                  out, err);
  EXPECT_EQ(status, 1);
  EXPECT_NE(
      err.str().find("pp2: " + (dir / "runs" / "pp2.json").string() + " measured other flags"),
      std::string::npos)
      << err.str();
  EXPECT_NE(err.str().find("tp2sp: no measurement"), std::string::npos) << err.str();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mpsim::cli
#endif
