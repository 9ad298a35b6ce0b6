// The rendezvous of the ranks over TCP, and a free local port; see launch.h.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

#include "executor/core/launch.h"

namespace mpsim::executor {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

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

// Rank 0's side: accepts connections until every other rank has said hello, then sends each the
// payload.
class PayloadServer {
 public:
  PayloadServer(const LaunchEnv& env, milliseconds timeout)
      : env_(env),
        timeout_(timeout),
        deadline_(Clock::now() + timeout),
        where_("port " + std::to_string(env.master_port)),
        listener_(listen_on(env.master_port, std::min(env.world_size, 4096), env.rank)),
        peer_of_rank_(env.world_size, -1),
        was_seen_(env.world_size, false) {}

  std::vector<uint8_t> serve(const std::vector<uint8_t>& payload) {
    while (identified_ < env_.world_size - 1) {
      if (Clock::now() >= deadline_) throw std::runtime_error(timeout_message());
      std::vector<pollfd> fds;
      fds.push_back({listener_.get(), POLLIN, 0});
      for (const Peer& p : peers_) fds.push_back({p.socket.get(), POLLIN, 0});
      const int n = ::poll(fds.data(), fds.size(), remaining_ms(deadline_));
      if (n < 0 && errno != EINTR)
        throw std::runtime_error("rendezvous: poll failed: " + errno_text(errno));
      if (n <= 0) continue;
      // Reads first (indices match fds), from the back so drop() keeps earlier indices valid.
      for (size_t i = peers_.size(); i-- > 0;) {
        if (fds[i + 1].revents != 0) read_from(i);
      }
      if (fds[0].revents != 0) accept_pending();
    }
    send_reply(payload);
    return payload;
  }

 private:
  struct Peer {
    Socket socket;
    std::array<uint8_t, kHelloBytes> hello{};
    size_t got = 0;
    int rank = -1;  // -1 until the hello has arrived
  };

  std::string timeout_message() const {
    std::vector<int> never, left;
    for (int r = 1; r < env_.world_size; ++r) {
      if (peer_of_rank_[r] < 0) (was_seen_[r] ? left : never).push_back(r);
    }
    std::string message = "rendezvous: rank 0 waited " + std::to_string(timeout_.count()) +
                          " ms on " + where_ + " for " + std::to_string(env_.world_size - 1) +
                          " other rank" + (env_.world_size == 2 ? "" : "s");
    if (!never.empty()) {
      message +=
          "; " + std::to_string(never.size()) + " never connected (ranks " + rank_list(never) + ")";
    }
    if (!left.empty()) {
      message += "; " + std::to_string(left.size()) +
                 " connected but closed the connection (ranks " + rank_list(left) + ")";
    }
    return message;
  }

  void drop(size_t i) {
    if (peers_[i].rank >= 0) {
      peer_of_rank_[peers_[i].rank] = -1;
      --identified_;
    }
    peers_.erase(peers_.begin() + static_cast<std::ptrdiff_t>(i));
    for (int& p : peer_of_rank_) {
      if (p > static_cast<int>(i)) --p;
    }
  }

  // Reads what peer i sent: the rest of its hello, or (after it) bytes that are ignored.
  void read_from(size_t i) {
    Peer& p = peers_[i];
    std::array<uint8_t, kHelloBytes> scratch{};
    uint8_t* into = p.rank < 0 ? p.hello.data() + p.got : scratch.data();
    const size_t room = p.rank < 0 ? kHelloBytes - p.got : scratch.size();
    const ssize_t got = ::recv(p.socket.get(), into, room, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got <= 0) {  // closed or reset: a rank that left counts as not connected
      drop(i);
      return;
    }
    if (p.rank >= 0) return;  // nothing more is expected; ignore
    p.got += static_cast<size_t>(got);
    if (p.got < kHelloBytes) return;
    if (get_u32(p.hello.data()) != kMagic || get_u32(p.hello.data() + 4) != kProtocolVersion) {
      drop(i);  // not one of ours (a port scan, another program): ignore it
      return;
    }
    identify(i, get_u32(p.hello.data() + 8), get_u32(p.hello.data() + 12));
  }

  // Peer i said it is `rank` of a world of `world`: throws unless that fits this run.
  void identify(size_t i, uint32_t rank, uint32_t world) {
    if (world != static_cast<uint32_t>(env_.world_size)) {
      throw std::runtime_error("rendezvous: rank 0 on " + where_ + " (world size " +
                               std::to_string(env_.world_size) + ") was reached by rank " +
                               std::to_string(rank) + " of a world of " + std::to_string(world) +
                               "; expected every rank to run with the same number of GPUs");
    }
    if (rank == 0 || rank >= world) {
      throw std::runtime_error("rendezvous: rank 0 on " + where_ + " was reached by rank " +
                               std::to_string(rank) + "; expected ranks 1 .. " +
                               std::to_string(env_.world_size - 1));
    }
    if (peer_of_rank_[rank] >= 0) {
      throw std::runtime_error("rendezvous: rank 0 on " + where_ + " was reached twice by rank " +
                               std::to_string(rank) + "; expected each rank once");
    }
    peers_[i].rank = static_cast<int>(rank);
    peer_of_rank_[rank] = static_cast<int>(i);
    was_seen_[rank] = true;
    ++identified_;
  }

  void accept_pending() {
    while (true) {
      const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;  // EAGAIN: no more pending; errors of one connection are its own
      peers_.push_back(Peer{Socket(fd)});
    }
  }

  void send_reply(const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> reply(kReplyHeaderBytes + payload.size());
    put_u32(reply.data(), kMagic);
    put_u32(reply.data() + 4, static_cast<uint32_t>(payload.size()));
    std::copy(payload.begin(), payload.end(), reply.begin() + kReplyHeaderBytes);
    for (Peer& p : peers_) {
      if (p.rank < 0) continue;
      send_all(p.socket.get(), reply.data(), reply.size(), deadline_,
               "rendezvous: rank 0 sending the payload to rank " + std::to_string(p.rank));
      ::shutdown(p.socket.get(), SHUT_WR);
    }
  }

  const LaunchEnv& env_;
  const milliseconds timeout_;
  const Clock::time_point deadline_;
  const std::string where_;
  Socket listener_;
  std::vector<Peer> peers_;
  std::vector<int> peer_of_rank_;  // index into peers_
  std::vector<bool> was_seen_;     // said hello at some point
  int identified_ = 0;
};

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

}  // namespace

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
  if (env.rank == 0) return PayloadServer(env, timeout).serve(payload);
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

}  // namespace mpsim::executor
