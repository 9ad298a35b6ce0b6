// Starting other programs: one place for fork and exec, for waiting on one child, for exit
// statuses and for quoting a command line in messages and provenance. `mpsim calibrate` runs the
// calibration bench under the profiler, `mpsim validate` the executor, `mpsim profile` the
// profiled command, and the executor's local launcher one process per rank (executor/core).
//
// A child is prepared (ChildCommand: argv, environment, stdout, what to print when exec fails)
// before fork, because between fork and exec the child may only make async-signal-safe calls;
// spawn_child() forks it. run_child() spawns one child and waits for it.
//
// Failure: ChildCommand's constructor throws std::runtime_error when its stdout file cannot be
// created; spawn_child() and run_child() throw std::runtime_error "fork failed: <why>" when fork
// fails. A program that cannot be executed is not an exception: the child prints the command's
// exec-failure message and the reason to stderr and exits with ChildCommand::exec_failure_status.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace mpsim::common {

// The words as a shell would need them (words with spaces or quotes single-quoted).
std::string command_line(const std::vector<std::string>& words);

// "SIGSEGV" for SIGSEGV, ..., "signal N" for a signal without a name here.
std::string signal_name(int sig);

// How a program is started.
struct ChildSpec {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in PATH (search_path)
  std::string program;            // the file to execute when it is not argv[0] ("/proc/self/exe")
  bool search_path = false;       // execvp-style lookup of the program in PATH
  // The child's environment: this process's, minus the variables named in `unset`, plus `set`
  // (in order).
  std::vector<std::string> unset;
  std::vector<std::pair<std::string, std::string>> set;
  std::string stdout_path;        // empty: stdout is inherited; else created (truncated) for it
  std::string exec_failure;       // printed to stderr before the reason when exec fails
  int exec_failure_status = 127;  // the child's exit status when exec fails ...
  bool shell_statuses = false;    // ... or the shell's: 127 program not found, 126 otherwise
  bool die_with_parent = false;   // Linux: SIGTERM when the parent dies; exit if it already has
};

// A ChildSpec turned into what exec needs, built before fork.
class ChildCommand {
 public:
  explicit ChildCommand(const ChildSpec& spec);
  ~ChildCommand();
  ChildCommand(const ChildCommand&) = delete;
  ChildCommand& operator=(const ChildCommand&) = delete;

  const ChildSpec& spec() const { return spec_; }

 private:
  friend pid_t spawn_child(const ChildCommand&, const sigset_t*);
  ChildSpec spec_;
  std::vector<std::string> argv_words_, env_words_;
  std::vector<char*> argv_, envp_;
  int stdout_fd_ = -1;
};

// Forks and execs `command`; returns the child's pid in the parent. When `mask_to_restore` is
// given (the caller blocked signals around the fork), the child resets the caught handlers of
// SIGINT and SIGTERM to their default and restores that mask before exec, so a signal sent in
// between ends the child instead of being lost.
pid_t spawn_child(const ChildCommand& command, const sigset_t* mask_to_restore = nullptr);

// The exit status of a child as a shell reports it: its exit code, 128 + the signal that killed
// it, 1 otherwise.
int exit_status(int wait_status);

// Spawns `spec` and waits for it; returns exit_status(). While it waits, SIGINT (and SIGTERM with
// `ignore_sigterm`) is ignored by this process: the child, in the same process group, receives a
// terminal's Ctrl-C and ends, and this process goes on after it.
int run_child(const ChildSpec& spec, bool ignore_sigterm = false);

}  // namespace mpsim::common
