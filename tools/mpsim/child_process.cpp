// See child_process.h.
#include "tools/mpsim/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace mpsim::cli {

// The words as a shell would need them (words with spaces or quotes single-quoted).
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

// Runs `argv` with its stdout sent to `stdout_path`; returns its exit status (128 + signal).
int run_with_stdout(const std::vector<std::string>& argv, const std::string& stdout_path) {
  const int fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot create " + stdout_path + ": " + std::strerror(errno));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    ::close(fd);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    std::vector<char*> words;
    for (const std::string& w : argv) words.push_back(const_cast<char*>(w.c_str()));
    words.push_back(nullptr);
    execv(words[0], words.data());
    dprintf(STDERR_FILENO, "mpsim calibrate: cannot run '%s': %s\n", words[0],
            std::strerror(errno));
    _exit(127);
  }
  ::close(fd);
  // Ctrl-C reaches the child (same process group); we wait for it to end.
  struct sigaction ignore {
  }, old_int{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

}  // namespace mpsim::cli
