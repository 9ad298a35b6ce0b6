// The GEMM grid of a calibration run, derived from the models the profile will price: the m, n
// and k values of every GEMM that the simulator's graph (simulator/graph/training_graph.h)
// builds for each model, tensor-parallel size and micro-batch size of the options, reduced to a
// few values per axis for calibration_bench's --gemm-m, --gemm-n and --gemm-k.
//
// Which GEMMs (GemmGridOptions holds the defaults, each with its reason):
//   models      those whose parameter count (graph::model_parameters) lies in
//               [min_parameters, max_parameters]: the models one node of this GPU trains, not
//               the executor's byte-level test models (their GEMMs are launch-bound);
//   TP sizes    the powers of two up to the hardware's gpus_per_node (TP stays inside a node),
//               each where spec::validate_parallel_config accepts it for the model (heads
//               divisible by TP, ...) — not the local GPU count: the tables price simulated
//               configurations on full nodes of this GPU;
//   micro-batch micro_batch_sizes (1, 2, 4, 8, 16): the graph's GEMM m for fwd and dgrad and
//               k for wgrad is tokens = micro-batch x sequence (sequence parallelism gathers the
//               sequence before each GEMM, so the shapes do not depend on it); PP, DP, ZeRO and
//               recomputation do not change the shapes either (one stage, one micro-batch).
// Axes: the bench measures one list of M, N and K values for every layout (fwd, dgrad, wgrad),
// so each axis is the union over layouts: M = tokens (fwd, dgrad) and output features (wgrad);
// N = output (fwd) and input features (dgrad, wgrad); K = input (fwd), output (dgrad) features
// and tokens (wgrad). Values above max_dim are clipped to max_dim: the bench's grid is a full
// cross product of the axes, whose largest shape must fit the bench's buffers and whose total
// FLOPs bound its run time; the cost model extrapolates beyond the grid with a curve fitted to
// it, and GEMMs that large run at the saturated efficiency. Each axis is then sampled to at
// most max_values values: the smallest and the largest, and for each of the log-spaced targets
// between them the axis value nearest in log scale (so every value measured is one a model
// uses, aligned as the models' sizes are, or max_dim).
//
// Failure: model_gemm_grid throws std::invalid_argument for options out of range and when no
// model lies in the parameter range; a (model, TP) pair the config validation refuses is left
// out and noted. load_model_folder throws spec::SpecError naming the file for a model that does
// not load, and for a folder without models.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"

namespace mpsim::calibration {

struct GemmGridOptions {
  double min_parameters = 1e8;      // below: the executor's test models (launch-bound GEMMs)
  double max_parameters = 1e10;     // above: models one node does not train (llama3-8b is 8.0e9)
  int64_t max_tensor_parallel = 0;  // 0: the hardware's gpus_per_node
  std::vector<int64_t> micro_batch_sizes = {1, 2, 4, 8, 16};
  // The largest value of an axis: 32768^3 keeps the bench's three GEMM buffers within its
  // 8 GiB limit (2 + 2 + 4 GiB for wgrad's fp32 output) and one such GEMM near 0.1 s.
  int64_t max_dim = 32768;
  int max_values = 8;  // per axis; 8^3 shapes x 3 layouts (see model_gemm_grid_test.cpp: time)
};

using GemmShapeKey = std::array<int64_t, 3>;  // (m, n, k)

struct GemmGrid {
  std::vector<int64_t> m, n, k;          // ascending: the bench's --gemm-m, --gemm-n, --gemm-k
  std::vector<GemmShapeKey> shapes;      // every distinct model GEMM (m, n, k), unclipped, sorted
  std::vector<std::string> models;       // the models used: "llama3-8b (8.03e+09 parameters)"
  std::vector<int64_t> tensor_parallel;  // the TP sizes tried
  std::vector<std::string> notes;        // models and TP sizes left out, and why

  // FLOPs of one repetition of every shape of one layout: 2 (sum m)(sum n)(sum k).
  double flop_per_layout() const;
};

GemmGrid model_gemm_grid(const std::vector<spec::ModelSpec>& models, const spec::Hardware& hardware,
                         const GemmGridOptions& options = {});

// At most `count` values of `values` clipped to `max_value` (see the file comment), ascending.
std::vector<int64_t> sample_gemm_axis(const std::vector<int64_t>& values, int64_t max_value,
                                      int count);

// Every models/*.textproto of `folder`, loaded and validated, in file-name order.
std::vector<spec::ModelSpec> load_model_folder(const std::string& folder);

// "1024,2048,4096": a list as the bench's flags take it.
std::string comma_list(const std::vector<int64_t>& values);

}  // namespace mpsim::calibration
