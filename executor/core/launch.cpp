// Launch environment, Slurm hostlists, the TCP rendezvous and the local launcher; see launch.h.
#include "executor/core/launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace mpsim::executor {
namespace {

using Env = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Environment variables.

// Our launcher's variables, in the order launch_local_ranks() sets them.
constexpr std::array<const char*, 6> kOurVariables = {"MPSIM_RANK",        "MPSIM_WORLD_SIZE",
                                                      "MPSIM_LOCAL_RANK",  "MPSIM_LOCAL_WORLD_SIZE",
                                                      "MPSIM_MASTER_ADDR", "MPSIM_MASTER_PORT"};

// Slurm's step ids for steps that are not `srun` task launches (slurm.h: SLURM_INTERACTIVE_STEP
// 0xfffffffa .. SLURM_EXTERN_CONT 0xfffffffc, SLURM_BATCH_SCRIPT 0xfffffffb); some versions
// print their names instead.
constexpr uint64_t kFirstSpecialStepId = 0xfffffff0;
constexpr std::array<const char*, 4> kSpecialStepNames = {"batch", "extern", "interactive",
                                                          "pending"};

constexpr int kSlurmPortBase = 20000;
constexpr int kSlurmPortRange = 20000;
constexpr int64_t kMaxPort = 65535;
constexpr int64_t kMaxRanks = 1 << 20;

const std::string* lookup(const Env& env, const std::string& name) {
  const auto it = env.find(name);
  return it == env.end() ? nullptr : &it->second;
}

[[noreturn]] void bad_variable(const std::string& name, const std::string& message) {
  throw std::invalid_argument(name + ": " + message);
}

const std::string& required(const Env& env, const std::string& name, const std::string& expected) {
  const std::string* value = lookup(env, name);
  if (value == nullptr) throw std::invalid_argument(name + " is not set; expected " + expected);
  return *value;
}

// A whole-string decimal integer in [min, max].
int64_t to_integer(const std::string& name, const std::string& value, int64_t min, int64_t max,
                   const std::string& expected) {
  int64_t result = 0;
  const char* end = value.data() + value.size();
  const auto [ptr, error] = std::from_chars(value.data(), end, result);
  if (value.empty() || error != std::errc() || ptr != end || result < min || result > max) {
    bad_variable(name, "'" + value + "' is not " + expected);
  }
  return result;
}

int required_int(const Env& env, const std::string& name, int64_t min, int64_t max,
                 const std::string& expected) {
  return static_cast<int>(to_integer(name, required(env, name, expected), min, max, expected));
}

int port_from(const Env& env, const std::string& name) {
  return required_int(env, name, 1, kMaxPort, "a TCP port (1 to 65535)");
}

void check_ranks(const LaunchEnv& e, const std::string& rank_var, const std::string& size_var,
                 const std::string& local_var, const std::string& local_size_var) {
  if (e.rank >= e.world_size) {
    bad_variable(rank_var, "rank " + std::to_string(e.rank) + " is not below " + size_var + " (" +
                               std::to_string(e.world_size) + "); expected 0 .. " +
                               std::to_string(e.world_size - 1));
  }
  if (e.local_rank >= e.local_world_size) {
    bad_variable(local_var, "local rank " + std::to_string(e.local_rank) + " is not below " +
                                local_size_var + " (" + std::to_string(e.local_world_size) +
                                "); expected 0 .. " + std::to_string(e.local_world_size - 1));
  }
  if (e.local_world_size > e.world_size) {
    bad_variable(local_size_var,
                 std::to_string(e.local_world_size) + " ranks on this node exceed " + size_var +
                     " (" + std::to_string(e.world_size) + "); expected at most the world size");
  }
}

LaunchEnv ours_from(const Env& env) {
  const std::string set_by = " (set by mpsim train's launcher with MPSIM_RANK)";
  LaunchEnv e;
  e.rank = required_int(env, "MPSIM_RANK", 0, kMaxRanks, "a rank (an integer from 0)");
  e.world_size = required_int(env, "MPSIM_WORLD_SIZE", 1, kMaxRanks,
                              "the number of ranks (an integer from 1)" + set_by);
  e.local_rank = required_int(env, "MPSIM_LOCAL_RANK", 0, kMaxRanks,
                              "the rank on this node (an integer from 0)" + set_by);
  e.local_world_size =
      required_int(env, "MPSIM_LOCAL_WORLD_SIZE", 1, kMaxRanks,
                   "the number of ranks on this node (an integer from 1)" + set_by);
  e.master_addr = required(env, "MPSIM_MASTER_ADDR", "rank 0's host name or address" + set_by);
  if (e.master_addr.empty()) bad_variable("MPSIM_MASTER_ADDR", "is empty; expected rank 0's host");
  e.master_port = port_from(env, "MPSIM_MASTER_PORT");
  e.slurm = false;
  check_ranks(e, "MPSIM_RANK", "MPSIM_WORLD_SIZE", "MPSIM_LOCAL_RANK", "MPSIM_LOCAL_WORLD_SIZE");
  return e;
}

bool is_special_step(const std::string& step) {
  for (const char* name : kSpecialStepNames) {
    if (step == name) return true;
  }
  uint64_t id = 0;
  const auto [ptr, error] = std::from_chars(step.data(), step.data() + step.size(), id);
  return error == std::errc() && ptr == step.data() + step.size() && id >= kFirstSpecialStepId;
}

// Tasks on this node, from the first tasks-per-node variable that is set.
int slurm_local_world_size(const Env& env) {
  // The step's own layout first: the job's (SLURM_TASKS_PER_NODE) or the requested
  // --ntasks-per-node can differ from what this srun actually started.
  for (const char* name :
       {"SLURM_STEP_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    const std::string* value = lookup(env, name);
    if (value == nullptr) continue;
    std::vector<int> counts;
    try {
      counts = expand_tasks_per_node(*value);
    } catch (const std::invalid_argument& e) {
      bad_variable(name, e.what());
    }
    if (std::all_of(counts.begin(), counts.end(), [&](int c) { return c == counts.front(); })) {
      return counts.front();
    }
    const int node = required_int(env, "SLURM_NODEID", 0, kMaxRanks,
                                  "this node's index in the step (an integer from 0), needed "
                                  "because " +
                                      std::string(name) + " differs between nodes");
    if (node >= static_cast<int>(counts.size())) {
      bad_variable("SLURM_NODEID", "node " + std::to_string(node) + " is beyond the " +
                                       std::to_string(counts.size()) + " nodes of " + name + " ('" +
                                       *value + "')");
    }
    return counts[node];
  }
  throw std::invalid_argument(
      "SLURM_STEP_TASKS_PER_NODE is not set (nor SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE); "
      "expected the tasks per node of the Slurm step, e.g. 4 or 2(x3),1");
}

std::string slurm_master(const Env& env) {
  for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"}) {
    const std::string* value = lookup(env, name);
    if (value == nullptr) continue;
    try {
      return expand_hostlist(*value).front();
    } catch (const std::invalid_argument& e) {
      bad_variable(name, e.what());
    }
  }
  throw std::invalid_argument(
      "SLURM_STEP_NODELIST is not set (nor SLURM_JOB_NODELIST); expected the step's node list, "
      "e.g. gpu[01-04]");
}

LaunchEnv slurm_from(const Env& env) {
  LaunchEnv e;
  e.rank = required_int(env, "SLURM_PROCID", 0, kMaxRanks, "a task rank (an integer from 0)");
  e.world_size =
      required_int(env, "SLURM_NTASKS", 1, kMaxRanks, "the number of tasks (an integer from 1)");
  e.local_rank = required_int(env, "SLURM_LOCALID", 0, kMaxRanks,
                              "the task's rank on this node (an integer from 0)");
  e.local_world_size = slurm_local_world_size(env);
  e.master_addr = slurm_master(env);
  if (lookup(env, "MPSIM_MASTER_PORT") != nullptr) {
    e.master_port = port_from(env, "MPSIM_MASTER_PORT");
  } else {
    const std::string job_expected = "a Slurm job id (a non-negative integer)";
    const auto job = static_cast<uint64_t>(
        to_integer("SLURM_JOB_ID", required(env, "SLURM_JOB_ID", job_expected), 0,
                   std::numeric_limits<int64_t>::max() / 8, job_expected));
    const auto step = static_cast<uint64_t>(
        to_integer("SLURM_STEP_ID", *lookup(env, "SLURM_STEP_ID"), 0, kFirstSpecialStepId - 1,
                   "a Slurm step id (a non-negative integer)"));
    e.master_port = kSlurmPortBase + static_cast<int>((job * 7 + step) % kSlurmPortRange);
  }
  e.slurm = true;
  check_ranks(e, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "the tasks per node");
  return e;
}

// ---------------------------------------------------------------------------------------------
// Hostlists.

constexpr size_t kMaxHosts = size_t{1} << 20;

// "01-03,07" -> 01 02 03 07.
std::vector<std::string> expand_ranges(std::string_view inner, const auto& fail) {
  std::vector<std::string> out;
  if (inner.empty()) fail("'[]' is empty; expected numbers or ranges like [01-04,07]");
  size_t begin = 0;
  while (begin <= inner.size()) {
    const size_t comma = std::min(inner.find(',', begin), inner.size());
    const std::string_view item = inner.substr(begin, comma - begin);
    const size_t dash = item.find('-');
    const std::string_view lo = item.substr(0, dash);
    const std::string_view hi = dash == std::string_view::npos ? lo : item.substr(dash + 1);
    auto number = [&](std::string_view digits) {
      uint64_t value = 0;
      const auto [ptr, error] =
          std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (digits.empty() || error != std::errc() || ptr != digits.data() + digits.size() ||
          digits.size() > 18) {
        fail("'" + std::string(item) + "' is not a number or a range; expected e.g. 07 or 01-04");
      }
      return value;
    };
    const uint64_t first = number(lo), last = number(hi);
    if (first > last) {
      fail("range '" + std::string(item) + "' runs backwards; expected low-high");
    }
    if (last - first >= kMaxHosts) fail("range '" + std::string(item) + "' is too large");
    for (uint64_t n = first; n <= last; ++n) {
      std::string digits = std::to_string(n);
      if (digits.size() < lo.size()) digits.insert(0, lo.size() - digits.size(), '0');
      out.push_back(std::move(digits));
      if (out.size() > kMaxHosts) fail("expands to more than 2^20 hosts");
    }
    begin = comma + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sockets.

constexpr uint32_t kMagic = 0x4d505352;  // "MPSR"
constexpr uint32_t kProtocolVersion = 1;
constexpr size_t kHelloBytes = 16;       // magic, version, rank, world size (network order)
constexpr size_t kReplyHeaderBytes = 8;  // magic, payload length
constexpr uint32_t kMaxPayload = 1 << 20;
constexpr milliseconds kRetryPause(100);  // between connection attempts while rank 0 is not up
constexpr milliseconds kMaxPollSlice(1000);

class Socket {
 public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string errno_text(int error) { return std::strerror(error); }

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, kMaxPollSlice.count()));
}

void put_u32(uint8_t* out, uint32_t v) {
  v = htonl(v);
  std::memcpy(out, &v, 4);
}
uint32_t get_u32(const uint8_t* in) {
  uint32_t v = 0;
  std::memcpy(&v, in, 4);
  return ntohl(v);
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) throw std::runtime_error("poll failed: " + errno_text(errno));
    if (Clock::now() >= deadline) return false;
  }
}

