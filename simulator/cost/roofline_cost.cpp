// RooflineCostModel, the model behind make_roofline_cost_model: each compute op takes the longer
// of its math time and its HBM time, plus one kernel launch; communication ops are priced by
// collective_cost.h. Formulas and their rationale: simulator/cost/README.md.
#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include "simulator/cost/collective_cost.h"
#include "simulator/cost/cost_model.h"

namespace mpsim::cost {
namespace {

std::string_view dtype_name(spec::DType dtype) {
  switch (dtype) {
    case spec::FP16:
      return "fp16";
    case spec::FP32:
      return "fp32";
    case spec::FP8:
      return "fp8";
    default:
      return "bf16";
  }
}

// Fraction of a dimension's ideal throughput: d / (d + d_half). Tiles along a short dimension are
// partly empty and a short reduction cannot hide its prologue, so efficiency rises with d and
// reaches half at d = d_half. d_half == 0 disables the penalty.
double dim_factor(double d, double half_dim) { return d / (d + half_dim); }

class RooflineCostModel final : public CostModel {
 public:
  RooflineCostModel(const spec::Hardware& hardware, CollectiveAlgorithm algorithm,
                    spec::DType compute_dtype)
      : hardware_(hardware),
        algorithm_(algorithm),
        dtype_(compute_dtype),
        // An unspecified dtype means bf16, the default of the model spec; under the FP8 recipe
        // only the GEMMs marked Op::fp8 run at the FP8 peak, the rest in bf16.
        peak_(hardware.peak_flops(compute_dtype == spec::DTYPE_UNSPECIFIED ||
                                          compute_dtype == spec::FP8
                                      ? spec::BF16
                                      : compute_dtype)),
        fp8_peak_(hardware.peak_fp8_flops),
        // Memory-bound kernels compute in fp32 on the CUDA cores; without that peak, use the
        // tensor peak (only a lower bound on their time either way).
        vector_peak_(hardware.peak_fp32_flops > 0 ? hardware.peak_fp32_flops : peak_),
        memory_rate_(hardware.hbm_bytes_per_s * hardware.memory_bound_efficiency) {
    hardware_.calibrated.clear();  // not read here; keeps the copy small
    const std::string where = "roofline cost model for '" + hardware.name + "': ";
    if (!(peak_ > 0)) {
      throw std::invalid_argument(where + "no positive " + std::string(dtype_name(dtype_)) +
                                  " peak FLOP/s");
    }
    if (compute_dtype == spec::FP8 && !(fp8_peak_ > 0)) {
      throw std::invalid_argument(where + "no positive fp8 peak FLOP/s");
    }
    if (!(memory_rate_ > 0)) {
      throw std::invalid_argument(where +
                                  "hbm bandwidth x memory-bound efficiency is not positive");
    }
    if (!(hardware.gemm_max_efficiency > 0) || !(hardware.attention_max_efficiency > 0) ||
        !(hardware.flash_attention_max_efficiency > 0)) {
      throw std::invalid_argument(where + "gemm and attention efficiencies must be positive");
    }
  }

  double op_seconds(const graph::Op& op) const override {
    switch (op.kind) {
      case graph::OpKind::kGemm:
        if (op.fp8 && fp8_peak_ > 0) {
          const double max = hardware_.gemm_max_fp8_efficiency > 0
                                 ? hardware_.gemm_max_fp8_efficiency
                                 : hardware_.gemm_max_efficiency;
          return roofline(op.flops, fp8_peak_ * gemm_efficiency(op.gemm, max), op.bytes);
        }
        return roofline(op.flops, peak_ * gemm_efficiency(op.gemm, hardware_.gemm_max_efficiency),
                        op.bytes);
      case graph::OpKind::kAttention:
        return roofline(op.flops,
                        peak_ * (op.label == graph::OpLabel::kAttnFlash
                                     ? hardware_.flash_attention_max_efficiency
                                     : hardware_.attention_max_efficiency),
                        op.bytes);
      case graph::OpKind::kNorm:
      case graph::OpKind::kElementwise:
      case graph::OpKind::kLoss:
      case graph::OpKind::kOptimizer:
        return roofline(op.flops, vector_peak_, op.bytes);
      case graph::OpKind::kAllReduce:
      case graph::OpKind::kAllGather:
      case graph::OpKind::kReduceScatter:
      case graph::OpKind::kSend:
        return collective_seconds(op.kind, op.bytes, op.group_size, op.group_nodes, hardware_,
                                  algorithm_);
      case graph::OpKind::kStepBlock:
        return op.duration_s;  // priced when the step was folded
      case graph::OpKind::kHostTransfer:
        return host_seconds(op.bytes, hardware_.host_link_bytes_per_s, "node.host_link_bandwidth");
      case graph::OpKind::kHostOptimizer:
        return host_seconds(op.bytes, hardware_.host_memory_bytes_per_s,
                            "node.host_memory_bandwidth");
    }
    return 0;
  }

