// executor/core/launch_env.cpp (through launch.h): the launch environment (ours and Slurm's),
// hostlist and tasks-per-node expansion.
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

}  // namespace
}  // namespace mpsim::executor
