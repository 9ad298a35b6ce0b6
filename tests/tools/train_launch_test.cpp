// `mpsim train --dry-run` run as a program: the ranks are real processes, started by mpsim's own
// launcher or as the tasks of a Slurm step, and meet through the TCP rendezvous that carries the
// NCCL id in a real run. Each rank prints one JSON line saying where it sits in the layout; these
// tests check every rank appears once with the coordinates and groups of Megatron-LM's order
// (global rank = tp + TP * (dp + DP * pp)), worked out here independently of RankLayout.
// The Slurm tests need a reachable cluster (`sinfo -h` answering) and skip without one.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#ifndef MPSIM_BINARY
#error "MPSIM_BINARY (the path of the built mpsim program) must be defined by the build"
#endif

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Wall-clock bound on every command, so a hung rendezvous fails the test instead of hanging it.
constexpr int kCommandSeconds = 20;

const std::string kModelArgs = " --model gpt-bytes-tiny --mbs 2 --gbs 8";

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Result {
  int status = -1;  // exit status; -1 when killed by a signal
  std::string out;  // standard output
  std::string err;  // standard error
};

// Runs the program `command` (a program and its arguments, no shell syntax) with sh, bounded by
// `timeout` where the system has it; `bounded` false runs it as a plain shell command.
Result run(const std::string& command, bool bounded = true) {
  const fs::path err_file =
      fs::temp_directory_path() / ("mpsim_train_launch_" + std::to_string(::getpid()) + ".err");
  const std::string bound = "if command -v timeout >/dev/null 2>&1; then T='timeout -k 5 " +
                            std::to_string(kCommandSeconds) + "'; else T=; fi; $T ";
  const std::string line = (bounded ? bound : "") + command + " 2>" + quoted(err_file.string());
  Result r;
  FILE* pipe = ::popen(line.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed for: " << line;
    return r;
  }
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    r.out.append(buffer.data(), n);
  const int wait_status = ::pclose(pipe);
  r.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  std::ifstream err(err_file);
  std::stringstream text;
  text << err.rdbuf();
  r.err = text.str();
  fs::remove(err_file);
  return r;
}

// mpsim started plainly: without our launcher's or a Slurm step's variables, even when the test
// itself runs inside a Slurm job or under `mpsim train`.
std::string plain_mpsim() {
  return "env -u MPSIM_RANK -u SLURM_STEP_ID -u SLURM_PROCID " + quoted(MPSIM_BINARY);
}

// One JSON object per rank, keyed by rank; fails the test on a line that is not one, or on a
// rank printed twice.
std::map<int, json> lines_by_rank(const std::string& out) {
  std::map<int, json> ranks;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("rank")) {
      ADD_FAILURE() << "not a rank's JSON line: " << line;
      continue;
    }
    const int rank = j["rank"].get<int>();
    EXPECT_TRUE(ranks.emplace(rank, j).second) << "rank " << rank << " printed twice";
  }
  return ranks;
}

struct Layout {
  int tp = 1, dp = 1, pp = 1;
  int global(int t, int d, int p) const { return t + tp * (d + dp * p); }
  int world() const { return tp * dp * pp; }
};

// Every rank 0 .. world-1 once, all from the same launcher and rendezvous address, each with the
// coordinates and groups of Megatron's TP-DP-PP order.
void expect_layout(const std::map<int, json>& ranks, const Layout& l, const std::string& launcher) {
  ASSERT_EQ(static_cast<int>(ranks.size()), l.world());
  const std::string master = ranks.begin()->second.value("master", "");
  EXPECT_FALSE(master.empty());
  for (int r = 0; r < l.world(); ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    ASSERT_TRUE(ranks.count(r)) << "rank " << r << " is missing";
    const json& j = ranks.at(r);
    const int t = r % l.tp, d = (r / l.tp) % l.dp, p = r / (l.tp * l.dp);
    EXPECT_EQ(j["world_size"], l.world());
    EXPECT_EQ(j["launcher"], launcher);
    EXPECT_EQ(j["master"], master);
    EXPECT_EQ(j["tp_rank"], t);
    EXPECT_EQ(j["dp_rank"], d);
    EXPECT_EQ(j["pp_rank"], p);
    std::vector<int> tp_group, dp_group, pp_group;
    for (int k = 0; k < l.tp; ++k) tp_group.push_back(l.global(k, d, p));
    for (int k = 0; k < l.dp; ++k) dp_group.push_back(l.global(t, k, p));
    for (int k = 0; k < l.pp; ++k) pp_group.push_back(l.global(t, d, k));
    EXPECT_EQ(j["tp_group"].get<std::vector<int>>(), tp_group);
    EXPECT_EQ(j["dp_group"].get<std::vector<int>>(), dp_group);
    EXPECT_EQ(j["pp_group"].get<std::vector<int>>(), pp_group);
  }
}