// Sends all bytes or throws: `what` says what was being sent to whom.
void send_all(int fd, const uint8_t* data, size_t size, Clock::time_point deadline,
              const std::string& what) {
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd, POLLOUT, deadline)) {
        throw std::runtime_error(what + ": timed out after sending " + std::to_string(sent) +
                                 " of " + std::to_string(size) + " bytes");
      }
      continue;
    }
    throw std::runtime_error(what + ": " + errno_text(errno));
  }
}

enum class RecvResult { kDone, kClosed, kTimedOut };

// Reads exactly `size` bytes unless the peer closes or the deadline passes; `got` says how many.
RecvResult recv_all(int fd, uint8_t* data, size_t size, size_t& got, Clock::time_point deadline) {
  got = 0;
  while (got < size) {
    const ssize_t n = ::recv(fd, data + got, size - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return RecvResult::kClosed;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(fd, POLLIN, deadline)) return RecvResult::kTimedOut;
      continue;
    }
    if (errno == ECONNRESET) return RecvResult::kClosed;
    throw std::runtime_error("recv failed: " + errno_text(errno));
  }
  return RecvResult::kDone;
}

void set_flag(int fd, int level, int option, int value) {
  ::setsockopt(fd, level, option, &value, sizeof value);
}

// A non-blocking socket listening on `port` on every interface: dual-stack IPv6 where the host
// has it, else IPv4.
Socket listen_on(int port, int backlog, int rank) {
  const std::string context =
      "rendezvous: rank " + std::to_string(rank) + " cannot listen on port " + std::to_string(port);
  int last_error = 0;
  for (const int family : {AF_INET6, AF_INET}) {
    Socket s(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (s.get() < 0) {
      last_error = errno;
      continue;
    }
    set_flag(s.get(), SOL_SOCKET, SO_REUSEADDR, 1);
    int bound = -1;
    if (family == AF_INET6) {
      set_flag(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      bound = ::bind(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      a.sin_port = htons(static_cast<uint16_t>(port));
      bound = ::bind(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
    }
    if (bound < 0) {
      last_error = errno;
      if (errno == EADDRINUSE) break;  // IPv4 would collide too
      continue;
    }
    if (::listen(s.get(), backlog) < 0) {
      last_error = errno;
      continue;
    }
    return s;
  }
  std::string hint;
  if (last_error == EADDRINUSE) hint = "; set MPSIM_MASTER_PORT to a free port";
  throw std::runtime_error(context + ": " + errno_text(last_error) + hint);
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size() && i < 16; ++i) {
    out += (out.empty() ? "" : ", ") + std::to_string(ranks[i]);
  }
  if (ranks.size() > 16) out += ", ... (" + std::to_string(ranks.size()) + " in all)";
  return out;
}

std::vector<uint8_t> serve_payload(const LaunchEnv& env, const std::vector<uint8_t>& payload,
                                   milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string where = "port " + std::to_string(env.master_port);
  Socket listener = listen_on(env.master_port, std::min(env.world_size, 4096), env.rank);

  struct Peer {
    Socket socket;
    std::array<uint8_t, kHelloBytes> hello{};
    size_t got = 0;
    int rank = -1;  // -1 until the hello has arrived
  };
  std::vector<Peer> peers;
  std::vector<int> peer_of_rank(env.world_size, -1);  // index into peers
  std::vector<bool> was_seen(env.world_size, false);  // said hello at some point
  int identified = 0;

  auto drop = [&](size_t i) {
    if (peers[i].rank >= 0) {
      peer_of_rank[peers[i].rank] = -1;
      --identified;
    }
    peers.erase(peers.begin() + static_cast<std::ptrdiff_t>(i));
    for (int& p : peer_of_rank) {
      if (p > static_cast<int>(i)) --p;
    }
  };

  while (identified < env.world_size - 1) {
    if (Clock::now() >= deadline) {
      std::vector<int> never, left;
      for (int r = 1; r < env.world_size; ++r) {
        if (peer_of_rank[r] < 0) (was_seen[r] ? left : never).push_back(r);
      }
      std::string message = "rendezvous: rank 0 waited " + std::to_string(timeout.count()) +
                            " ms on " + where + " for " + std::to_string(env.world_size - 1) +
                            " other rank" + (env.world_size == 2 ? "" : "s");
      if (!never.empty()) {
        message += "; " + std::to_string(never.size()) + " never connected (ranks " +
                   rank_list(never) + ")";
      }
      if (!left.empty()) {
        message += "; " + std::to_string(left.size()) +
                   " connected but closed the connection (ranks " + rank_list(left) + ")";
      }
      throw std::runtime_error(message);
    }
    std::vector<pollfd> fds;
    fds.push_back({listener.get(), POLLIN, 0});
    for (const Peer& p : peers) fds.push_back({p.socket.get(), POLLIN, 0});
    const int n = ::poll(fds.data(), fds.size(), remaining_ms(deadline));
    if (n < 0 && errno != EINTR)
      throw std::runtime_error("rendezvous: poll failed: " + errno_text(errno));
    if (n <= 0) continue;

    // Reads first (indices match fds), from the back so drop() keeps earlier indices valid.
    for (size_t i = peers.size(); i-- > 0;) {
      if (fds[i + 1].revents == 0) continue;
      Peer& p = peers[i];
      std::array<uint8_t, kHelloBytes> scratch{};
      uint8_t* into = p.rank < 0 ? p.hello.data() + p.got : scratch.data();
      const size_t room = p.rank < 0 ? kHelloBytes - p.got : scratch.size();
      const ssize_t got = ::recv(p.socket.get(), into, room, 0);
      if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (got <= 0) {  // closed or reset: a rank that left counts as not connected
        drop(i);
        continue;
      }
      if (p.rank >= 0) continue;  // nothing more is expected; ignore
      p.got += static_cast<size_t>(got);
      if (p.got < kHelloBytes) continue;
      if (get_u32(p.hello.data()) != kMagic || get_u32(p.hello.data() + 4) != kProtocolVersion) {
        drop(i);  // not one of ours (a port scan, another program): ignore it
        continue;
      }
      const uint32_t rank = get_u32(p.hello.data() + 8);
      const uint32_t world = get_u32(p.hello.data() + 12);
      if (world != static_cast<uint32_t>(env.world_size)) {
        throw std::runtime_error("rendezvous: rank 0 on " + where + " (world size " +
                                 std::to_string(env.world_size) + ") was reached by rank " +
                                 std::to_string(rank) + " of a world of " + std::to_string(world) +
                                 "; expected every rank to run with the same number of GPUs");
      }
      if (rank == 0 || rank >= world) {
        throw std::runtime_error("rendezvous: rank 0 on " + where + " was reached by rank " +
                                 std::to_string(rank) + "; expected ranks 1 .. " +
                                 std::to_string(env.world_size - 1));
      }
      if (peer_of_rank[rank] >= 0) {
        throw std::runtime_error("rendezvous: rank 0 on " + where + " was reached twice by rank " +
                                 std::to_string(rank) + "; expected each rank once");
      }
      p.rank = static_cast<int>(rank);
      peer_of_rank[rank] = static_cast<int>(i);
      was_seen[rank] = true;
      ++identified;
    }
    if (fds[0].revents != 0) {
      while (true) {
        const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN: no more pending; errors of one connection are its own
        peers.push_back(Peer{Socket(fd)});
      }
    }
  }

  std::vector<uint8_t> reply(kReplyHeaderBytes + payload.size());
  put_u32(reply.data(), kMagic);
  put_u32(reply.data() + 4, static_cast<uint32_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), reply.begin() + kReplyHeaderBytes);
  for (Peer& p : peers) {
    if (p.rank < 0) continue;
    send_all(p.socket.get(), reply.data(), reply.size(), deadline,
             "rendezvous: rank 0 sending the payload to rank " + std::to_string(p.rank));
    ::shutdown(p.socket.get(), SHUT_WR);
  }
  return payload;
}

// One attempt to connect to any address of host:port before the deadline; an invalid Socket and
// `error` set when none answered.
Socket try_connect(const std::string& host, int port, Clock::time_point deadline,
                   std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    error = std::string("cannot resolve the host: ") + ::gai_strerror(rc);
    return Socket();
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (s.get() < 0) {
      error = errno_text(errno);
      continue;
    }
    if (::connect(s.get(), a->ai_addr, a->ai_addrlen) == 0) return s;
    if (errno != EINPROGRESS) {
      error = errno_text(errno);
      continue;
    }
    if (!wait_for(s.get(), POLLOUT, deadline)) {
      error = "connection attempt timed out";
      continue;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error == 0) return s;
    error = errno_text(so_error);
  }
  return Socket();
}

std::vector<uint8_t> fetch_payload(const LaunchEnv& env, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::string me = "rendezvous: rank " + std::to_string(env.rank);
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  std::string error = "no attempt finished";
  Socket s;
  while (true) {
    s = try_connect(env.master_addr, env.master_port, deadline, error);
    if (s.get() >= 0) break;
    if (Clock::now() + kRetryPause >= deadline) {
      throw std::runtime_error(me + " waited " + std::to_string(timeout.count()) +
                               " ms for rank 0 at " + where +
                               " and could not connect (last error: " + error + ")");
    }
    std::this_thread::sleep_for(kRetryPause);
  }

  std::array<uint8_t, kHelloBytes> hello{};
  put_u32(hello.data(), kMagic);
  put_u32(hello.data() + 4, kProtocolVersion);
  put_u32(hello.data() + 8, static_cast<uint32_t>(env.rank));
  put_u32(hello.data() + 12, static_cast<uint32_t>(env.world_size));
  send_all(s.get(), hello.data(), hello.size(), deadline,
           me + " saying hello to rank 0 at " + where);

  auto receive = [&](uint8_t* data, size_t size, const char* what) {
    size_t got = 0;
    switch (recv_all(s.get(), data, size, got, deadline)) {
      case RecvResult::kDone:
        return;
      case RecvResult::kTimedOut:
        throw std::runtime_error(me + " waited " + std::to_string(timeout.count()) +
                                 " ms for the " + what + " from rank 0 at " + where +
                                 " (connected; rank 0 answers once all " +
                                 std::to_string(env.world_size) + " ranks have connected)");
      case RecvResult::kClosed:
        throw std::runtime_error(me + " got " + std::to_string(got) + " of " +
                                 std::to_string(size) + " bytes of the " + what +
                                 " before rank 0 at " + where + " closed the connection");
    }
  };
  std::array<uint8_t, kReplyHeaderBytes> header{};
  receive(header.data(), header.size(), "payload header");
  const uint32_t length = get_u32(header.data() + 4);
  if (get_u32(header.data()) != kMagic || length > kMaxPayload) {
    throw std::runtime_error(me + ": " + where +
                             " answered with something that is not an mpsim "
                             "rendezvous reply; expected rank 0 of this run on that port");
  }
  std::vector<uint8_t> payload(length);
  if (length > 0) receive(payload.data(), payload.size(), "payload");
  return payload;
}

// ---------------------------------------------------------------------------------------------
// The local launcher.

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

bool is_our_variable(const char* entry) {
  for (const char* name : kOurVariables) {
    const size_t n = std::strlen(name);
    if (std::strncmp(entry, name, n) == 0 && entry[n] == '=') return true;
  }
  return false;
}

// In the child, between fork and exec: only async-signal-safe calls. SIGINT and SIGTERM arrive
// blocked (see launch_local_ranks); the launcher's handler is replaced by the default action
// before they are unblocked, so one sent in this window ends the child instead of being lost.
[[noreturn]] void exec_child(pid_t parent, char* const* argv, char* const* envp,
                             const sigset_t& mask_to_restore, const std::string& failure_prefix) {
  for (const int sig : {SIGINT, SIGTERM}) {
    struct sigaction current {};
    ::sigaction(sig, nullptr, &current);
    if (current.sa_handler == remember_signal) {
      struct sigaction fallback {};
      fallback.sa_handler = SIG_DFL;
      sigemptyset(&fallback.sa_mask);
      ::sigaction(sig, &fallback, nullptr);
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &mask_to_restore, nullptr);
#ifdef __linux__
  // A child outliving a killed launcher would hold its GPU; take it down with the parent.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(1);
#endif
  ::execve(argv[0], argv, envp);
  const int error = errno;
  const char* reason = std::strerror(error);
  [[maybe_unused]] ssize_t ignored =
      ::write(STDERR_FILENO, failure_prefix.data(), failure_prefix.size());
  ignored = ::write(STDERR_FILENO, reason, std::strlen(reason));
  ignored = ::write(STDERR_FILENO, "\n", 1);
  ::_exit(127);
}

void signal_all(const std::vector<pid_t>& pids, const std::vector<bool>& done, int sig) {
  for (size_t r = 0; r < pids.size(); ++r) {
    if (!done[r] && pids[r] > 0) ::kill(pids[r], sig);
  }
}

constexpr milliseconds kReapPause(10);

}  // namespace

// ---------------------------------------------------------------------------------------------

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

std::optional<LaunchEnv> launch_env_from(const std::map<std::string, std::string>& env) {
  if (lookup(env, "MPSIM_RANK") != nullptr) return ours_from(env);
  const std::string* step = lookup(env, "SLURM_STEP_ID");
  if (lookup(env, "SLURM_PROCID") == nullptr || lookup(env, "SLURM_NTASKS") == nullptr ||
      step == nullptr || is_special_step(*step)) {
    return std::nullopt;
  }
  return slurm_from(env);
}

std::vector<std::string> expand_hostlist(std::string_view text) {
  auto fail = [&](const std::string& what) -> void {
    throw std::invalid_argument("hostlist '" + std::string(text) + "': " + what);
  };
  if (text.empty()) fail("is empty; expected host names like gpu[01-04],login1");
  std::vector<std::string> hosts;
  size_t i = 0;
  while (true) {
    std::vector<std::string> names = {""};  // the current name's expansions so far
    const size_t start = i;
    while (i < text.size() && text[i] != ',') {
      const char c = text[i];
      if (c == '[') {
        const size_t close = text.find(']', i);
        if (close == std::string_view::npos) fail("'[' is not closed; expected name[01-04]");
        const std::string_view inner = text.substr(i + 1, close - i - 1);
        if (inner.find('[') != std::string_view::npos) fail("'[' inside '[...]' is not allowed");
        const std::vector<std::string> values = expand_ranges(inner, fail);
        if (names.size() * values.size() > kMaxHosts) fail("expands to more than 2^20 hosts");
        std::vector<std::string> product;
        product.reserve(names.size() * values.size());
        for (const std::string& prefix : names) {
          for (const std::string& v : values) product.push_back(prefix + v);
        }
        names = std::move(product);
        i = close + 1;
      } else if (c == ']') {
        fail("']' without '['");
      } else if (c <= ' ' || c == 0x7f) {
        fail("contains a space or control character; expected host names separated by ','");
      } else {
        for (std::string& n : names) n += c;
        ++i;
      }
    }
    if (i == start) fail("has an empty host name; expected names separated by single ','");
    hosts.insert(hosts.end(), names.begin(), names.end());
    if (hosts.size() > kMaxHosts) fail("expands to more than 2^20 hosts");
    if (i == text.size()) break;
    ++i;  // the ','
    if (i == text.size()) fail("ends with ','; expected another host name");
  }
  return hosts;
}

std::vector<int> expand_tasks_per_node(std::string_view text) {
  auto fail = [&]() {
    throw std::invalid_argument(
        "'" + std::string(text) +
        "' is not a tasks-per-node list; expected counts like 4 or 2(x3),1");
  };
  auto number = [&](std::string_view digits, int min) {
    int value = 0;
    const auto [ptr, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || error != std::errc() || ptr != digits.data() + digits.size() ||
        value < min || value > kMaxRanks) {
      fail();
    }
    return value;
  };
  std::vector<int> counts;
  if (text.empty()) fail();
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    const std::string_view item = text.substr(begin, comma - begin);
    const size_t paren = item.find("(x");
    int repeat = 1;
    if (paren != std::string_view::npos) {
      if (!item.ends_with(')')) fail();
      repeat = number(item.substr(paren + 2, item.size() - paren - 3), 1);
    }
    const int count = number(item.substr(0, paren), 1);
    if (counts.size() + static_cast<size_t>(repeat) > static_cast<size_t>(kMaxRanks)) fail();
    counts.insert(counts.end(), static_cast<size_t>(repeat), count);
    begin = comma + 1;
  }
  return counts;
}

