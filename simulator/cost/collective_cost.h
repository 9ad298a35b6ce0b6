// Collective communication cost: closed-form times for NCCL-style ring, tree and hierarchical
// algorithms, chosen by group size and span (NVLink inside a node, the network across nodes).
// Pure functions of their arguments: no state, no allocation, cheap enough for every op of a
// simulation.
//
// Symbols used in every formula below:
//   S  buffer bytes as nccl-tests counts them (all-reduce: the buffer reduced; all-gather: the
//      gathered output; reduce-scatter: the input; send: the message),
//   n  ranks in the group, k nodes it spans, g = n / k GPUs per node,
//   B  per-GPU one-direction link bandwidth (bytes/s), α  per-step latency of that link (s),
//      which also absorbs the kernel launch of the communication kernel.
//
// Failure: invalid arguments (negative bytes, a group smaller than 1 or spanning more nodes than
// it has ranks, a compute OpKind) throw std::invalid_argument.
#pragma once

#include <string_view>

#include "simulator/cost/cost_model.h"
#include "simulator/graph/op.h"
#include "simulator/spec/hardware.h"

namespace mpsim::cost {

// One kind of link a collective step crosses.
struct Link {
  double bytes_per_s = 0;  // B: per GPU, one direction
  double latency_s = 0;    // α: per step
};

Link nvlink(const spec::Hardware& hardware);
Link network(const spec::Hardware& hardware);
// The link a flat (ring or tree) algorithm is priced on: NVLink when the whole group sits in one
// node (group_nodes == 1); otherwise the network, since a flat ring spanning nodes moves as many
// bytes per step over the slowest hop as over any other, and that hop is a NIC (one per GPU).
Link flat_link(const spec::Hardware& hardware, int group_nodes);

// The ring formulas below are T = share(n)·S/B + steps(n)·α with the steps and shares of
// collective_traits.h, written out per collective.
//
// Ring all-reduce (reduce-scatter then all-gather around one ring):
//   T = 2(n−1)/n · S/B + 2(n−1)·α
double ring_all_reduce_seconds(double bytes, int n, Link link);

// Ring all-gather and ring reduce-scatter (half of the all-reduce above):
//   T = (n−1)/n · S/B + (n−1)·α
double ring_all_gather_seconds(double bytes, int n, Link link);
double ring_reduce_scatter_seconds(double bytes, int n, Link link);

// Tree all-reduce, NCCL's double binary tree (Sanders et al. 2009): the buffer is split between
// two complementary binary trees; each is reduced up to its root and broadcast back down,
// pipelined in chunks. A rank is an interior node of one tree and a leaf of the other, so over
// the whole operation it sends S/2 + S/2 while reducing and S (to two children, in its interior
// tree) while broadcasting: 2S sent per rank, against 2(n−1)/n·S for the ring. A chunk crosses
// the tree's depth ceil(log2 n) going up and again coming down:
//   T = 2·S/B + 2·ceil(log2 n)·α
// The bandwidth term is slightly worse than the ring's and the latency term logarithmic rather
// than linear in n, which is why NCCL prefers trees for small messages on many ranks.
// Across nodes the flat link (network) prices every hop, NVLink hops included: a conservative
// simplification of NCCL's inter-node tree with intra-node chains.
double tree_all_reduce_seconds(double bytes, int n, Link link);

// Hierarchical all-reduce across k nodes of g GPUs: intra-node ring reduce-scatter of S over g
// (NVLink), then g inter-node ring all-reduces of S/g over k ranks running in parallel (each GPU
// has its own NIC, so each sub-ring gets the full per-GPU network bandwidth), then intra-node ring
// all-gather of S over g:
//   T = RS_ring(S, g, NVLink) + AR_ring(S/g, k, network) + AG_ring(S, g, NVLink)
//     = 2(g−1)/g·S/B_nvl + 2(g−1)·α_nvl + 2(k−1)/k·(S/g)/B_net + 2(k−1)·α_net
// With k == 1 this is exactly the ring all-reduce on NVLink.
double hierarchical_all_reduce_seconds(double bytes, int nodes, int gpus_per_node, Link intra,
                                       Link inter);

// Hierarchical all-gather (inter-node all-gather of S/g over k, then intra-node all-gather of S
// over g) and its mirror, hierarchical reduce-scatter (intra-node first, then inter-node); both:
//   T = (k−1)/k·(S/g)/B_net + (k−1)·α_net + (g−1)/g·S/B_nvl + (g−1)·α_nvl
double hierarchical_all_gather_seconds(double bytes, int nodes, int gpus_per_node, Link intra,
                                       Link inter);

// Point-to-point send of S bytes over one link: T = S/B + α.
double send_seconds(double bytes, Link link);

// Time of one communication op. Returns 0 when bytes == 0 or group_size == 1 (nothing moves).
// Algorithms:
//   all-reduce:      kRing, kTree, kHierarchical as above; kAuto = the minimum of the three
//                    (hierarchical only where it applies, see below), as NCCL's tuner would pick;
//   all-gather,
//   reduce-scatter:  ring; kHierarchical uses the hierarchical variant; kAuto = the minimum of
//                    both; kTree is not an NCCL algorithm for these and falls back to the ring;
//   send:            send_seconds over NVLink (group_nodes == 1) or the network, any algorithm.
// Hierarchical applies only when the group spans nodes (group_nodes > 1) and
// group_size % group_nodes == 0; elsewhere a kHierarchical request is priced as the ring.
double collective_seconds(graph::OpKind kind, double bytes, int group_size, int group_nodes,
                          const spec::Hardware& hardware, CollectiveAlgorithm algorithm);

// Bus bandwidth, as nccl-tests defines it: algorithm bandwidth algBw = S / T, and
//   busBw = algBw · 2(n−1)/n   for all-reduce,
//   busBw = algBw · (n−1)/n    for all-gather and reduce-scatter,
//   busBw = algBw              for send.
// busBw is the rate each rank's link carries, so it is comparable across group sizes: an ideal
// ring (α = 0) reaches busBw = B for any n. The factor is CollectiveTraits::share
// (collective_traits.h), the same number the ring formulas above use.
double bus_bandwidth_factor(graph::OpKind kind, int n);
double bus_bandwidth(graph::OpKind kind, double bytes, double seconds, int n);

std::string_view to_string(CollectiveAlgorithm algorithm);  // "auto", "ring", "tree", ...

}  // namespace mpsim::cost
