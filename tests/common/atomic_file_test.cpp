// Atomic file output: the target is replaced whole, a failure leaves it untouched and no
// temporary file behind.
#include "common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "tests/common/scratch_dir_test.h"

namespace mpsim::common {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public testing::ScratchDirTest {
 protected:
  AtomicFileTest() : ScratchDirTest("mpsim_atomic_file_") {}
  int entries() const { return static_cast<int>(std::distance(fs::directory_iterator(dir_), {})); }
};

TEST_F(AtomicFileTest, WriteReplacesTheTargetWholeAndLeavesNothingElse) {
  const fs::path target = dir_ / "out.json";
  std::ofstream(target) << "old";
  write_file_atomically(target.string(), "new text\n");
  EXPECT_EQ(read(target), "new text\n");
  EXPECT_EQ(entries(), 1);
  struct stat info {};
  ASSERT_EQ(::stat(target.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);
}

TEST_F(AtomicFileTest, WriteIntoAMissingFolderThrowsAndCreatesNothing) {
  EXPECT_THROW(write_file_atomically((dir_ / "no/such/out.json").string(), "x"),
               std::runtime_error);
  EXPECT_EQ(entries(), 0);
}

TEST_F(AtomicFileTest, ReplacingFilePublishesOnlyOnCommit) {
  const fs::path target = dir_ / "trace.json";
  std::ofstream(target) << "keep me";
  {
    ReplacingFile file(target.string());
    EXPECT_EQ(file.temp_path(), target.string() + ".tmp");
    std::ofstream(file.temp_path()) << "unfinished";
  }  // not committed: the temporary file goes, the target stays
  EXPECT_EQ(read(target), "keep me");
  EXPECT_FALSE(fs::exists(target.string() + ".tmp"));

  ReplacingFile file(target.string());
  std::ofstream(file.temp_path()) << "complete";
  file.commit();
  file.commit();  // idempotent
  EXPECT_TRUE(file.committed());
  EXPECT_EQ(read(target), "complete");
  EXPECT_EQ(entries(), 1);
}

TEST_F(AtomicFileTest, AFailedCommitNamesTheTargetAndRemovesTheTemporaryFile) {
  const fs::path target = dir_ / "busy";
  fs::create_directories(target / "child");  // a non-empty folder cannot be renamed over
  ReplacingFile file(target.string());
  std::ofstream(file.temp_path()) << "data";
  try {
    file.commit();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(target.string() + ": cannot rename ", 0), 0u) << e.what();
  }
  EXPECT_FALSE(file.committed());
  EXPECT_FALSE(fs::exists(file.temp_path()));
  EXPECT_TRUE(fs::is_directory(target / "child"));
}

}  // namespace
}  // namespace mpsim::common
