#include "simulator/engine/engine.h"

#include <algorithm>
#include <queue>
#include <stdexcept>

#include "simulator/graph/op_name.h"

namespace mpsim::engine {
namespace {

using graph::OpGraph;
using graph::OpVertex;

// An op ending, or (release) a delayed edge letting its target go.
struct Event {
  double time;
  int64_t sequence;
  OpVertex vertex;
  bool release = false;
  bool operator>(const Event& other) const {
    return time != other.time ? time > other.time : sequence > other.sequence;
  }
};

// A stream: its ops in program order and the index of the next one to run.
struct StreamQueue {
  std::vector<OpVertex> ops;
  size_t head = 0;
  bool busy = false;
};

struct Collective {
  int32_t members = 0;
  std::vector<OpVertex> arrived;
};

class Engine {
 public:
  explicit Engine(const graph::TrainingGraph& g) : g_(g.graph) {
    const size_t n = boost::num_vertices(g_);
    result_.start_s.assign(n, 0);
    result_.end_s.assign(n, 0);
    result_.peak_bytes.assign(g.ranks.size(), 0);
    result_.final_bytes.assign(g.ranks.size(), 0);
    pending_deps_.resize(n);
    streams_.resize(g.ranks.size() * graph::kNumStreams);
    collectives_.resize(g.num_collectives);
    // What the event loop reads of each op, copied into one compact array (Ops are large).
    hot_.resize(n);
    std::vector<size_t> per_stream(streams_.size(), 0);
    for (OpVertex v = 0; v < n; ++v) {
      const graph::Op& op = g_[v];
      Hot& h = hot_[v];
      h.stream =
          static_cast<uint32_t>(op.rank) * graph::kNumStreams + static_cast<uint32_t>(op.stream);
      h.rank = op.rank;
      h.collective = op.collective;
      h.duration = op.duration_s;
      h.alloc = op.alloc_bytes;
      h.free = op.free_bytes;
      // Communication kernels share the SMs; host copies run on copy engines and do not.
      h.communication = op.stream != graph::Stream::kCompute && graph::is_communication(op.kind);
      // Only the compute stream's ops slow down beside communication (at most one per rank).
      h.interference = h.communication ? 0.0F : static_cast<float>(op.comm_interference);
      if (h.interference > 0) interference_ = true;
      pending_deps_[v] = static_cast<int32_t>(boost::in_degree(v, g_));
      ++per_stream[h.stream];
      if (op.collective >= 0) ++collectives_[op.collective].members;
    }
    for (size_t s = 0; s < streams_.size(); ++s) streams_[s].ops.reserve(per_stream[s]);
    for (OpVertex v = 0; v < n; ++v) streams_[hot_[v].stream].ops.push_back(v);
    if (interference_) {
      comm_running_.assign(g.ranks.size(), 0);
      slowed_.assign(g.ranks.size(), Slowed{});
    }
  }

  EngineResult run() {
    for (size_t s = 0; s < streams_.size(); ++s) try_start(s, 0.0);
    while (!events_.empty()) {
      const Event event = events_.top();
      events_.pop();
      if (event.release) {
        release(event.vertex, event.time);
      } else if (interference_ && stale(event)) {
        continue;
      } else {
        finish(event.vertex, event.time);
      }
    }
    check_all_ran();
    return std::move(result_);
  }

 private:
  struct Hot {
    uint32_t stream;
    int32_t rank;
    int32_t collective;
    float interference;  // Op::comm_interference, compute-stream ops only
    bool communication;  // runs on a communication stream
    double duration, alloc, free;
  };

  // A rank's compute op that slows down beside communication, while it runs: `left` seconds of
  // its work (as timed alone) remained at `since`; `sequence` names its one valid end event.
  static constexpr OpVertex kNoVertex = static_cast<OpVertex>(-1);
  struct Slowed {
    OpVertex vertex = kNoVertex;
    double since = 0, left = 0;
    double pace = 1;  // wall seconds per second of its work since `since`
    int64_t sequence = -1;
  };

  size_t stream_of(OpVertex v) const { return hot_[v].stream; }

