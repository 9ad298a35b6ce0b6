// common/process/child_process: a child's stdout file, its environment (set and unset), PATH
// lookup, what exec failures print and exit with, and exit statuses of children that exit or are
// killed, on /bin/sh.
#include "common/process/child_process.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mpsim::common {
namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() /
         ("mpsim-child-test-" + name + "-" + std::to_string(::getpid()) + ".txt");
}

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ChildProcess, CommandLineQuotesWhatAShellWouldSplit) {
  EXPECT_EQ(command_line({"mpsim", "train", "--tp", "2"}), "mpsim train --tp 2");
  EXPECT_EQ(command_line({"a b", "it's", ""}), "'a b' 'it'\\''s' ''");
}

TEST(ChildProcess, StdoutGoesToTheFileAndTheEnvironmentIsChanged) {
  const fs::path out = temp_file("stdout");
  ::setenv("MPSIM_CHILD_TEST_KEEP", "kept", 1);
  ::setenv("MPSIM_CHILD_TEST_DROP", "dropped", 1);
  ::setenv("MPSIM_CHILD_TEST_SET", "old", 1);
  ChildSpec spec;
  spec.argv = {"/bin/sh", "-c",
               "echo \"$MPSIM_CHILD_TEST_KEEP,${MPSIM_CHILD_TEST_DROP-unset},"
               "$MPSIM_CHILD_TEST_SET,$MPSIM_CHILD_TEST_NEW\"; exit 3"};
  spec.unset = {"MPSIM_CHILD_TEST_DROP"};
  spec.set = {{"MPSIM_CHILD_TEST_SET", "new"}, {"MPSIM_CHILD_TEST_NEW", "added"}};
  spec.stdout_path = out.string();
  EXPECT_EQ(run_child(spec), 3);
  EXPECT_EQ(read(out), "kept,unset,new,added\n");
  fs::remove(out);
}

TEST(ChildProcess, AKilledChildReports128PlusTheSignal) {
  ChildSpec spec;
  spec.argv = {"/bin/sh", "-c", "kill -9 $$"};
  EXPECT_EQ(run_child(spec), 128 + SIGKILL);
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
  EXPECT_EQ(signal_name(SIGSEGV), "SIGSEGV");
}

TEST(ChildProcess, ExecFailuresExitWithTheStatusAsked) {
  ChildSpec spec;
  spec.argv = {"/no/such/program"};
  spec.exec_failure = "test: cannot run '/no/such/program': ";
  EXPECT_EQ(run_child(spec), 127);
  spec.shell_statuses = true;
  EXPECT_EQ(run_child(spec), 127);  // not found
  spec.argv = {"/"};                // found, not executable
  EXPECT_EQ(run_child(spec), 126);
  spec.shell_statuses = false;
  EXPECT_EQ(run_child(spec), 127);
}

TEST(ChildProcess, SearchPathFindsAProgramByName) {
  ChildSpec spec;
  spec.argv = {"sh", "-c", "exit 5"};
  spec.search_path = true;
  EXPECT_EQ(run_child(spec), 5);
  spec.search_path = false;  // "sh" is then a path relative to the current directory
  EXPECT_EQ(run_child(spec), 127);
}

TEST(ChildProcess, TheProgramCanDifferFromArgvZero) {
  const fs::path out = temp_file("argv0");
  ChildSpec spec;
  spec.program = "/bin/sh";
  spec.argv = {"my-name", "-c", "echo \"$0\""};
  spec.stdout_path = out.string();
  EXPECT_EQ(run_child(spec), 0);
  EXPECT_EQ(read(out), "my-name\n");
  fs::remove(out);
}

TEST(ChildProcess, AStdoutFileThatCannotBeCreatedThrows) {
  ChildSpec spec;
  spec.argv = {"/bin/true"};
  spec.stdout_path = "/no/such/folder/out.txt";
  EXPECT_THROW(run_child(spec), std::runtime_error);
}

}  // namespace
}  // namespace mpsim::common
