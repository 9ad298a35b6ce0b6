// The local launcher: one process per rank on this machine; see launch.h.
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>

#include "common/process/child_process.h"
#include "executor/core/launch.h"

namespace mpsim::executor {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Our launcher's variables, in the order launch_local_ranks() sets them.
constexpr std::array<const char*, 6> kOurVariables = {"MPSIM_RANK",        "MPSIM_WORLD_SIZE",
                                                      "MPSIM_LOCAL_RANK",  "MPSIM_LOCAL_WORLD_SIZE",
                                                      "MPSIM_MASTER_ADDR", "MPSIM_MASTER_PORT"};

// The signal the parent received and has not yet passed on; 0 for none. Signal handlers can only
// reach static storage, hence this one non-constant global.
std::atomic<int> g_pending_signal{0};

void remember_signal(int sig) { g_pending_signal.store(sig); }

// Installs remember_signal() for SIGINT and SIGTERM (unless they are ignored, as under nohup)
// and restores the previous handlers when it goes out of scope.
class SignalForwarding {
 public:
  SignalForwarding() {
    g_pending_signal.store(0);
    for (size_t i = 0; i < kSignals.size(); ++i) {
      struct sigaction now {};
      ::sigaction(kSignals[i], nullptr, &previous_[i]);
      installed_[i] = previous_[i].sa_handler != SIG_IGN;
      if (!installed_[i]) continue;
      now.sa_handler = remember_signal;
      sigemptyset(&now.sa_mask);
      ::sigaction(kSignals[i], &now, nullptr);
    }
  }
  ~SignalForwarding() {
    for (size_t i = 0; i < kSignals.size(); ++i) {
      if (installed_[i]) ::sigaction(kSignals[i], &previous_[i], nullptr);
    }
  }
  SignalForwarding(const SignalForwarding&) = delete;
  SignalForwarding& operator=(const SignalForwarding&) = delete;

 private:
  static constexpr std::array<int, 2> kSignals = {SIGINT, SIGTERM};
  std::array<struct sigaction, 2> previous_{};
  std::array<bool, 2> installed_{};
};

// The environment of rank `rank` of `world_size`: ours without our launcher's variables, plus
// them for this rank (master 127.0.0.1:port).
common::ChildSpec rank_child(const std::vector<std::string>& argv, int rank, int world_size,
                             int port) {
  common::ChildSpec spec;
  spec.argv = argv;
  const std::array<std::string, 6> values = {std::to_string(rank), std::to_string(world_size),
                                             std::to_string(rank), std::to_string(world_size),
                                             "127.0.0.1",          std::to_string(port)};
  for (size_t v = 0; v < kOurVariables.size(); ++v) {
    spec.unset.emplace_back(kOurVariables[v]);
    spec.set.emplace_back(kOurVariables[v], values[v]);
  }
  spec.exec_failure = "mpsim: cannot execute " + argv[0] + ": ";
  spec.die_with_parent = true;
  return spec;
}

void signal_all(const std::vector<pid_t>& pids, const std::vector<bool>& done, int sig) {
  for (size_t r = 0; r < pids.size(); ++r) {
    if (!done[r] && pids[r] > 0) ::kill(pids[r], sig);
  }
}

constexpr milliseconds kReapPause(10);

// Forks every rank with SIGINT and SIGTERM blocked: each child resets the forwarding handler to
// the default action before unblocking them, so one sent in between ends the child instead of
// being lost (common/process/child_process.h). When a fork fails, the ranks started are killed
// and reaped and std::runtime_error names the rank.
std::vector<pid_t> start_ranks(const std::vector<std::unique_ptr<common::ChildCommand>>& children) {
  const int world_size = static_cast<int>(children.size());
  std::vector<pid_t> pids(world_size, -1);
  sigset_t forwarded, previous_mask;
  sigemptyset(&forwarded);
  sigaddset(&forwarded, SIGINT);
  sigaddset(&forwarded, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &forwarded, &previous_mask);
  for (int r = 0; r < world_size; ++r) {
    try {
      pids[r] = common::spawn_child(*children[r], &previous_mask);
    } catch (const std::runtime_error& e) {
      ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
      signal_all(pids, std::vector<bool>(world_size, false), SIGKILL);
      for (int k = 0; k < r; ++k) ::waitpid(pids[k], nullptr, 0);
      throw std::runtime_error("cannot start rank " + std::to_string(r) + ": " + e.what());
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  return pids;
}

// Waits for every rank, passing on the signals received; after the first failure, stops the
// others (SIGTERM, then SIGKILL after `grace`). Returns the first failing rank's status, else 0.
int reap_ranks(const std::vector<pid_t>& pids, std::ostream& err, milliseconds grace) {
  const int world_size = static_cast<int>(pids.size());
  std::vector<bool> done(world_size, false);
  int live = world_size;
  int first_status = 0;
  bool stopping = false, killed = false;
  Clock::time_point kill_at{};
  while (live > 0) {
    if (const int sig = g_pending_signal.exchange(0); sig != 0) signal_all(pids, done, sig);
    bool reaped = false;
    for (int r = 0; r < world_size; ++r) {
      if (done[r]) continue;
      int status = 0;
      const pid_t w = ::waitpid(pids[r], &status, WNOHANG);
      if (w == 0 || (w < 0 && errno == EINTR)) continue;
      done[r] = true;
      --live;
      reaped = true;
      int code = 0;
      std::string why;
      if (w < 0) {
        code = 1;
        why = "was lost (waitpid: " + std::string(std::strerror(errno)) + ")";
      } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        code = WEXITSTATUS(status);
        why = "exited with status " + std::to_string(code);
      } else if (WIFSIGNALED(status)) {
        code = 1;
        why = "killed by signal " + common::signal_name(WTERMSIG(status));
      }
      if (code == 0 || stopping) continue;  // exits after our SIGTERM are our doing
      first_status = code;
      stopping = true;
      kill_at = Clock::now() + grace;
      err << "rank " << r << " " << why;
      if (live > 0) err << "; stopping the other " << live << " rank" << (live == 1 ? "" : "s");
      err << "\n";
      err.flush();
      signal_all(pids, done, SIGTERM);
    }
    if (stopping && !killed && live > 0 && Clock::now() >= kill_at) {
      for (int r = 0; r < world_size; ++r) {
        if (done[r]) continue;
        err << "rank " << r << " did not stop within " << grace.count()
            << " ms of SIGTERM; sending SIGKILL\n";
      }
      err.flush();
      signal_all(pids, done, SIGKILL);
      killed = true;
    }
    if (!reaped && live > 0) std::this_thread::sleep_for(kReapPause);
  }
  return first_status;
}

}  // namespace

int launch_local_ranks(int world_size, const std::vector<std::string>& argv, std::ostream& err,
                       std::chrono::milliseconds grace) {
  if (world_size < 1) {
    throw std::invalid_argument("launch_local_ranks: world size " + std::to_string(world_size) +
                                " is not positive");
  }
  if (argv.empty()) throw std::invalid_argument("launch_local_ranks: no program to run");
  const int port = find_free_port();
  // Everything the children need is built before forking: between fork and exec the child may
  // only make async-signal-safe calls.
  std::vector<std::unique_ptr<common::ChildCommand>> children;
  for (int r = 0; r < world_size; ++r)
    children.push_back(
        std::make_unique<common::ChildCommand>(rank_child(argv, r, world_size, port)));

  SignalForwarding forwarding;
  std::cout.flush();
  err.flush();
  std::fflush(nullptr);
  const std::vector<pid_t> pids = start_ranks(children);
  return reap_ranks(pids, err, grace);
}

}  // namespace mpsim::executor
