// Closed-form collective times (collective_cost.h). The ring formulas read the steps and shares
// of collective_traits.h; tree and hierarchical algorithms are composed here.
#include "simulator/cost/collective_cost.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "simulator/cost/collective_traits.h"

namespace mpsim::cost {
namespace {

// ceil(log2 n) for n >= 1: the depth of a binary tree over n ranks.
int ceil_log2(int n) {
  int depth = 0;
  while ((int64_t{1} << depth) < n) ++depth;
  return depth;
}

void check_collective(graph::OpKind kind, double bytes, int group_size, int group_nodes) {
  if (!graph::is_communication(kind)) {
    throw std::invalid_argument("collective_seconds: " + std::string(graph::to_string(kind)) +
                                " is not a communication op");
  }
  if (!(bytes >= 0)) {
    throw std::invalid_argument("collective bytes must be >= 0, got " + std::to_string(bytes));
  }
  if (group_size < 1 || group_nodes < 1 || group_nodes > group_size) {
    throw std::invalid_argument("collective group of " + std::to_string(group_size) +
                                " ranks cannot span " + std::to_string(group_nodes) + " nodes");
  }
}

bool hierarchical_applies(int group_size, int group_nodes) {
  return group_nodes > 1 && group_size % group_nodes == 0;
}

// A ring of `kind` over n ranks: share(n)·S/B + steps(n)·α (collective_traits.h).
double ring_seconds(graph::OpKind kind, double bytes, int n, Link link) {
  const CollectiveTraits& ring = collective_traits(kind);
  return ring.share(n) * bytes / link.bytes_per_s + ring.steps(n) * link.latency_s;
}

}  // namespace

Link nvlink(const spec::Hardware& hardware) {
  return {hardware.nvlink_bytes_per_s, hardware.nvlink_latency_s};
}

Link network(const spec::Hardware& hardware) {
  return {hardware.network_bytes_per_s, hardware.network_latency_s};
}

Link flat_link(const spec::Hardware& hardware, int group_nodes) {
  return group_nodes <= 1 ? nvlink(hardware) : network(hardware);
}

double ring_all_reduce_seconds(double bytes, int n, Link link) {
  if (n <= 1) return 0;
  return ring_seconds(graph::OpKind::kAllReduce, bytes, n, link);
}

double ring_all_gather_seconds(double bytes, int n, Link link) {
  if (n <= 1) return 0;
  return ring_seconds(graph::OpKind::kAllGather, bytes, n, link);
}

double ring_reduce_scatter_seconds(double bytes, int n, Link link) {
  // Same traffic as the all-gather, run backwards (with a reduction at each step).
  if (n <= 1) return 0;
  return ring_seconds(graph::OpKind::kReduceScatter, bytes, n, link);
}

double tree_all_reduce_seconds(double bytes, int n, Link link) {
  if (n <= 1) return 0;
  return 2 * bytes / link.bytes_per_s + 2.0 * ceil_log2(n) * link.latency_s;
}

double hierarchical_all_reduce_seconds(double bytes, int nodes, int gpus_per_node, Link intra,
                                       Link inter) {
  return ring_reduce_scatter_seconds(bytes, gpus_per_node, intra) +
         ring_all_reduce_seconds(bytes / gpus_per_node, nodes, inter) +
         ring_all_gather_seconds(bytes, gpus_per_node, intra);
}

double hierarchical_all_gather_seconds(double bytes, int nodes, int gpus_per_node, Link intra,
                                       Link inter) {
  return ring_all_gather_seconds(bytes / gpus_per_node, nodes, inter) +
         ring_all_gather_seconds(bytes, gpus_per_node, intra);
}

double send_seconds(double bytes, Link link) {
  return ring_seconds(graph::OpKind::kSend, bytes, 2, link);  // one step, the whole buffer
}

double collective_seconds(graph::OpKind kind, double bytes, int group_size, int group_nodes,
                          const spec::Hardware& hardware, CollectiveAlgorithm algorithm) {
  check_collective(kind, bytes, group_size, group_nodes);
  if (bytes == 0 || group_size == 1) return 0;

  const Link flat = flat_link(hardware, group_nodes);
  if (kind == graph::OpKind::kSend) return send_seconds(bytes, flat);

  const bool hier_ok = hierarchical_applies(group_size, group_nodes);
  const int per_node = group_size / group_nodes;
  switch (kind) {
    case graph::OpKind::kAllReduce: {
      const Link intra = nvlink(hardware), inter = network(hardware);
      switch (algorithm) {
        case CollectiveAlgorithm::kRing:
          return ring_all_reduce_seconds(bytes, group_size, flat);
        case CollectiveAlgorithm::kTree:
          return tree_all_reduce_seconds(bytes, group_size, flat);
        case CollectiveAlgorithm::kHierarchical:
          return hier_ok
                     ? hierarchical_all_reduce_seconds(bytes, group_nodes, per_node, intra, inter)
                     : ring_all_reduce_seconds(bytes, group_size, flat);
        case CollectiveAlgorithm::kAuto: {
          double best = std::min(ring_all_reduce_seconds(bytes, group_size, flat),
                                 tree_all_reduce_seconds(bytes, group_size, flat));
          if (hier_ok) {
            best = std::min(
                best, hierarchical_all_reduce_seconds(bytes, group_nodes, per_node, intra, inter));
          }
          return best;
        }
      }
      break;
    }
    case graph::OpKind::kAllGather:
    case graph::OpKind::kReduceScatter: {
      // Reduce-scatter costs the same as all-gather in both the ring and hierarchical forms.
      const double ring = ring_all_gather_seconds(bytes, group_size, flat);
      if (!hier_ok || algorithm == CollectiveAlgorithm::kRing ||
          algorithm == CollectiveAlgorithm::kTree) {  // NCCL has no tree for these
        return ring;
      }
      const double hier = hierarchical_all_gather_seconds(bytes, group_nodes, per_node,
                                                          nvlink(hardware), network(hardware));
      return algorithm == CollectiveAlgorithm::kHierarchical ? hier : std::min(ring, hier);
    }
    default:
      break;
  }
  return 0;  // unreachable: check_collective admits communication kinds only
}

double bus_bandwidth_factor(graph::OpKind kind, int n) {
  return collective_traits(kind, "bus_bandwidth_factor").share(n);
}

double bus_bandwidth(graph::OpKind kind, double bytes, double seconds, int n) {
  const double alg_bw = bytes / seconds;
  return alg_bw * bus_bandwidth_factor(kind, n);
}

std::string_view to_string(CollectiveAlgorithm algorithm) {
  switch (algorithm) {
    case CollectiveAlgorithm::kAuto:
      return "auto";
    case CollectiveAlgorithm::kRing:
      return "ring";
    case CollectiveAlgorithm::kTree:
      return "tree";
    case CollectiveAlgorithm::kHierarchical:
      return "hierarchical";
  }
  return "unknown";
}

}  // namespace mpsim::cost