  double comm_interference(const graph::Op& op) const override {
    return compute_comm_interference(hardware_, op);
  }

  std::string describe() const override {
    std::string gpu = hardware_.gpu_name.empty() ? hardware_.name : hardware_.gpu_name;
    std::string line =
        "roofline (" +
        std::string(dtype_ == spec::FP8 ? "fp8 GEMMs, bf16 attention" : dtype_name(dtype_)) +
        ") on " + gpu;
    if (!hardware_.name.empty() && hardware_.name != gpu) line += " [" + hardware_.name + "]";
    return line + ", collectives: " + std::string(to_string(algorithm_));
  }

 private:
  // eff = max · f(m)·f(n)·f(k), max being gemm_max (or, FP8, gemm_max_fp8). A shape with a
  // missing dimension is taken at max.
  double gemm_efficiency(const graph::GemmShape& s, double max) const {
    if (s.m <= 0 || s.n <= 0 || s.k <= 0) return max;
    const double half = hardware_.gemm_half_dim;
    return max * dim_factor(static_cast<double>(s.m), half) *
           dim_factor(static_cast<double>(s.n), half) * dim_factor(static_cast<double>(s.k), half);
  }

  // Bytes through a host path: the link (a copy engine's transfer) or host memory (the host's
  // optimizer step, memory-bound as on the GPU), plus one launch.
  double host_seconds(double bytes, double bytes_per_s, const char* field) const {
    if (bytes <= 0) return 0;
    if (!(bytes_per_s > 0)) {
      throw std::invalid_argument("roofline cost model for '" + hardware_.name + "': no " + field +
                                  ", which optimizer offload needs");
    }
    return bytes / bytes_per_s + hardware_.kernel_launch_s;
  }

  // max(math time, HBM time) + one kernel launch; an op with no work at all costs nothing.
  double roofline(double flops, double flops_per_s, double bytes) const {
    if (flops <= 0 && bytes <= 0) return 0;
    const double math = flops > 0 ? flops / flops_per_s : 0;
    const double memory = bytes > 0 ? bytes / memory_rate_ : 0;
    return std::max(math, memory) + hardware_.kernel_launch_s;
  }

  spec::Hardware hardware_;
  CollectiveAlgorithm algorithm_;
  spec::DType dtype_;
  double peak_;         // FLOP/s of GEMMs and attention in the compute dtype (bf16 under FP8)
  double fp8_peak_;     // FLOP/s of the FP8 GEMMs (Op::fp8)
  double vector_peak_;  // FLOP/s of memory-bound kernels
  double memory_rate_;  // achievable HBM bytes/s: hbm · memory_bound_efficiency
};

}  // namespace

double compute_comm_interference(const spec::Hardware& hardware, const graph::Op& op) {
  const bool compute_bound =
      op.kind == graph::OpKind::kGemm || op.kind == graph::OpKind::kAttention;
  return compute_bound ? hardware.comm_interference : 0;
}

std::unique_ptr<CostModel> make_roofline_cost_model(const spec::Hardware& hardware,
                                                    CollectiveAlgorithm algorithm,
                                                    spec::DType compute_dtype) {
  return std::make_unique<RooflineCostModel>(hardware, algorithm, compute_dtype);
}

}  // namespace mpsim::cost
