// Starting other programs; see child_process.h.
#include "common/process/child_process.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

extern char** environ;

namespace mpsim::common {

std::string command_line(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) {
    const bool plain = !w.empty() && w.find_first_of(" \t\n'\"\\$`*?") == std::string::npos;
    std::string quoted = "'";
    for (char c : w) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    text += (text.empty() ? "" : " ") + (plain ? w : quoted + "'");
  }
  return text;
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGILL:
      return "SIGILL";
    case SIGTRAP:
      return "SIGTRAP";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGKILL:
      return "SIGKILL";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGALRM:
      return "SIGALRM";
    case SIGTERM:
      return "SIGTERM";
    case SIGXCPU:
      return "SIGXCPU";
    case SIGXFSZ:
      return "SIGXFSZ";
    default:
      return "signal " + std::to_string(sig);
  }
}

namespace {

// The variable's name of an environment entry "NAME=value".
std::string_view name_of(std::string_view entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

ChildCommand::ChildCommand(const ChildSpec& spec) : spec_(spec), argv_words_(spec.argv) {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view name = name_of(*e);
    auto named = [&](const std::string& n) { return n == name; };
    const bool replaced = std::any_of(spec.set.begin(), spec.set.end(),
                                      [&](const auto& kv) { return named(kv.first); });
    if (!replaced && std::none_of(spec.unset.begin(), spec.unset.end(), named))
      env_words_.emplace_back(*e);
  }
  for (const auto& [name, value] : spec.set) env_words_.push_back(name + "=" + value);
  for (std::string& w : argv_words_) argv_.push_back(w.data());
  argv_.push_back(nullptr);
  for (std::string& w : env_words_) envp_.push_back(w.data());
  envp_.push_back(nullptr);
  if (!spec.stdout_path.empty()) {
    stdout_fd_ = ::open(spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (stdout_fd_ < 0)
      throw std::runtime_error("cannot create " + spec.stdout_path + ": " + std::strerror(errno));
  }
}

ChildCommand::~ChildCommand() {
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

pid_t spawn_child(const ChildCommand& command, const sigset_t* mask_to_restore) {
  const ChildSpec& spec = command.spec_;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid > 0) return pid;
  // The child, between fork and exec: only async-signal-safe calls.
  if (mask_to_restore != nullptr) {
    for (const int sig : {SIGINT, SIGTERM}) {
      struct sigaction current {};
      ::sigaction(sig, nullptr, &current);
      if (current.sa_handler != SIG_IGN && current.sa_handler != SIG_DFL) {
        struct sigaction fallback {};
        fallback.sa_handler = SIG_DFL;
        sigemptyset(&fallback.sa_mask);
        ::sigaction(sig, &fallback, nullptr);
      }
    }
    ::pthread_sigmask(SIG_SETMASK, mask_to_restore, nullptr);
  }
#ifdef __linux__
  if (spec.die_with_parent) {
    // A child outliving a killed parent would hold its GPU; take it down with the parent.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
  }
#endif
  if (command.stdout_fd_ >= 0) ::dup2(command.stdout_fd_, STDOUT_FILENO);
  const char* program = spec.program.empty() ? command.argv_[0] : spec.program.c_str();
  if (spec.search_path)
    ::execvpe(program, command.argv_.data(), command.envp_.data());
  else
    ::execve(program, command.argv_.data(), command.envp_.data());
  const int error = errno;
  const char* reason = std::strerror(error);
  [[maybe_unused]] ssize_t ignored =
      ::write(STDERR_FILENO, spec.exec_failure.data(), spec.exec_failure.size());
  ignored = ::write(STDERR_FILENO, reason, std::strlen(reason));
  ignored = ::write(STDERR_FILENO, "\n", 1);
  if (spec.shell_statuses) ::_exit(error == ENOENT ? 127 : 126);
  ::_exit(spec.exec_failure_status);
}

int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  return WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status) : 1;
}

int run_child(const ChildSpec& spec, bool ignore_sigterm) {
  const ChildCommand command(spec);
  const pid_t pid = spawn_child(command);
  // Ctrl-C reaches the child (same process group); we wait for it to end.
  struct sigaction ignore {
  }, old_int{}, old_term{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  if (ignore_sigterm) sigaction(SIGTERM, &ignore, &old_term);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  if (ignore_sigterm) sigaction(SIGTERM, &old_term, nullptr);
  return exit_status(status);
}

}  // namespace mpsim::common