  void start(OpVertex v, double now) {
    const Hot& op = hot_[v];
    if (op.alloc != 0) {
      double& level = result_.final_bytes[op.rank];
      level += op.alloc;
      if (level > result_.peak_bytes[op.rank]) result_.peak_bytes[op.rank] = level;
    }
    result_.start_s[v] = now;
    ++result_.events;
    if (interference_) {
      if (op.communication) {
        if (comm_running_[op.rank]++ == 0) retime(op.rank, now);
      } else if (op.interference > 0) {
        slowed_[op.rank] = {v, now, op.duration, 1.0, -1};
        retime(op.rank, now);
        return;
      }
    }
    const double end = now + op.duration;
    result_.end_s[v] = end;
    events_.push({end, sequence_++, v, false});
  }

  // The stretch of rank r's slowed op while communication runs on the rank.
  double stretch(int32_t r) const {
    return comm_running_[r] > 0 ? 1.0 + hot_[slowed_[r].vertex].interference : 1.0;
  }

  // Communication on rank r started or stopped at `now` (or its slowed op just started): the
  // op's work done since `since` is counted at the pace it ran and its end re-planned at the new.
  void retime(int32_t r, double now) {
    Slowed& op = slowed_[r];
    if (op.vertex == kNoVertex) return;
    op.left = std::max(0.0, op.left - (now - op.since) / op.pace);
    op.since = now;
    op.pace = stretch(r);
    op.sequence = sequence_++;
    const double end = now + op.left * op.pace;
    result_.end_s[op.vertex] = end;
    events_.push({end, op.sequence, op.vertex, false});
  }

  // An end event of a slowed op that a later retime replaced.
  bool stale(const Event& event) const {
    const Hot& op = hot_[event.vertex];
    if (op.interference <= 0) return false;
    const Slowed& slowed = slowed_[op.rank];
    return slowed.vertex != event.vertex || slowed.sequence != event.sequence;
  }

  // Starts the head op of stream s if the stream is idle and the op is ready.
  void try_start(size_t s, double now) {
    StreamQueue& stream = streams_[s];
    if (stream.busy || stream.head >= stream.ops.size()) return;
    const OpVertex v = stream.ops[stream.head];
    if (pending_deps_[v] > 0) return;
    stream.busy = true;
    const int32_t id = hot_[v].collective;
    if (id < 0) {
      start(v, now);
      return;
    }
    Collective& collective = collectives_[id];
    collective.arrived.push_back(v);
    if (static_cast<int32_t>(collective.arrived.size()) < collective.members) return;
    for (OpVertex member : collective.arrived) start(member, now);
    collective.arrived.clear();
    collective.arrived.shrink_to_fit();
  }

  void finish(OpVertex v, double now) {
    ++result_.events;
    const Hot& op = hot_[v];
    result_.final_bytes[op.rank] -= op.free;
    if (interference_) {
      if (op.communication) {
        if (--comm_running_[op.rank] == 0) retime(op.rank, now);
      } else if (op.interference > 0) {
        slowed_[op.rank] = Slowed{};
      }
    }
    if (now > result_.makespan_s) result_.makespan_s = now;
    const size_t s = stream_of(v);
    streams_[s].busy = false;
    ++streams_[s].head;
    for (auto [e, end] = boost::out_edges(v, g_); e != end; ++e) {
      const OpVertex target = boost::target(*e, g_);
      const double delay = g_[*e].seconds;
      if (delay > 0) {
        events_.push({now + delay, sequence_++, target, true});
        ++result_.events;
      } else {
        release(target, now);
      }
    }
    try_start(s, now);
  }

  void release(OpVertex target, double now) {
    if (--pending_deps_[target] == 0) try_start(stream_of(target), now);
  }

  void check_all_ran() const {
    for (const StreamQueue& stream : streams_) {
      if (stream.head < stream.ops.size()) {
        const graph::Op& op = g_[stream.ops[stream.head]];
        throw std::logic_error("simulation deadlock: op '" + graph::op_name(op) + "' on rank " +
                               std::to_string(op.rank) + " never started");
      }
    }
  }

  const OpGraph& g_;
  EngineResult result_;
  std::vector<int32_t> pending_deps_;
  std::vector<Hot> hot_;
  std::vector<StreamQueue> streams_;
  std::vector<Collective> collectives_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  int64_t sequence_ = 0;
  // Interference (only tracked when some op has Op::comm_interference > 0): per rank, the
  // communication ops running and the compute op slowed by them.
  bool interference_ = false;
  std::vector<int32_t> comm_running_;
  std::vector<Slowed> slowed_;
};

}  // namespace

EngineResult run_engine(const graph::TrainingGraph& graph) { return Engine(graph).run(); }

}  // namespace mpsim::engine
