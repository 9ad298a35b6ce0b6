// launch.h: the launch environment (ours and Slurm's), hostlist and tasks-per-node expansion, the
// TCP rendezvous with ranks as threads, and the local launcher with /bin/sh children.
#include "executor/core/launch.h"

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

namespace mpsim::executor {
namespace {

using Env = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Hosts = std::vector<std::string>;

// The std::invalid_argument message of launch_env_from(env), or "no error".
std::string env_error(const Env& env) {
  try {
    launch_env_from(env);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

std::string hostlist_error(std::string_view text) {
  try {
    expand_hostlist(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

Env ours() {
  return {{"MPSIM_RANK", "2"},
          {"MPSIM_WORLD_SIZE", "4"},
          {"MPSIM_LOCAL_RANK", "2"},
          {"MPSIM_LOCAL_WORLD_SIZE", "4"},
          {"MPSIM_MASTER_ADDR", "127.0.0.1"},
          {"MPSIM_MASTER_PORT", "29500"}};
}

// Task 5 of `srun -N 2 -n 8` in job 123456, step 0.
Env slurm() {
  return {{"SLURM_PROCID", "5"},
          {"SLURM_NTASKS", "8"},
          {"SLURM_LOCALID", "1"},
          {"SLURM_NODEID", "1"},
          {"SLURM_STEP_TASKS_PER_NODE", "4(x2)"},
          {"SLURM_STEP_NODELIST", "gpu[07-08]"},
          {"SLURM_JOB_NODELIST", "gpu[07-08],gpu11"},
          {"SLURM_JOB_ID", "123456"},
          {"SLURM_STEP_ID", "0"}};
}

TEST(LaunchEnv, PlainStartIsNotLaunched) {
  EXPECT_FALSE(launch_env_from({}).has_value());
  EXPECT_FALSE(launch_env_from({{"HOME", "/root"}, {"CUDA_VISIBLE_DEVICES", "0,1"}}).has_value());
}

TEST(LaunchEnv, OurLauncher) {
  const std::optional<LaunchEnv> e = launch_env_from(ours());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->rank, 2);
  EXPECT_EQ(e->world_size, 4);
  EXPECT_EQ(e->local_rank, 2);
  EXPECT_EQ(e->local_world_size, 4);
  EXPECT_EQ(e->master_addr, "127.0.0.1");
  EXPECT_EQ(e->master_port, 29500);
  EXPECT_FALSE(e->slurm);
}

TEST(LaunchEnv, OurLauncherWinsOverSlurm) {
  Env env = slurm();
  for (const auto& [k, v] : ours()) env[k] = v;
  const std::optional<LaunchEnv> e = launch_env_from(env);
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->slurm);
  EXPECT_EQ(e->rank, 2);
}

TEST(LaunchEnv, OurLauncherErrorsNameTheVariable) {
  auto without = [](const char* name) {
    Env env = ours();
    env.erase(name);
    return env;
  };
  auto with = [](const char* name, const char* value) {
    Env env = ours();
    env[name] = value;
    return env;
  };
  EXPECT_EQ(env_error(without("MPSIM_MASTER_PORT")),
            "MPSIM_MASTER_PORT is not set; expected a TCP port (1 to 65535)");
  EXPECT_EQ(
      env_error(without("MPSIM_WORLD_SIZE")).rfind("MPSIM_WORLD_SIZE is not set; expected ", 0),
      0u);
  EXPECT_EQ(env_error(without("MPSIM_MASTER_ADDR")).rfind("MPSIM_MASTER_ADDR is not set", 0), 0u);
  EXPECT_EQ(env_error(with("MPSIM_RANK", "two")),
            "MPSIM_RANK: 'two' is not a rank (an integer from 0)");
  EXPECT_EQ(env_error(with("MPSIM_RANK", "-1")),
            "MPSIM_RANK: '-1' is not a rank (an integer from 0)");
  EXPECT_EQ(env_error(with("MPSIM_RANK", "4")),
            "MPSIM_RANK: rank 4 is not below MPSIM_WORLD_SIZE (4); expected 0 .. 3");
  EXPECT_EQ(
      env_error(with("MPSIM_LOCAL_RANK", "7")),
      "MPSIM_LOCAL_RANK: local rank 7 is not below MPSIM_LOCAL_WORLD_SIZE (4); expected 0 .. 3");
  EXPECT_EQ(env_error(with("MPSIM_MASTER_PORT", "70000")),
            "MPSIM_MASTER_PORT: '70000' is not a TCP port (1 to 65535)");
  EXPECT_EQ(env_error(with("MPSIM_MASTER_PORT", "")),
            "MPSIM_MASTER_PORT: '' is not a TCP port (1 to 65535)");
  EXPECT_EQ(env_error(with("MPSIM_WORLD_SIZE", "0")).rfind("MPSIM_WORLD_SIZE: '0' is not ", 0), 0u);
  EXPECT_EQ(env_error(with("MPSIM_MASTER_ADDR", "")).rfind("MPSIM_MASTER_ADDR: is empty", 0), 0u);
}

TEST(LaunchEnv, SlurmStep) {
  const std::optional<LaunchEnv> e = launch_env_from(slurm());
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->slurm);
  EXPECT_EQ(e->rank, 5);
  EXPECT_EQ(e->world_size, 8);
  EXPECT_EQ(e->local_rank, 1);
  EXPECT_EQ(e->local_world_size, 4);
  EXPECT_EQ(e->master_addr, "gpu07");  // the step's first node, not the job's
  EXPECT_EQ(e->master_port, 20000 + (123456 * 7 + 0) % 20000);  // 24192
  EXPECT_EQ(e->master_port, 24192);
}

TEST(LaunchEnv, SlurmPortFollowsJobAndStepUnlessOverridden) {
  Env env = slurm();
  env["SLURM_JOB_ID"] = "987654321";
  env["SLURM_STEP_ID"] = "3";
  EXPECT_EQ(launch_env_from(env)->master_port, 20000 + (987654321LL * 7 + 3) % 20000);
  env["MPSIM_MASTER_PORT"] = "31000";
  EXPECT_EQ(launch_env_from(env)->master_port, 31000);
  env.erase("SLURM_JOB_ID");  // not needed when the port is given
  EXPECT_EQ(launch_env_from(env)->master_port, 31000);
}

TEST(LaunchEnv, SlurmNodeListForms) {
  auto master_of = [](const char* variable, const char* list) {
    Env env = slurm();
    env.erase("SLURM_STEP_NODELIST");
    env.erase("SLURM_JOB_NODELIST");
    env[variable] = list;
    return launch_env_from(env)->master_addr;
  };
  EXPECT_EQ(master_of("SLURM_STEP_NODELIST", "node1,node2"), "node1");
  EXPECT_EQ(master_of("SLURM_STEP_NODELIST", "gpu[001-004,010]"), "gpu001");
  EXPECT_EQ(master_of("SLURM_STEP_NODELIST", "a-[8-9],b"), "a-8");
  EXPECT_EQ(master_of("SLURM_STEP_NODELIST", "login1"), "login1");
  EXPECT_EQ(master_of("SLURM_JOB_NODELIST", "dgx[12-13]"), "dgx12");  // no step list: the job's
  EXPECT_EQ(master_of("SLURM_STEP_NODELIST", "rack[2-3]-n[05-06]"), "rack2-n05");
}

TEST(LaunchEnv, SlurmTasksPerNode) {
  auto local_size = [](const Env& changes, const std::vector<std::string>& drop = {}) {
    Env env = slurm();
    for (const std::string& d : drop) env.erase(d);
    for (const auto& [k, v] : changes) env[k] = v;
    return launch_env_from(env)->local_world_size;
  };
  // Uneven step: 2 tasks on nodes 0-2, 1 on node 3; SLURM_NODEID picks this node's count.
  EXPECT_EQ(local_size({{"SLURM_STEP_TASKS_PER_NODE", "2(x3),1"},
                        {"SLURM_NODEID", "3"},
                        {"SLURM_LOCALID", "0"}}),
            1);
  EXPECT_EQ(local_size({{"SLURM_STEP_TASKS_PER_NODE", "2(x3),1"}, {"SLURM_NODEID", "1"}}), 2);
  EXPECT_EQ(local_size({{"SLURM_NTASKS_PER_NODE", "4"}}, {"SLURM_STEP_TASKS_PER_NODE"}), 4);
  EXPECT_EQ(local_size({{"SLURM_TASKS_PER_NODE", "8"}}, {"SLURM_STEP_TASKS_PER_NODE"}), 8);
  // Even layouts do not need SLURM_NODEID.
  EXPECT_EQ(local_size({}, {"SLURM_NODEID"}), 4);
}

TEST(LaunchEnv, OnlyTaskStepsCount) {
  Env env = slurm();
  env.erase("SLURM_STEP_ID");  // an sbatch script or salloc shell outside srun
  EXPECT_FALSE(launch_env_from(env).has_value());
  for (const char* special : {"batch", "extern", "interactive", "4294967291", "4294967290"}) {
    env["SLURM_STEP_ID"] = special;
    EXPECT_FALSE(launch_env_from(env).has_value()) << special;
  }
  env = slurm();
  env.erase("SLURM_NTASKS");
  EXPECT_FALSE(launch_env_from(env).has_value());
}

TEST(LaunchEnv, SlurmErrorsNameTheVariable) {
  auto error_with = [](const Env& changes, const std::vector<std::string>& drop = {}) {
    Env env = slurm();
    for (const std::string& d : drop) env.erase(d);
    for (const auto& [k, v] : changes) env[k] = v;
    return env_error(env);
  };
  EXPECT_EQ(error_with({}, {"SLURM_LOCALID"}).rfind("SLURM_LOCALID is not set; expected ", 0), 0u);
  EXPECT_EQ(error_with({{"SLURM_NTASKS", "eight"}}),
            "SLURM_NTASKS: 'eight' is not the number of tasks (an integer from 1)");
  EXPECT_EQ(error_with({{"SLURM_PROCID", "8"}}),
            "SLURM_PROCID: rank 8 is not below SLURM_NTASKS (8); expected 0 .. 7");
  EXPECT_EQ(error_with({{"SLURM_STEP_NODELIST", "gpu[07-"}})
                .rfind("SLURM_STEP_NODELIST: hostlist 'gpu[07-': ", 0),
            0u);
  EXPECT_EQ(error_with({}, {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"})
                .rfind("SLURM_STEP_NODELIST is not set (nor SLURM_JOB_NODELIST)", 0),
            0u);
  EXPECT_EQ(error_with({}, {"SLURM_JOB_ID"}).rfind("SLURM_JOB_ID is not set; expected ", 0), 0u);
  EXPECT_EQ(error_with({{"SLURM_JOB_ID", "12x"}}).rfind("SLURM_JOB_ID: '12x' is not ", 0), 0u);
  EXPECT_EQ(error_with({{"SLURM_STEP_ID", "zero"}}).rfind("SLURM_STEP_ID: 'zero' is not ", 0), 0u);
  EXPECT_EQ(error_with({{"SLURM_STEP_TASKS_PER_NODE", "4(x2"}}),
            "SLURM_STEP_TASKS_PER_NODE: '4(x2' is not a tasks-per-node list; expected counts "
            "like 4 or 2(x3),1");
  EXPECT_EQ(error_with({{"SLURM_STEP_TASKS_PER_NODE", "2(x3),1"}}, {"SLURM_NODEID"})
                .rfind("SLURM_NODEID is not set; expected ", 0),
            0u);
  EXPECT_EQ(error_with({{"SLURM_STEP_TASKS_PER_NODE", "2,1"}, {"SLURM_NODEID", "2"}})
                .rfind("SLURM_NODEID: node 2 is beyond the 2 nodes", 0),
            0u);
  EXPECT_EQ(error_with({{"MPSIM_MASTER_PORT", "0"}}),
            "MPSIM_MASTER_PORT: '0' is not a TCP port (1 to 65535)");
  EXPECT_EQ(error_with({}, {"SLURM_STEP_TASKS_PER_NODE"})
                .rfind("SLURM_STEP_TASKS_PER_NODE is not set", 0),
            0u);
}

TEST(Hostlist, Expands) {
  EXPECT_EQ(expand_hostlist("gpu[01-03,07],login1,node-[8-9]"),
            (Hosts{"gpu01", "gpu02", "gpu03", "gpu07", "login1", "node-8", "node-9"}));
  EXPECT_EQ(expand_hostlist("login1"), Hosts{"login1"});
  EXPECT_EQ(expand_hostlist("a,b,c"), (Hosts{"a", "b", "c"}));
  EXPECT_EQ(expand_hostlist("n[8-10]"), (Hosts{"n8", "n9", "n10"}));
  EXPECT_EQ(expand_hostlist("n[098-101]"), (Hosts{"n098", "n099", "n100", "n101"}));
  EXPECT_EQ(expand_hostlist("n[5]"), Hosts{"n5"});
  EXPECT_EQ(expand_hostlist("[1-2]x"), (Hosts{"1x", "2x"}));
  EXPECT_EQ(expand_hostlist("r[1-2]n[1-2]"), (Hosts{"r1n1", "r1n2", "r2n1", "r2n2"}));
  EXPECT_EQ(expand_hostlist("gpu-a100.cluster.org"), Hosts{"gpu-a100.cluster.org"});
  EXPECT_EQ(expand_hostlist("g[0000-1023]").size(), 1024u);
  EXPECT_EQ(expand_hostlist("g[0000-1023]").back(), "g1023");
}

TEST(Hostlist, MalformedIsAnErrorQuotingTheText) {
  EXPECT_EQ(hostlist_error(""),
            "hostlist '': is empty; expected host names like gpu[01-04],login1");
  EXPECT_EQ(hostlist_error("gpu[01-03"),
            "hostlist 'gpu[01-03': '[' is not closed; expected name[01-04]");
  EXPECT_EQ(hostlist_error("gpu01]"), "hostlist 'gpu01]': ']' without '['");
  EXPECT_EQ(hostlist_error("gpu[3-1]"),
            "hostlist 'gpu[3-1]': range '3-1' runs backwards; expected low-high");
  EXPECT_EQ(hostlist_error("gpu[a-b]"),
            "hostlist 'gpu[a-b]': 'a-b' is not a number or a range; expected e.g. 07 or 01-04");
  EXPECT_EQ(hostlist_error("gpu[1-]"),
            "hostlist 'gpu[1-]': '1-' is not a number or a range; expected e.g. 07 or 01-04");
  EXPECT_EQ(hostlist_error("gpu[1,,2]"),
            "hostlist 'gpu[1,,2]': '' is not a number or a range; expected e.g. 07 or 01-04");
  EXPECT_EQ(hostlist_error("gpu[]"),
            "hostlist 'gpu[]': '[]' is empty; expected numbers or ranges like [01-04,07]");
  EXPECT_EQ(hostlist_error("g[1-[2]]"), "hostlist 'g[1-[2]]': '[' inside '[...]' is not allowed");
  EXPECT_EQ(hostlist_error("a,,b"),
            "hostlist 'a,,b': has an empty host name; expected names separated by single ','");
  EXPECT_EQ(hostlist_error(",a"),
            "hostlist ',a': has an empty host name; expected names separated by single ','");
  EXPECT_EQ(hostlist_error("a,"), "hostlist 'a,': ends with ','; expected another host name");
  EXPECT_EQ(hostlist_error("a b"),
            "hostlist 'a b': contains a space or control character; expected host names separated "
            "by ','");
  EXPECT_EQ(hostlist_error("g[0-99999999]"),
            "hostlist 'g[0-99999999]': range '0-99999999' is too large");
}

TEST(TasksPerNode, Expands) {
  EXPECT_EQ(expand_tasks_per_node("4"), std::vector<int>{4});
  EXPECT_EQ(expand_tasks_per_node("2(x3),1"), (std::vector<int>{2, 2, 2, 1}));
  EXPECT_EQ(expand_tasks_per_node("1,8(x2)"), (std::vector<int>{1, 8, 8}));
  for (const char* bad : {"", "x", "0", "2(x3", "2(x0)", "2(3)", "2,", "-1", "2(x3)1"}) {
    EXPECT_THROW(expand_tasks_per_node(bad), std::invalid_argument) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Rendezvous.

LaunchEnv rank_env(int rank, int world, int port) {
  LaunchEnv e;
  e.rank = rank;
  e.world_size = world;
  e.local_rank = rank;
  e.local_world_size = world;
  e.master_addr = "127.0.0.1";
  e.master_port = port;
  return e;
}

std::vector<uint8_t> test_payload(size_t size) {
  std::vector<uint8_t> p(size);
  for (size_t i = 0; i < size; ++i) p[i] = static_cast<uint8_t>((i * 37 + 11) ^ (i >> 3));
  return p;
}

// Rank `rank`'s result, or the runtime_error message prefixed with "error: ".
struct Outcome {
  std::vector<uint8_t> payload;
  std::string error;
};

Outcome run_rank(const LaunchEnv& env, const std::vector<uint8_t>& payload, milliseconds timeout) {
  try {
    return {rendezvous(env, payload, timeout), ""};
  } catch (const std::runtime_error& e) {
    return {{}, e.what()};
  }
}

TEST(Rendezvous, EveryRankGetsRankZerosPayload) {
  const int port = find_free_port();
  const std::vector<uint8_t> id = test_payload(128);  // the size of an ncclUniqueId
  std::vector<std::future<Outcome>> ranks;
  for (int r = 1; r < 4; ++r) {
    // Other ranks bring their own (different) bytes: only rank 0's count.
    ranks.push_back(std::async(std::launch::async, run_rank, rank_env(r, 4, port),
                               std::vector<uint8_t>(7, uint8_t(r)), milliseconds(20000)));
  }
  // Rank 0 comes up last, so the others have to retry their connections.
  std::this_thread::sleep_for(milliseconds(300));
  const Outcome zero = run_rank(rank_env(0, 4, port), id, milliseconds(20000));
  EXPECT_EQ(zero.error, "");
  EXPECT_EQ(zero.payload, id);
  for (int r = 1; r < 4; ++r) {
    const Outcome o = ranks[r - 1].get();
    EXPECT_EQ(o.error, "") << "rank " << r;
    EXPECT_EQ(o.payload, id) << "rank " << r;
  }
}

TEST(Rendezvous, EmptyPayloadAndRepeatedUseOfOnePort) {
  const int port = find_free_port();
  for (int round = 0; round < 2; ++round) {  // SO_REUSEADDR: the port is free again at once
    auto one = std::async(std::launch::async, run_rank, rank_env(1, 2, port),
                          std::vector<uint8_t>{}, milliseconds(10000));
    const Outcome zero = run_rank(rank_env(0, 2, port), {}, milliseconds(10000));
    EXPECT_EQ(zero.error, "");
    const Outcome o = one.get();
    EXPECT_EQ(o.error, "");
    EXPECT_TRUE(o.payload.empty());
  }
}

TEST(Rendezvous, OneRankNeedsNoNetwork) {
  const std::vector<uint8_t> id = test_payload(128);
  EXPECT_EQ(rendezvous(rank_env(0, 1, 1), id, milliseconds(10)), id);
}

TEST(Rendezvous, MissingRankMakesRankZeroTimeOut) {
  const int port = find_free_port();
  const milliseconds timeout(800);
  std::vector<std::future<Outcome>> others;
  for (int r = 1; r < 3; ++r) {  // rank 3 never comes; these two outwait rank 0
    others.push_back(std::async(std::launch::async, run_rank, rank_env(r, 4, port),
                                std::vector<uint8_t>{}, milliseconds(10000)));
  }
  const auto start = Clock::now();
  const Outcome zero = run_rank(rank_env(0, 4, port), test_payload(128), timeout);
  const auto waited = Clock::now() - start;
  EXPECT_EQ(zero.error, "rendezvous: rank 0 waited 800 ms on port " + std::to_string(port) +
                            " for 3 other ranks; 1 never connected (ranks 3)");
  EXPECT_GE(waited, timeout);
  EXPECT_LT(waited, timeout + milliseconds(1500));
  for (int r = 1; r < 3; ++r) {
    // Rank 0 giving up closes the connections: the others fail at once, not after 10 s.
    const Outcome o = others[r - 1].get();
    EXPECT_EQ(o.error, "rendezvous: rank " + std::to_string(r) +
                           " got 0 of 8 bytes of the payload header before rank 0 at 127.0.0.1:" +
                           std::to_string(port) + " closed the connection");
  }
  EXPECT_LT(Clock::now() - start, timeout + milliseconds(3000));
}

TEST(Rendezvous, ConnectedRankThatLeavesIsReportedAsSuch) {
  const int port = find_free_port();
  // Rank 1 connects but gives up after 300 ms; rank 2 never comes.
  auto one = std::async(std::launch::async, run_rank, rank_env(1, 3, port), std::vector<uint8_t>{},
                        milliseconds(300));
  const Outcome zero = run_rank(rank_env(0, 3, port), {}, milliseconds(1000));
  EXPECT_EQ(zero.error, "rendezvous: rank 0 waited 1000 ms on port " + std::to_string(port) +
                            " for 2 other ranks; 1 never connected (ranks 2); 1 connected but "
                            "closed the connection (ranks 1)");
  EXPECT_EQ(one.get().error,
            "rendezvous: rank 1 waited 300 ms for the payload header from rank 0 at 127.0.0.1:" +
                std::to_string(port) +
                " (connected; rank 0 answers once all 3 ranks have connected)");
}

TEST(Rendezvous, NoRankZeroMakesOthersTimeOut) {
  const int port = find_free_port();
  const auto start = Clock::now();
  const Outcome o = run_rank(rank_env(1, 2, port), {}, milliseconds(500));
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  EXPECT_EQ(o.error.rfind("rendezvous: rank 1 waited 500 ms for rank 0 at 127.0.0.1:" +
                              std::to_string(port) + " and could not connect (last error: ",
                          0),
            0u)
      << o.error;
}

TEST(Rendezvous, UnresolvableHostTimesOutWithTheReason) {
  LaunchEnv e = rank_env(1, 2, 12345);
  e.master_addr = "no-such-host.invalid";
  const Outcome o = run_rank(e, {}, milliseconds(300));
  EXPECT_NE(o.error.find("rank 1 waited 300 ms for rank 0 at no-such-host.invalid:12345"),
            std::string::npos)
      << o.error;
}

TEST(Rendezvous, DisagreeingWorldSizesAreAnError) {
  const int port = find_free_port();
  auto one = std::async(std::launch::async, run_rank, rank_env(1, 3, port), std::vector<uint8_t>{},
                        milliseconds(5000));
  const Outcome zero = run_rank(rank_env(0, 2, port), {}, milliseconds(5000));
  EXPECT_EQ(zero.error, "rendezvous: rank 0 on port " + std::to_string(port) +
                            " (world size 2) was reached by rank 1 of a world of 3; expected "
                            "every rank to run with the same number of GPUs");
  EXPECT_NE(one.get().error, "");
}

TEST(Rendezvous, StrayConnectionsAreIgnored) {
  const int port = find_free_port();
  auto zero = std::async(std::launch::async, run_rank, rank_env(0, 2, port), test_payload(16),
                         milliseconds(10000));
  std::this_thread::sleep_for(milliseconds(200));
  // Something that is not a rank connects, sends garbage and leaves.
  std::string ignored;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a), 0);
    const char garbage[] = "GET / HTTP/1.0\r\n\r\n";
    ASSERT_GT(::send(fd, garbage, sizeof garbage, 0), 0);
    ::close(fd);
  }
  const Outcome one = run_rank(rank_env(1, 2, port), {}, milliseconds(10000));
  EXPECT_EQ(one.error, "");
  EXPECT_EQ(one.payload, test_payload(16));
  EXPECT_EQ(zero.get().error, "");
}

// ---------------------------------------------------------------------------------------------
// The local launcher.

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
