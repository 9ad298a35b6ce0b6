// The exact shapes the simulator's graph produces for the models of models/, as a point list for
// calibration_bench --points (calibration/bench/points_bench.cu): one measurement per line, in the
// range grammar (calibration/calibration_range.h) without its "calib/" prefix, e.g.
//   gemm.bf16/dgrad/m=8192,n=4096,k=6144
//   attention.bwd.bf16/bh=64,s=2048,d=128
//   allreduce.nvlink/g=2,bytes=16777216
// `mpsim calibrate -o` has them measured beside the bench's grid and written into the `.exact`
// tables (calibrate_profile.h), so that the cost model prices the models' own shapes at measured
// points and interpolates only elsewhere.
//
// Which graphs (ModelPointsOptions holds the defaults):
//   models      those model_gemm_grid selects (graph::model_parameters in [min_parameters,
//               max_parameters]);
//   configs     TP 1 .. gpus (the local GPU count: collectives are measured on them; every TP,
//               not only powers of two), SP off and, at TP > 1, on; PP 1 and 2; DP 1 and, with 2
//               or more GPUs, DP 2 with ZeRO 0 (bucket all-reduces) and ZeRO 1 (the distributed
//               optimizer's bucket reduce-scatters and parameter all-gathers); micro-batch sizes
//               micro_batch_sizes; one micro-batch per pipeline (global batch = micro-batch x DP);
//               each where spec::validate_parallel_config accepts it for the model (a refused
//               layout skips its micro-batches; one note per model and refusal message, with the
//               number of layouts it refused, e.g. "gpt2-1.5b: 12 layouts left out (e.g. TP 2
//               PP 1 DP 1): tensor_parallel: num_attention_heads (25) is not divisible by tp (2);
//               ...", the refused field as the spec layer names it). The graph puts every group
//               inside one node (gpus_per_node >= TP x PP x DP).
// Which keys: every op's key as exact_table_key (op_points.h) gives it, i.e. as the calibrated
// cost model looks the op up: GEMMs by layout (m, n, k; the layers' linears also as gemm.fp8
// points where every size is a multiple of 16), attention forward and backward
// (batch_heads, seq, head_dim), collectives and sends inside one node (group_size, bytes) with
// group_size <= gpus. Memory-bound ops are not listed (the bench's memory measurements are keyed
// by their principal tensor, not by the graph's bytes). Bounds, each counted in the notes:
//   - a GEMM whose three buffers exceed max_gemm_bytes (the bench's own limit) is left out;
//   - attention with seq > max_attention_seq, or whose scores tensor (2 bh s^2 bytes; the bench
//     holds two) exceeds max_attention_score_bytes, is left out (the executor's attention core
//     computes the full s x s scores: its time grows with s^2); the fused (flash) core's points
//     (attention.flash.{fwd,bwd}.bf16) are listed at every attention shape with seq up to
//     4 x max_attention_seq;
//   - a collective's bytes are rounded down to what the bench can run, whole bf16 elements in
//     equal shares over the group (a multiple of 2 x group_size bytes, at least that; sends
//     2 x 2): the key measured is the rounded one and misses the exact lookup of the unrounded
//     op (counted in `rounded`; none for the shipped models, whose sizes are multiples of
//     hidden x 2 bytes or of 4-byte gradients).
// Bytes of a collective are the graph's Op::bytes, "as nccl-tests counts them" (cost_model.h),
// the bench's `bytes=` definition too (all-reduce: the buffer; all-gather: the gathered output;
// reduce-scatter: the input; send: the message). The bench moves bf16 whatever the graph's
// element type (DP gradients are reduced in fp32 by the graph's count): the key is the bytes.
//
// Failure: model_points throws std::invalid_argument for options out of range (gpus < 1, no
// micro-batch size) and when no model lies in the parameter range.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simulator/spec/hardware.h"
#include "simulator/spec/model_spec.pb.h"

namespace mpsim::calibration {

struct ModelPointsOptions {
  int64_t gpus = 1;             // the local GPUs: TP 1..gpus, collective groups <= gpus
  double min_parameters = 1e8;  // as GemmGridOptions: the models the GEMM grid uses
  double max_parameters = 1e10;
  std::vector<int64_t> micro_batch_sizes = {1, 2, 4, 8, 16};
  int64_t max_gemm_bytes = int64_t{8} << 30;  // calibration_bench's kGemmMaxBytes
  int64_t max_attention_seq = 4096;
  // 4 GiB of scores: bh x s^2 = 2^31, e.g. bh 128 at s 4096 (~3 ms forward at 400 TFLOP/s).
  int64_t max_attention_score_bytes = int64_t{4} << 30;
};

struct ModelPoints {
  // The bench's lines, each sorted: gemm.bf16/..., attention.{fwd,bwd}.bf16/..., <op>.nvlink/...
  std::vector<std::string> gemm, attention, collective;
  std::vector<std::string> models;  // the models used: "llama3-8b (8.03e+09 parameters)"
  int64_t graphs = 0;               // graphs built
  int64_t rounded = 0;              // collective keys rounded to the bench's sizes (see above)
  std::vector<std::string> notes;   // configs refused and keys left out, and why
  // Work of one repetition of every point: 2mnk over the GEMMs; 4 bh s^2 d forward and twice
  // that backward over the attention points; bytes over the collectives.
  double gemm_flop = 0, attention_flop = 0, collective_bytes = 0;

  std::size_t size() const { return gemm.size() + attention.size() + collective.size(); }
  // The file calibration_bench --points reads: a comment naming what the list is, then every line.
  std::string file_text() const;
};

ModelPoints model_points(const std::vector<spec::ModelSpec>& models, const spec::Hardware& hardware,
                         const ModelPointsOptions& options);

}  // namespace mpsim::calibration
