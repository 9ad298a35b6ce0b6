// One profile from what `mpsim calibrate --from` is given (calibration_sources.h), on the committed
// profiled executor run traces/executor/tp2sp (gpt-bytes-tiny, TP 2 with SP, 2 GPUs, recorded
// before runs carried their run mark): the run's ranks rewritten through the store's writer with
// the run mark added teach the same tables without the command-line fallback being asked; without
// the mark the fallback is asked once and its configuration used; the sources are sorted into
// calibration databases and runs.
#include "calibration/calibration_sources.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "executor/core/run_mark.h"
#include "simulator/spec/spec_loader.h"

namespace mpsim::calibration {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::MessageDifferencer;

const std::string kRun = "traces/executor/tp2sp.sqlite";

// The run's configuration as its command line states it (`--model gpt-bytes-tiny --gpus 2 --tp 2
// --sp --mbs 2 --gbs 4`), written out by hand.
RunConfig tp2sp_config() {
  RunConfig c;
  c.model = spec::load_model_spec("gpt-bytes-tiny");
  c.parallel.set_num_gpus(2);
  c.parallel.set_tensor_parallel(2);
  c.parallel.set_pipeline_parallel(1);
  c.parallel.set_sequence_parallel(true);
  c.parallel.set_micro_batch_size(2);
  c.parallel.set_global_batch_size(4);
  c.parallel.set_attention(spec::ATTENTION_UNFUSED);  // the executor's (its flags' default)
  return c;
}

class CalibrationSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mpsim_calibration_sources_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    base_ = spec::load_hardware_profile("h100-sxm");
    info_.command = "mpsim calibrate --from run";
    info_.date = "2026-12-03";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The run's ranks written again through the store's writer, each with `mark` among its NVTX
  // records (as the profiler stores an NVTX mark), under the stem <dir>/marked.sqlite.
  std::string with_mark(const std::string& mark) {
    const std::string stem = (dir_ / "marked.sqlite").string();
    for (profiler::RankTrace& t : profiler::read_run_traces(kRun)) {
      profiler::NvtxRecord r;
      r.start = t.process.start_ns + 1;
      r.end = -1;
      r.event_type = 34;
      r.thread_id = t.records.nvtx.empty() ? 1 : t.records.nvtx.front().thread_id;
      r.text = mark;
      t.records.nvtx.push_back(r);
      profiler::TraceWriter writer(profiler::rank_path(stem, t.process.rank, t.process.pid),
                                   t.process);
      writer.write(t.records);
      writer.finish(t.process.end_ns);
    }
    return stem;
  }

  fs::path dir_;
  spec::HardwareProfile base_;
  calibration::CalibrationInfo info_;
};

TEST_F(CalibrationSourcesTest, RunsAndDatabasesAreToldApart) {
  const CalibrationSources sources =
      classify_sources({kRun, "traces/calibration/h100.rank0.sqlite"});
  EXPECT_EQ(sources.runs, std::vector<std::string>{kRun});
  EXPECT_EQ(sources.databases, std::vector<std::string>{"traces/calibration/h100.rank0.sqlite"});
  EXPECT_THROW(classify_sources({(dir_ / "none.sqlite").string()}), spec::SpecError);
}

TEST_F(CalibrationSourcesTest, TheRunMarkReplacesTheCommandLine) {
  const RunConfig config = tp2sp_config();
  int asked = 0;
  const RunConfigFallback from_command = [&](const profiler::RunMeasurement& run,
                                             const std::string&) {
    ++asked;
    EXPECT_NE(run.command.find("--tp 2 --sp"), std::string::npos);
    return config;
  };
  calibration::CalibrationReport unmarked_report;
  const spec::HardwareProfile unmarked =
      profile_from_sources({{}, {kRun}}, base_, info_, from_command, &unmarked_report);
  EXPECT_EQ(asked, 1);
  ASSERT_GT(unmarked.calibrated_size(), 0);

  const std::string marked_run = with_mark(executor::format_run_mark(
      config.model, spec::validate_parallel_config(config.parallel, config.model,
                                                   spec::load_hardware("h100-sxm"))));
  const RunConfigFallback refuse = [](const profiler::RunMeasurement&,
                                      const std::string& source) -> RunConfig {
    throw std::logic_error(source + ": the fallback was asked although the run has its mark");
  };
  calibration::CalibrationReport marked_report;
  const spec::HardwareProfile marked =
      profile_from_sources({{}, {marked_run}}, base_, info_, refuse, &marked_report);
  ASSERT_EQ(marked.calibrated_size(), unmarked.calibrated_size());
  for (int i = 0; i < marked.calibrated_size(); ++i) {
    spec::CalibratedTable a = marked.calibrated(i), b = unmarked.calibrated(i);
    a.clear_provenance();  // names the source path, which differs
    b.clear_provenance();
    EXPECT_TRUE(MessageDifferencer::Equals(a, b)) << marked.calibrated(i).op();
  }
  EXPECT_EQ(marked.name(), "h100-sxm-runs");
  EXPECT_EQ(marked_report.notes.size(), unmarked_report.notes.size());
}

}  // namespace
}  // namespace mpsim::calibration
