// This process's place in a launch, from its environment (our launcher's MPSIM_* variables or a
// Slurm step's), and Slurm's hostlist and tasks-per-node syntax; see launch.h.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "executor/core/launch.h"

extern char** environ;

namespace mpsim::executor {
namespace {

using Env = std::map<std::string, std::string>;

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

}  // namespace

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

}  // namespace mpsim::executor
