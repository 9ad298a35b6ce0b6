// run_train() up to the point where it would start the trainer: help, model and parallel-config
// validation, finding the corpus, and the message of a build without the CUDA executor.
#include "tools/mpsim/train_command.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "simulator/spec/spec_error.h"

namespace mpsim::cli {
namespace {

namespace fs = std::filesystem;
using Args = std::vector<std::string>;

std::string flag_error_of(const Args& args) {
  std::ostringstream out, err;
  try {
    run_train(args, out, err);
  } catch (const spec::FlagError& e) {
    return e.what();
  }
  return "no error";
}

TEST(TrainCommand, HelpPrintsAndReturnsZero) {
  std::ostringstream out, err;
  EXPECT_EQ(run_train({"--help"}, out, err), 0);
  EXPECT_NE(out.str().find("usage: mpsim train"), std::string::npos);
  EXPECT_EQ(err.str(), "");
}

TEST(TrainCommand, ValidatesTheParallelConfigAgainstTheModel) {
  // gpt2-124m has 12 heads.
  EXPECT_EQ(flag_error_of({"--synthetic", "--gpus", "5", "--tp", "5"}).rfind("--tp: ", 0), 0u);
  EXPECT_EQ(flag_error_of({"--synthetic", "--gpus", "3"}).rfind("--gbs: ", 0), 0u);
  EXPECT_EQ(flag_error_of({"--synthetic", "--gpus", "4", "--dp", "3"}).rfind("--dp: ", 0), 0u);
}

TEST(TrainCommand, UnknownModelIsASpecError) {
  std::ostringstream out, err;
  EXPECT_THROW(run_train({"--synthetic", "--model", "no-such-model"}, out, err), spec::SpecError);
}

TEST(TrainCommand, MissingCorpusNamesDataAndTheFoldersSearched) {
  const std::string message = flag_error_of({"--data", "no/such/corpus.txt"});
  EXPECT_EQ(message.rfind("--data: 'no/such/corpus.txt' is not a file (looked for ", 0), 0u)
      << message;
  EXPECT_NE(message.find("expected a text corpus, or --synthetic"), std::string::npos);
}

TEST(TrainCommand, DataPathsAreFoundLikeModels) {
  const fs::path dir =
      fs::temp_directory_path() / ("mpsim_train_data_" + std::to_string(::getpid()));
  fs::create_directories(dir / "data");
  std::ofstream(dir / "data" / "tiny.txt") << "hello\n";
  ::setenv("MPSIM_DATA_DIR", dir.c_str(), 1);
  EXPECT_EQ(resolve_data_path("data/tiny.txt"), (dir / "data" / "tiny.txt").string());
  ::unsetenv("MPSIM_DATA_DIR");
  // Absolute paths are used as given.
  EXPECT_EQ(resolve_data_path((dir / "data" / "tiny.txt").string()),
            (dir / "data" / "tiny.txt").string());
  EXPECT_THROW(resolve_data_path("data/tiny.txt"),
               spec::FlagError);  // not in cwd or the source tree
  fs::remove_all(dir);
}

#ifndef MPSIM_HAVE_EXECUTOR
TEST(TrainCommand, WithoutTheExecutorSaysSoOnce) {
  std::ostringstream out, err;
  EXPECT_EQ(run_train({"--synthetic", "--gpus", "2"}, out, err), 1);
  EXPECT_EQ(err.str(),
            "mpsim was built without the CUDA executor (nvcc not found at build time)\n");
  EXPECT_EQ(out.str(), "");
}
#endif

}  // namespace
}  // namespace mpsim::cli
