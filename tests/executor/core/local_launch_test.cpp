// executor/core/local_launch.cpp (through launch.h): the local launcher with /bin/sh children,
// and ranks of this test program that find each other through the rendezvous.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "executor/core/launch.h"

namespace mpsim::executor {
namespace {

using Env = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Hosts = std::vector<std::string>;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mpsim_launch_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> shell(const std::string& script) { return {"/bin/sh", "-c", script}; }

// Pids the children wrote as DIR/pid_<rank>.
std::vector<pid_t> written_pids(const std::filesystem::path& dir) {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("pid_", 0) != 0 || name.find('.') != std::string::npos) continue;
    const std::string text = read_text(entry.path());
    if (!text.empty()) pids.push_back(static_cast<pid_t>(std::stol(text)));
  }
  return pids;
}

bool is_running(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

std::vector<uint8_t> test_payload(size_t size) {
  std::vector<uint8_t> p(size);
  for (size_t i = 0; i < size; ++i) p[i] = static_cast<uint8_t>((i * 37 + 11) ^ (i >> 3));
  return p;
}

TEST(LaunchLocalRanks, AllSucceed) {
  std::ostringstream err;
  EXPECT_EQ(launch_local_ranks(3, shell("exit 0"), err), 0);
  EXPECT_EQ(err.str(), "");
}

TEST(LaunchLocalRanks, EachChildGetsItsRankAndTheRendezvousAddress) {
  TempDir dir;
  std::ostringstream err;
  const std::string script = "env > " + dir.path().string() + "/env_$MPSIM_RANK";
  ASSERT_EQ(launch_local_ranks(4, shell(script), err), 0) << err.str();
  int port = 0;
  for (int r = 0; r < 4; ++r) {
    // The child's own view, read back through launch_env_from().
    Env env;
    std::istringstream lines(read_text(dir.path() / ("env_" + std::to_string(r))));
    for (std::string line; std::getline(lines, line);) {
      const size_t eq = line.find('=');
      if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    const std::optional<LaunchEnv> e = launch_env_from(env);
    ASSERT_TRUE(e.has_value()) << "rank " << r;
    EXPECT_EQ(e->rank, r);
    EXPECT_EQ(e->world_size, 4);
    EXPECT_EQ(e->local_rank, r);
    EXPECT_EQ(e->local_world_size, 4);
    EXPECT_EQ(e->master_addr, "127.0.0.1");
    EXPECT_FALSE(e->slurm);
    if (r == 0) port = e->master_port;
    EXPECT_EQ(e->master_port, port);  // one rendezvous port for all
    EXPECT_GT(port, 0);
  }
}

TEST(LaunchLocalRanks, OneFailureStopsTheOthersQuickly) {
  TempDir dir;
  const std::string d = dir.path().string();
  // Every rank records its pid; rank 1 fails once all three have, the others would sleep 30 s.
  const std::string script = "echo $$ > " + d + "/pid_$MPSIM_RANK.tmp && mv " + d +
                             "/pid_$MPSIM_RANK.tmp " + d +
                             "/pid_$MPSIM_RANK; "
                             "if [ \"$MPSIM_RANK\" = 1 ]; then "
                             "  while [ $(ls " +
                             d +
                             " | grep -c '^pid_[0-9]*$') -lt 3 ]; do sleep 0.02; done; exit 3; "
                             "fi; exec sleep 30";
  std::ostringstream err;
  const auto start = Clock::now();
  EXPECT_EQ(launch_local_ranks(3, shell(script), err), 3);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(err.str(), "rank 1 exited with status 3; stopping the other 2 ranks\n");
  const std::vector<pid_t> pids = written_pids(dir.path());
  EXPECT_EQ(pids.size(), 3u);
  for (pid_t pid : pids) EXPECT_FALSE(is_running(pid)) << pid;
}

TEST(LaunchLocalRanks, ChildIgnoringSigtermIsKilledAfterTheGracePeriod) {
  TempDir dir;
  const std::string d = dir.path().string();
  const std::string script = "trap '' TERM; echo $$ > " + d + "/pid_$MPSIM_RANK.tmp && mv " + d +
                             "/pid_$MPSIM_RANK.tmp " + d +
                             "/pid_$MPSIM_RANK; "
                             "if [ \"$MPSIM_RANK\" = 0 ]; then "
                             "  while [ ! -e " +
                             d +
                             "/pid_1 ]; do sleep 0.02; done; exit 4; "
                             "fi; exec sleep 30";
  std::ostringstream err;
  const auto start = Clock::now();
  EXPECT_EQ(launch_local_ranks(2, shell(script), err, milliseconds(300)), 4);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(err.str(),
            "rank 0 exited with status 4; stopping the other 1 rank\n"
            "rank 1 did not stop within 300 ms of SIGTERM; sending SIGKILL\n");
  for (pid_t pid : written_pids(dir.path())) EXPECT_FALSE(is_running(pid)) << pid;
}

TEST(LaunchLocalRanks, ChildKilledBySignalIsReportedAndReturnsOne) {
  std::ostringstream err;
  EXPECT_EQ(launch_local_ranks(1, shell("kill -s USR1 $$"), err), 1);
  EXPECT_EQ(err.str(), "rank 0 killed by signal SIGUSR1\n");
}

TEST(LaunchLocalRanks, ProgramThatCannotStartFails) {
  std::ostringstream err;
  EXPECT_EQ(launch_local_ranks(2, {"/nonexistent/mpsim"}, err), 127);
  EXPECT_NE(err.str().find("exited with status 127"), std::string::npos) << err.str();
}

TEST(LaunchLocalRanks, SigtermToTheLauncherReachesTheChildren) {
  TempDir dir;
  const std::string d = dir.path().string();
  const std::string script = "echo $$ > " + d + "/pid_$MPSIM_RANK.tmp && mv " + d +
                             "/pid_$MPSIM_RANK.tmp " + d + "/pid_$MPSIM_RANK; exec sleep 30";
  // Once both children are up (the launcher's handler is installed before the first fork),
  // signal this process as a shell's `kill` would.
  std::thread signaller([&] {
    for (int i = 0; i < 500 && written_pids(dir.path()).size() < 2; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    ::kill(::getpid(), SIGTERM);
  });
  std::ostringstream err;
  const auto start = Clock::now();
  const int status = launch_local_ranks(2, shell(script), err);
  signaller.join();
  EXPECT_EQ(status, 1);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(err.str().find("killed by signal SIGTERM"), std::string::npos) << err.str();
  for (pid_t pid : written_pids(dir.path())) EXPECT_FALSE(is_running(pid)) << pid;
}

// Run by the next test as a launched rank (skipped when run on its own): finds its rank in the
// environment, takes part in the rendezvous and writes what it received to $MPSIM_TEST_OUT.
TEST(LaunchedRank, RendezvousFromTheEnvironment) {
  const char* out = std::getenv("MPSIM_TEST_OUT");
  if (std::getenv("MPSIM_RANK") == nullptr || out == nullptr) {
    GTEST_SKIP() << "runs only as a rank started by LaunchLocalRanks.RanksRendezvous";
  }
  const std::optional<LaunchEnv> env = launch_env_from(current_environment());
  ASSERT_TRUE(env.has_value());
  const std::vector<uint8_t> got = rendezvous(
      *env, env->rank == 0 ? test_payload(128) : std::vector<uint8_t>{}, milliseconds(20000));
  std::ofstream(std::string(out) + "/got_" + std::to_string(env->rank), std::ios::binary)
      .write(reinterpret_cast<const char*>(got.data()), static_cast<std::streamsize>(got.size()));
}

TEST(LaunchLocalRanks, RanksRendezvous) {
  TempDir dir;
  ::setenv("MPSIM_TEST_OUT", dir.path().c_str(), 1);
  std::ostringstream err;
  const int status = launch_local_ranks(
      4, {"/proc/self/exe", "--gtest_filter=LaunchedRank.RendezvousFromTheEnvironment"}, err);
  ::unsetenv("MPSIM_TEST_OUT");
  ASSERT_EQ(status, 0) << err.str();
  const std::vector<uint8_t> expected = test_payload(128);
  for (int r = 0; r < 4; ++r) {
    const std::string got = read_text(dir.path() / ("got_" + std::to_string(r)));
    EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), expected) << "rank " << r;
  }
}

TEST(LaunchLocalRanks, BadArgumentsThrow) {
  std::ostringstream err;
  EXPECT_THROW(launch_local_ranks(0, shell("exit 0"), err), std::invalid_argument);
  EXPECT_THROW(launch_local_ranks(1, {}, err), std::invalid_argument);
}

}  // namespace
}  // namespace mpsim::executor