using Chunks = std::vector<std::vector<int>>;

Chunks layers_of(const json& line) { return line["layers"].get<Chunks>(); }

TEST(TrainLaunch, DryRunLocalEightRanksTpDpPp) {
  const Result r =
      run(plain_mpsim() + " train --dry-run --gpus 8 --tp 2 --pp 2 --dp 2" + kModelArgs);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::map<int, json> ranks = lines_by_rank(r.out);
  expect_layout(ranks, Layout{2, 2, 2}, "mpsim");
  for (const auto& [rank, j] : ranks) {
    EXPECT_EQ(j["local_rank"], rank);  // one machine: local ranks are global ranks
    EXPECT_EQ(j["master"].get<std::string>().rfind("127.0.0.1:", 0), 0u) << j["master"];
    // gpt-bytes-tiny has 4 layers: two per pipeline stage.
    EXPECT_EQ(layers_of(j), (j["pp_rank"] == 0 ? Chunks{{0, 1}} : Chunks{{2, 3}})) << j.dump();
  }
}

TEST(TrainLaunch, DryRunLocalInterleavedChunks) {
  const Result r = run(plain_mpsim() + " train --dry-run --gpus 2 --pp 2 --vpp 2" + kModelArgs);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::map<int, json> ranks = lines_by_rank(r.out);
  expect_layout(ranks, Layout{1, 1, 2}, "mpsim");
  ASSERT_EQ(ranks.size(), 2u);
  // Virtual stage v = chunk * pp + pp_rank holds layer v of the 4.
  EXPECT_EQ(layers_of(ranks.at(0)), (Chunks{{0, 0}, {2, 2}}));
  EXPECT_EQ(layers_of(ranks.at(1)), (Chunks{{1, 1}, {3, 3}}));
}

TEST(TrainLaunch, DryRunBadLayoutFailsNamingTheFlag) {
  const Result r = run(plain_mpsim() + " train --dry-run --gpus 3 --tp 2" + kModelArgs);
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--gpus: "), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");  // no rank was started
}

// Why Slurm cannot be used here, or "" when it can: srun on PATH and the controller answering
// `sinfo -h` within a few seconds. Probed once per test program.
const std::string& why_no_slurm() {
  static const std::string why = [] {
    if (run("command -v srun >/dev/null", /*bounded=*/false).status != 0) {
      return std::string("srun is not on PATH");
    }
    if (run("timeout 5 sinfo -h >/dev/null", /*bounded=*/false).status != 0) {
      return std::string("sinfo -h failed or did not answer within 5 s (no Slurm controller)");
    }
    return std::string();
  }();
  return why;
}

// srun for a step of `tasks` tasks: -O lets a node with fewer CPUs than tasks run them all (the
// dry run is idle in the rendezvous); --immediate gives up rather than queue behind other jobs.
std::string srun(int tasks) {
  return "srun -O --immediate=10 -n " + std::to_string(tasks) + " " + quoted(MPSIM_BINARY);
}

TEST(TrainLaunch, DryRunUnderSlurmTasks) {
  if (!why_no_slurm().empty()) GTEST_SKIP() << why_no_slurm();
  const Result r = run(srun(4) + " train --dry-run --gpus 4 --tp 2 --pp 2" + kModelArgs);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::map<int, json> ranks = lines_by_rank(r.out);
  expect_layout(ranks, Layout{2, 1, 2}, "slurm");
  for (const auto& [rank, j] : ranks) {
    EXPECT_EQ(layers_of(j), (j["pp_rank"] == 0 ? Chunks{{0, 1}} : Chunks{{2, 3}})) << j.dump();
  }
}

TEST(TrainLaunch, DryRunUnderSlurmWithTooFewTasksFails) {
  if (!why_no_slurm().empty()) GTEST_SKIP() << why_no_slurm();
  const Result r = run(srun(2) + " train --dry-run --gpus 4 --tp 2 --pp 2" + kModelArgs);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--gpus: 4 GPUs requested but Slurm started 2 tasks"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
}

}  // namespace
