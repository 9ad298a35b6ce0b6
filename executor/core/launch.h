// How the ranks of one `mpsim train` run find each other: which rank this process is (from the
// environment), how every rank obtains the same bootstrap bytes (NCCL's unique id) from rank 0,
// and how `mpsim train` started without a launcher starts one process per local GPU itself.
//
// Two ways in, one LaunchEnv out:
//   * started by launch_local_ranks(): MPSIM_RANK, MPSIM_WORLD_SIZE, MPSIM_LOCAL_RANK,
//     MPSIM_LOCAL_WORLD_SIZE, MPSIM_MASTER_ADDR and MPSIM_MASTER_PORT are all set;
//   * a task of a Slurm step (`srun -n N mpsim train ...`): ranks come from SLURM_PROCID,
//     SLURM_NTASKS, SLURM_LOCALID and the step's tasks-per-node list; rank 0 is the first host of
//     the step's node list and listens on a port derived from the job and step ids, so every task
//     computes the same address with no extra service.
// Rendezvous is one TCP exchange: every other rank connects to rank 0 and says who it is; once all
// have, rank 0 sends each the payload. It doubles as a start-up barrier.
//
// Failures: bad or missing environment variables throw std::invalid_argument naming the variable
// and what was expected; expand_hostlist() throws std::invalid_argument quoting the text; the
// rendezvous throws std::runtime_error naming the rank, the address it waited on and for how long.
// Nothing here blocks without a deadline.
//
// Sources by what they do: launch_env.cpp (the environment, Slurm's hostlist and tasks-per-node
// syntax), rendezvous.cpp (the TCP exchange, a free port), local_launch.cpp (one process per rank,
// over common/process/child_process.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpsim::executor {

struct LaunchEnv {
  int rank = 0;              // global rank, 0 .. world_size-1
  int world_size = 1;        // processes in the run (one per GPU)
  int local_rank = 0;        // rank among the processes on this node; selects the GPU
  int local_world_size = 1;  // processes on this node
  std::string master_addr;   // host name or address of rank 0
  int master_port = 0;       // TCP port rank 0 listens on for the rendezvous
  bool slurm = false;        // ranks came from Slurm rather than from launch_local_ranks()
};

// This process's environment as a map (the input of launch_env_from()).
std::map<std::string, std::string> current_environment();

// The launch this process is part of, or std::nullopt when it was started plainly (the command must
// then start the ranks itself). Our launcher's MPSIM_* variables win over Slurm's. Under Slurm only
// a task of a numbered job step counts (SLURM_STEP_ID set and not one of Slurm's special steps:
// batch, extern, interactive), so `mpsim train` typed in an sbatch script or an salloc shell
// launches locally. Port: MPSIM_MASTER_PORT if set, else 20000 + (job_id * 7 + step_id) % 20000.
std::optional<LaunchEnv> launch_env_from(const std::map<std::string, std::string>& env);

// Expands Slurm's hostlist syntax: "gpu[01-03,07],login1,node-[8-9]" -> gpu01 gpu02 gpu03 gpu07
// login1 node-8 node-9. Zero padding is kept (the width of each range's first number); several
// bracket groups in one name expand as their product ("r[1-2]n[1-2]" -> r1n1 r1n2 r2n1 r2n2).
std::vector<std::string> expand_hostlist(std::string_view hostlist);

// Expands Slurm's tasks-per-node syntax: "2(x3),1" -> 2 2 2 1.
std::vector<int> expand_tasks_per_node(std::string_view text);

// Every rank calls this once with the same env; rank 0's `payload` (at most 1 MiB) is returned on
// every rank. Rank 0 listens on env.master_port on all interfaces and answers once all
// world_size - 1 other ranks have connected; the others connect to master_addr:master_port,
// retrying while rank 0 is not up yet. Throws std::runtime_error when `timeout` passes first, when
// a peer closes the connection early, or when peers disagree about the world size.
std::vector<uint8_t> rendezvous(const LaunchEnv& env, const std::vector<uint8_t>& payload,
                                std::chrono::milliseconds timeout);

// A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). Throws
// std::runtime_error if no socket can be bound.
int find_free_port();

// Starts `world_size` copies of the program argv[0] (exec'd with argv; "/proc/self/exe" for this
// program) with this environment plus MPSIM_RANK .. MPSIM_MASTER_PORT (master 127.0.0.1, a free
// port), and waits for all of them. Children inherit stdin, stdout, stderr and
// CUDA_VISIBLE_DEVICES. SIGINT and SIGTERM received meanwhile are passed on to the children. When a
// child exits non-zero or is killed by a signal, the others get SIGTERM and, after `grace`,
// SIGKILL, and the failure is reported on `err` ("rank 2 exited with status 3", "rank 1 killed by
// signal SIGSEGV"). Returns 0 when every rank succeeded, else the first failing rank's exit status
// (1 for a signal). Throws std::runtime_error when a child cannot be started (fork fails), after
// stopping the others.
int launch_local_ranks(int world_size, const std::vector<std::string>& argv, std::ostream& err,
                       std::chrono::milliseconds grace = std::chrono::seconds(5));

}  // namespace mpsim::executor