std::vector<uint8_t> rendezvous(const LaunchEnv& env, const std::vector<uint8_t>& payload,
                                std::chrono::milliseconds timeout) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size) {
    throw std::invalid_argument("rendezvous: rank " + std::to_string(env.rank) +
                                " is outside a world of " + std::to_string(env.world_size));
  }
  if (payload.size() > kMaxPayload) {
    throw std::invalid_argument("rendezvous: payload of " + std::to_string(payload.size()) +
                                " bytes exceeds the 1 MiB limit");
  }
  if (env.world_size == 1) return payload;
  if (env.rank == 0) return serve_payload(env, payload, timeout);
  return fetch_payload(env, timeout);
}

int find_free_port() {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) throw std::runtime_error("cannot open a socket: " + errno_text(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) < 0) {
    throw std::runtime_error("cannot find a free TCP port on 127.0.0.1: " + errno_text(errno));
  }
  return ntohs(a.sin_port);
}

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
  std::vector<std::string> base_env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (!is_our_variable(*e)) base_env.emplace_back(*e);
  }
  std::vector<std::vector<std::string>> rank_env(world_size, base_env);
  std::vector<std::vector<char*>> envp(world_size);
  for (int r = 0; r < world_size; ++r) {
    const std::array<std::string, 6> values = {std::to_string(r), std::to_string(world_size),
                                               std::to_string(r), std::to_string(world_size),
                                               "127.0.0.1",       std::to_string(port)};
    for (size_t v = 0; v < kOurVariables.size(); ++v) {
      rank_env[r].push_back(std::string(kOurVariables[v]) + "=" + values[v]);
    }
    for (std::string& entry : rank_env[r]) envp[r].push_back(entry.data());
    envp[r].push_back(nullptr);
  }
  std::vector<std::string> args = argv;
  std::vector<char*> arg_pointers;
  for (std::string& a : args) arg_pointers.push_back(a.data());
  arg_pointers.push_back(nullptr);
  const std::string failure_prefix = "mpsim: cannot execute " + argv[0] + ": ";

  SignalForwarding forwarding;
  std::vector<pid_t> pids(world_size, -1);
  std::vector<bool> done(world_size, false);
  int live = 0;
  std::cout.flush();
  err.flush();
  std::fflush(nullptr);
  const pid_t parent = ::getpid();

  // SIGINT and SIGTERM stay blocked while forking: see exec_child().
  sigset_t forwarded, previous_mask;
  sigemptyset(&forwarded);
  sigaddset(&forwarded, SIGINT);
  sigaddset(&forwarded, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &forwarded, &previous_mask);
  for (int r = 0; r < world_size; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      exec_child(parent, arg_pointers.data(), envp[r].data(), previous_mask, failure_prefix);
    }
    if (pid < 0) {
      const int error = errno;
      ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
      signal_all(pids, done, SIGKILL);
      for (int k = 0; k < r; ++k) ::waitpid(pids[k], nullptr, 0);
      throw std::runtime_error("cannot start rank " + std::to_string(r) +
                               ": fork failed: " + errno_text(error));
    }
    pids[r] = pid;
    ++live;
  }
  ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);

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
        why = "was lost (waitpid: " + errno_text(errno) + ")";
      } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        code = WEXITSTATUS(status);
        why = "exited with status " + std::to_string(code);
      } else if (WIFSIGNALED(status)) {
        code = 1;
        why = "killed by signal " + signal_name(WTERMSIG(status));
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

}  // namespace mpsim::executor
