// run_calibrate() --from the committed H100 database (traces/calibration/): the written profile
// loads and is priced by the calibrated cost model, -o is replaced whole, and bad inputs are
// refused naming the flag or file. The fit itself is tested in tests/calibration.
#ifdef MPSIM_HAVE_CALIBRATE
#include "tools/mpsim/calibrate_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "simulator/cost/calibrated_cost.h"
#include "simulator/spec/spec_error.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kH100 = "traces/calibration/h100.rank0.sqlite";

// A fresh folder for the running test (ctest runs tests in parallel processes).
fs::path temp_dir() {
  const fs::path dir =
      fs::temp_directory_path() /
      ("mpsim-calibrate-test-" +
       std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
       std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(CalibrateCommand, WritesALoadableProfileReplacingTheOutputWhole) {
  const fs::path dir = temp_dir();
  const fs::path output = dir / "h100-test.textproto";
  { std::ofstream(output) << "old contents\n"; }
  std::ostringstream out, err;
  ASSERT_EQ(run_calibrate({"--from", kH100, "--base", "h100-sxm", "-o", output.string()}, out, err),
            0)
      << err.str();
  EXPECT_EQ(out.str().rfind("mpsim calibrate: wrote " + output.string() +
                                " (16 tables: gemm.bf16 "
                                "[180] gemm.bf16.fwd [180] gemm.bf16.fwd.exact [180] ",
                            0),
            0u)
      << out.str();
  const std::string text = read(output);
  EXPECT_EQ(text.rfind("# Hardware profile 'h100-test', written by `mpsim calibrate` ", 0), 0u);
  EXPECT_NE(text.find("#   " + std::string(kH100) +
                      ": 1 x NVIDIA H100 80GB HBM3 (host vm), "
                      "recorded 2026-11-26"),
            std::string::npos);
  EXPECT_NE(text.find("  points { key: [8192, 8192, 8192] seconds: "), std::string::npos);
  const spec::Hardware hw = spec::load_hardware(output.string());
  EXPECT_EQ(hw.name, "h100-test");
  EXPECT_EQ(hw.calibrated.size(), 16u);  // 11 tables and the GEMMs' and attention's exact ones
  EXPECT_EQ(cost::make_calibrated_cost_model(hw)->describe().rfind("calibrated: gemm.bf16, ", 0),
            0u);
  // Nothing but the profile is left in the folder (the temporary file was renamed).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

template <typename Error>
std::string refusal(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  try {
    run_calibrate(args, out, err);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(CalibrateCommand, BadInputsAreRefusedNamingTheFlagOrFile) {
  const fs::path dir = temp_dir();
  const std::string output = (dir / "out.textproto").string();
  EXPECT_EQ(refusal<spec::SpecError>({"--from", "traces/calibration/none.sqlite", "-o", output}),
            "traces/calibration/none.sqlite: no such file, nor per-rank files "
            "traces/calibration/none.rank0.sqlite, ... (--from)");
  // Neither calibration ranges nor executor iterations (a profiled NCCL + GEMM sample).
  EXPECT_EQ(
      refusal<spec::FlagError>(
          {"--from", "traces/profiler/nccl_gemm_2rank_h100.sqlite", "-o", output})
          .rfind("--from: traces/profiler/nccl_gemm_2rank_h100.sqlite: no calibration ranges", 0),
      0u);
  EXPECT_EQ(
      refusal<spec::FlagError>({"--from", kH100, "-o", (dir / "no/such/x.textproto").string()}),
      "-o: folder '" + (dir / "no/such").string() + "' of '" +
          (dir / "no/such/x.textproto").string() + "' does not exist");
  EXPECT_EQ(refusal<spec::SpecError>({"--from", kH100, "--base", "no-such-gpu", "-o", output})
                .find("no-such-gpu"),
            0u);
  EXPECT_FALSE(fs::exists(output));
  fs::remove_all(dir);
}

TEST(CalibrateCommand, TheBenchIsLookedForInTheBuildTree) {
  try {
    find_calibration_bench("/nonexistent/build/tools/mpsim/mpsim");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(
        std::string(e.what()).rfind("cannot find the calibration bench at "
                                    "/nonexistent/build/calibration/bench/calibration_bench or "
                                    "/nonexistent/build/tools/mpsim/calibration_bench (",
                                    0),
        0u)
        << e.what();
  }
}

// A build tree carried elsewhere, or binaries installed side by side: the bench is found from
// the mpsim binary's own path, not from the current directory.
TEST(CalibrateCommand, TheBenchIsFoundFromTheBinary) {
  const fs::path dir = temp_dir();
  fs::create_directories(dir / "build/tools/mpsim");
  fs::create_directories(dir / "build/calibration/bench");
  fs::create_directories(dir / "bin");
  for (const fs::path& file :
       {dir / "build/calibration/bench/calibration_bench", dir / "bin/calibration_bench"}) {
    std::ofstream(file) << "";
  }
  EXPECT_EQ(find_calibration_bench((dir / "build/tools/mpsim/mpsim").string()),
            fs::canonical(dir / "build/calibration/bench/calibration_bench").string());
  EXPECT_EQ(find_calibration_bench((dir / "bin/mpsim").string()),
            fs::canonical(dir / "bin/calibration_bench").string());
  EXPECT_EQ(checked_bench((dir / "bin/calibration_bench").string()),
            (dir / "bin/calibration_bench").string());
  try {
    checked_bench((dir / "bin").string());
    FAIL() << "no error";
  } catch (const spec::FlagError& e) {
    EXPECT_EQ(std::string(e.what()), "--bench: '" + (dir / "bin").string() +
                                         "' is not a file; expected calibration_bench");
  }
  fs::remove_all(dir);
}

// --from a profiled executor run (traces/executor/tp2sp: gpt-bytes-tiny, TP 2 + SP): the op
// times of its second iteration become exact-shape tables on top of the calibration; the
// calibrated model then prices the run's own GEMMs at exactly their measured times.
TEST(CalibrateCommand, LearnsExactOpTablesFromAProfiledExecutorRun) {
  const fs::path dir = temp_dir();
  const std::string output = (dir / "runs.textproto").string();
  std::ostringstream out, err;
  ASSERT_EQ(run_calibrate({"--from", kH100, "--from", "traces/executor/tp2sp.sqlite", "-o", output},
                          out, err),
            0)
      << err.str();
  const spec::HardwareProfile profile = spec::load_hardware_profile(output);
  bool exact_gemm = false;
  for (const spec::CalibratedTable& t : profile.calibrated())
    if (t.op() == "gemm.bf16.fwd.exact") exact_gemm = t.points_size() > 0;
  EXPECT_TRUE(exact_gemm) << out.str();
  EXPECT_NE(read(output).find("traces/executor/tp2sp.sqlite: executor run on"), std::string::npos);
  // A run alone (no calibration database) extends the base profile.
  const std::string alone = (dir / "alone.textproto").string();
  ASSERT_EQ(run_calibrate({"--from", "traces/executor/pp2.rank0.sqlite", "-o", alone}, out, err), 0)
      << err.str();
  const spec::HardwareProfile base_plus = spec::load_hardware_profile(alone);
  EXPECT_EQ(base_plus.name(), "alone");
  EXPECT_GT(base_plus.calibrated_size(), 0);
  fs::remove_all(dir);
}

// Run from the repository root (as the tests are), models/ is the current directory's.
TEST(CalibrateCommand, TheModelsFolderIsFound) {
  EXPECT_EQ(find_models_folder("/nonexistent/build/tools/mpsim/mpsim"), "models");
}

// The GEMM grid is derived before anything runs: a --models folder that does not load stops
// the calibration, naming the folder, before the bench starts.
TEST(CalibrateCommand, AModelsFolderThatDoesNotLoadStopsBeforeMeasuring) {
  const fs::path dir = temp_dir();
  const fs::path bench = dir / "calibration_bench";
  std::ofstream(bench) << "";
  const std::string output = (dir / "out.textproto").string();
  EXPECT_EQ(refusal<spec::SpecError>(
                {"-o", output, "--bench", bench.string(), "--models", (dir / "none").string()})
                .rfind((dir / "none").string() + ": cannot read the folder", 0),
            0u);
  fs::create_directories(dir / "empty");
  EXPECT_EQ(refusal<spec::SpecError>(
                {"-o", output, "--bench", bench.string(), "--models", (dir / "empty").string()}),
            (dir / "empty").string() + ": no model (*.textproto) in the folder");
  EXPECT_FALSE(fs::exists(output));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mpsim::cli
#endif  // MPSIM_HAVE_CALIBRATE
