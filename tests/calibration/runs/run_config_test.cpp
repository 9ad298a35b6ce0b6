// The run mark through the store: a rank's database written by the store's writer with the mark
// the trainer emits (executor/core/run_mark.h) among its NVTX records, as the profiler stores it,
// reads back as the model and configuration of the run; a database without one reads as none; a
// broken mark or ranks that disagree are refused naming the source.
#include "calibration/runs/run_config.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "executor/core/run_mark.h"
#include "profiler/analyze/run_measurement.h"
#include "simulator/spec/spec_loader.h"
#include "tests/profiler/analyze/synthetic_trace.h"

namespace mpsim::calibration {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::MessageDifferencer;

// An NVTX mark as the profiler stores one (profiler/cupti/activity_convert.cpp: event type 34,
// no end).
profiler::NvtxRecord mark(const std::string& text, int64_t at) {
  profiler::NvtxRecord r;
  r.start = at;
  r.end = -1;
  r.event_type = 34;
  r.thread_id = 7;
  r.text = text;
  return r;
}

class RunConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mpsim_run_config_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = spec::load_model_spec("gpt2-124m");
    config_.set_num_gpus(2);
    config_.set_tensor_parallel(1);
    config_.set_pipeline_parallel(1);
    config_.set_data_parallel(2);
    config_.set_micro_batch_size(2);
    config_.set_global_batch_size(8);
    config_ = spec::validate_parallel_config(config_, model_, spec::load_hardware("h100-sxm"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes both ranks of the synthetic run with `texts[r]` as marks of rank r, through the
  // store's writer, and reads the run back as calibration does.
  std::vector<profiler::RankTrace> store(const std::vector<std::vector<std::string>>& texts) {
    const std::string stem = (dir_ / "run.sqlite").string();
    std::vector<profiler::RankTrace> ranks = {profiler::testing::rank0(),
                                              profiler::testing::rank1()};
    for (size_t r = 0; r < ranks.size(); ++r) {
      for (const std::string& text : texts[r])
        ranks[r].records.nvtx.push_back(mark(text, 950 + static_cast<int64_t>(r)));
      profiler::TraceWriter writer(profiler::rank_path(stem, static_cast<int32_t>(r), 0),
                                   ranks[r].process);
      writer.write(ranks[r].records);
      writer.finish(ranks[r].process.end_ns);
    }
    return profiler::read_run_traces(stem);
  }
  std::string refusal(const std::vector<std::vector<std::string>>& texts) {
    try {
      run_config_from_traces(store(texts), "run.sqlite");
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  }

  fs::path dir_;
  spec::ModelSpec model_;
  spec::ParallelConfig config_;
};

TEST_F(RunConfigTest, TheMarkReadsBackFromTheStore) {
  const std::string text = executor::format_run_mark(model_, config_);
  const std::optional<RunConfig> read = run_config_from_traces(store({{text}, {text}}), "run");
  ASSERT_TRUE(read.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(read->model, model_));
  EXPECT_TRUE(MessageDifferencer::Equals(read->parallel, config_));
  // One rank's database alone says it too.
  EXPECT_TRUE(run_config_from_traces(store({{text}, {}}), "run").has_value());
}

TEST_F(RunConfigTest, TheStoredConfigurationValidatesToItself) {
  // Learning from a run validates the stored configuration again: it must not change.
  const spec::ParallelConfig again =
      spec::validate_parallel_config(config_, model_, spec::load_hardware("h100-sxm"));
  EXPECT_TRUE(MessageDifferencer::Equals(again, config_));
}

TEST_F(RunConfigTest, ADatabaseWithoutTheMarkHasNone) {
  EXPECT_FALSE(run_config_from_traces(store({{}, {}}), "run").has_value());
  EXPECT_FALSE(is_executor_run(store({{}, {}})));  // the synthetic run has no iteration ranges
}

TEST_F(RunConfigTest, BrokenOrDisagreeingMarksAreRefused) {
  EXPECT_NE(refusal({{"mpsim/run/{}"}, {}}).find("run.sqlite: rank 0: run mark: field 'model'"),
            std::string::npos);
  spec::ParallelConfig other = config_;
  other.set_micro_batch_size(1);
  EXPECT_EQ(refusal({{executor::format_run_mark(model_, config_)},
                     {executor::format_run_mark(model_, other)}}),
            "run.sqlite: rank 1's run mark states another model or configuration than the ranks "
            "before it");
}

}  // namespace
}  // namespace mpsim::calibration
