// Loading a HardwareProfile and converting it to SI units (spec_loader.h): every Quantity checked
// (value > 0, a unit of its dimension, a source) and pointed at its line when wrong.
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "simulator/spec/spec_loader.h"
#include "simulator/spec/text_format.h"

namespace mpsim::spec {
namespace {

namespace pb = google::protobuf;

enum class Dimension { kFlopRate, kBandwidth, kCapacity, kTime, kFraction, kElements };

struct Unit {
  std::string_view name;
  double to_si;  // multiply the value by this to get FLOP/s, B/s, B, s, a fraction or elements
};

constexpr std::array kFlopRateUnits = {Unit{"FLOP/s", 1}, Unit{"GFLOP/s", 1e9},
                                       Unit{"TFLOP/s", 1e12}, Unit{"PFLOP/s", 1e15}};
constexpr std::array kBandwidthUnits = {Unit{"B/s", 1},        Unit{"GB/s", 1e9},
                                        Unit{"TB/s", 1e12},    Unit{"GiB/s", 1 << 30},
                                        Unit{"Gb/s", 1e9 / 8}, Unit{"Gbit/s", 1e9 / 8}};
constexpr std::array kCapacityUnits = {Unit{"B", 1}, Unit{"GB", 1e9}, Unit{"GiB", 1 << 30},
                                       Unit{"TB", 1e12}};
constexpr std::array kTimeUnits = {Unit{"s", 1}, Unit{"ms", 1e-3}, Unit{"us", 1e-6},
                                   Unit{"ns", 1e-9}};
constexpr std::array kFractionUnits = {Unit{"fraction", 1}, Unit{"%", 1e-2}};
constexpr std::array kElementUnits = {Unit{"elements", 1}};

struct DimensionInfo {
  const char* what;  // "a FLOP rate"
  std::vector<Unit> units;
};

DimensionInfo info(Dimension d) {
  auto units = [](const auto& a) { return std::vector<Unit>(a.begin(), a.end()); };
  switch (d) {
    case Dimension::kFlopRate:
      return {"a FLOP rate", units(kFlopRateUnits)};
    case Dimension::kBandwidth:
      return {"a bandwidth", units(kBandwidthUnits)};
    case Dimension::kCapacity:
      return {"a capacity", units(kCapacityUnits)};
    case Dimension::kTime:
      return {"a time", units(kTimeUnits)};
    case Dimension::kFraction:
      return {"a fraction", units(kFractionUnits)};
    case Dimension::kElements:
      return {"a size in elements", units(kElementUnits)};
  }
  return {"a quantity", {}};
}

std::string unit_names(const DimensionInfo& d) {
  std::string out;
  for (const Unit& u : d.units) out += (out.empty() ? "" : ", ") + std::string(u.name);
  return out;
}

// Checks a present Quantity (value > 0, known unit, a source) and returns it in SI units.
double to_si(const Locator& at, const std::string& path, const Quantity& q, Dimension dim) {
  const DimensionInfo d = info(dim);
  if (!(q.value() > 0) || !std::isfinite(q.value())) {
    at.fail(path + ".value",
            number_text(q.value()) + " is not a positive number; expected " + d.what + " > 0");
  }
  const auto unit = std::find_if(d.units.begin(), d.units.end(),
                                 [&](const Unit& u) { return u.name == q.unit(); });
  if (unit == d.units.end()) {
    at.fail(path + ".unit", "unknown unit \"" + q.unit() + "\" for " + d.what +
                                "; expected one of " + unit_names(d));
  }
  if (q.source().empty()) {
    at.fail(path + ".source",
            "empty; expected where the number comes from (a datasheet, \"measured on <machine> "
            "<date>\" or \"assumed: <why>\")");
  }
  const double si = q.value() * unit->to_si;
  if (dim == Dimension::kFraction && si > 1) {
    at.fail(path + ".value", number_text(q.value()) + " " + q.unit() +
                                 " is more than the whole; expected a fraction in (0, 1]");
  }
  return si;
}

double required(const Locator& at, const std::string& path, bool present, const Quantity& q,
                Dimension dim) {
  if (!present) {
    at.fail(path, std::string("missing; expected ") + info(dim).what +
                      " as { value: ... unit: \"...\" source: \"...\" }");
  }
  return to_si(at, path, q, dim);
}

// Absent optional quantities (peak_fp8, peak_tf32) read 0.
double optional(const Locator& at, const std::string& path, bool present, const Quantity& q,
                Dimension dim) {
  return present ? to_si(at, path, q, dim) : 0;
}

void convert_gpu(const GpuSpec& g, const Locator& at, Hardware& hw) {
  using D = Dimension;
  if (g.name().empty()) at.fail("gpu.name", "missing; expected the GPU's name");
  hw.gpu_name = g.name();
  hw.peak_bf16_flops =
      required(at, "gpu.peak_bf16", g.has_peak_bf16(), g.peak_bf16(), D::kFlopRate);
  hw.peak_fp16_flops =
      required(at, "gpu.peak_fp16", g.has_peak_fp16(), g.peak_fp16(), D::kFlopRate);
  hw.peak_fp32_flops =
      required(at, "gpu.peak_fp32", g.has_peak_fp32(), g.peak_fp32(), D::kFlopRate);
  hw.peak_tf32_flops =
      optional(at, "gpu.peak_tf32", g.has_peak_tf32(), g.peak_tf32(), D::kFlopRate);
  hw.peak_fp8_flops = optional(at, "gpu.peak_fp8", g.has_peak_fp8(), g.peak_fp8(), D::kFlopRate);
  hw.hbm_bytes_per_s =
      required(at, "gpu.hbm_bandwidth", g.has_hbm_bandwidth(), g.hbm_bandwidth(), D::kBandwidth);
  hw.hbm_capacity_bytes =
      required(at, "gpu.hbm_capacity", g.has_hbm_capacity(), g.hbm_capacity(), D::kCapacity);
  hw.kernel_launch_s = required(at, "gpu.kernel_launch_overhead", g.has_kernel_launch_overhead(),
                                g.kernel_launch_overhead(), D::kTime);
  hw.usable_memory_bytes = g.has_usable_memory()
                               ? to_si(at, "gpu.usable_memory", g.usable_memory(), D::kCapacity)
                               : hw.hbm_capacity_bytes;
}

void convert_efficiency(const KernelEfficiency& e, const Locator& at, Hardware& hw) {
  using D = Dimension;
  hw.gemm_max_efficiency =
      required(at, "efficiency.gemm_max", e.has_gemm_max(), e.gemm_max(), D::kFraction);
  hw.gemm_half_dim = required(at, "efficiency.gemm_half_dim", e.has_gemm_half_dim(),
                              e.gemm_half_dim(), D::kElements);
  hw.attention_max_efficiency = required(at, "efficiency.attention_max", e.has_attention_max(),
                                         e.attention_max(), D::kFraction);
  hw.memory_bound_efficiency =
      required(at, "efficiency.memory_bound", e.has_memory_bound(), e.memory_bound(), D::kFraction);
  hw.flash_attention_max_efficiency =
      required(at, "efficiency.flash_attention_max", e.has_flash_attention_max(),
               e.flash_attention_max(), D::kFraction);
  hw.gemm_max_fp8_efficiency =
      optional(at, "efficiency.gemm_max_fp8", e.has_gemm_max_fp8(), e.gemm_max_fp8(), D::kFraction);
  hw.comm_interference = optional(at, "efficiency.comm_interference", e.has_comm_interference(),
                                  e.comm_interference(), D::kFraction);
}

// Each overhead left out keeps its default (hardware.h).
void convert_memory_overheads(const MemoryOverheads& m, const Locator& at, Hardware& hw) {
  using D = Dimension;
  if (m.has_cuda_context())
    hw.cuda_context_bytes =
        to_si(at, "memory_overheads.cuda_context", m.cuda_context(), D::kCapacity);
  if (m.has_library_workspace())
    hw.library_workspace_bytes =
        to_si(at, "memory_overheads.library_workspace", m.library_workspace(), D::kCapacity);
  if (m.has_nccl_per_communicator())
    hw.nccl_communicator_bytes = to_si(at, "memory_overheads.nccl_per_communicator",
                                       m.nccl_per_communicator(), D::kCapacity);
  if (m.has_fragmentation())
    hw.allocator_fragmentation =
        to_si(at, "memory_overheads.fragmentation", m.fragmentation(), D::kFraction);
}

void convert_node_and_network(const HardwareProfile& p, const Locator& at, Hardware& hw) {
  using D = Dimension;
  const NodeSpec& n = p.node();
  if (n.gpus_per_node() < 1) {
    at.fail("node.gpus_per_node",
            (n.gpus_per_node() == 0 ? std::string("missing or 0")
                                    : number_text(n.gpus_per_node()) + " is not positive") +
                "; expected at least 1 GPU per node");
  }
  hw.gpus_per_node = n.gpus_per_node();
  hw.nvlink_bytes_per_s = required(at, "node.nvlink_bandwidth", n.has_nvlink_bandwidth(),
                                   n.nvlink_bandwidth(), D::kBandwidth);
  hw.nvlink_latency_s =
      required(at, "node.nvlink_latency", n.has_nvlink_latency(), n.nvlink_latency(), D::kTime);
  hw.host_link_bytes_per_s = optional(at, "node.host_link_bandwidth", n.has_host_link_bandwidth(),
                                      n.host_link_bandwidth(), D::kBandwidth);
  hw.host_memory_bytes_per_s =
      optional(at, "node.host_memory_bandwidth", n.has_host_memory_bandwidth(),
               n.host_memory_bandwidth(), D::kBandwidth);
  const NetworkSpec& w = p.network();
  hw.network_bytes_per_s = required(at, "network.bandwidth_per_gpu", w.has_bandwidth_per_gpu(),
                                    w.bandwidth_per_gpu(), D::kBandwidth);
  hw.network_latency_s = required(at, "network.latency", w.has_latency(), w.latency(), D::kTime);
}

Hardware convert(const HardwareProfile& p, const Locator& at) {
  Hardware hw;
  if (p.name().empty()) at.fail("name", "missing; expected the profile's name");
  hw.name = p.name();
  convert_gpu(p.gpu(), at, hw);
  convert_efficiency(p.efficiency(), at, hw);
  convert_node_and_network(p, at, hw);
  convert_memory_overheads(p.memory_overheads(), at, hw);
  hw.calibrated.assign(p.calibrated().begin(), p.calibrated().end());
  return hw;
}

}  // namespace

HardwareProfile parse_hardware_profile(const std::string& text,
                                       const std::string& file_for_errors) {
  HardwareProfile profile;
  pb::TextFormat::ParseInfoTree tree;
  parse_text(text, file_for_errors, &profile, &tree);
  convert(profile, Locator(file_for_errors, HardwareProfile::descriptor(), &tree));
  return profile;
}

HardwareProfile load_hardware_profile(const std::string& name_or_path) {
  const std::string path = resolve_spec_path(name_or_path, "hw_profiles");
  return parse_hardware_profile(read_text_file(path), path);
}

Hardware to_hardware(const HardwareProfile& profile, const std::string& file_for_errors) {
  return convert(profile, Locator(file_for_errors, HardwareProfile::descriptor(), nullptr));
}

Hardware load_hardware(const std::string& name_or_path) {
  const std::string path = resolve_spec_path(name_or_path, "hw_profiles");
  return to_hardware(parse_hardware_profile(read_text_file(path), path), path);
}

}  // namespace mpsim::spec
