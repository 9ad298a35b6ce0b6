// executor/core/rendezvous.cpp (through launch.h): the TCP rendezvous with ranks as threads.
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

}  // namespace
}  // namespace mpsim::executor
