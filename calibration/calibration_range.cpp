// Formatting and parsing calibration_bench's range names; the grammar is in calibration_range.h.
#include "calibration/calibration_range.h"

#include <array>
#include <charconv>
#include <stdexcept>

namespace mpsim::calibration {
namespace {

// "m=1024,n=768,k=768" against the names {"m", "n", "k"}; throws naming `range` on a mismatch.
std::vector<int64_t> parse_keys(std::string_view text, const std::vector<std::string_view>& names,
                                std::string_view range) {
  std::string expected;
  for (std::string_view name : names) {
    if (!expected.empty()) expected += ',';
    expected.append(name).append("=<positive integer>");
  }
  auto fail = [&](const std::string& what) -> std::invalid_argument {
    return std::invalid_argument("calibration range '" + std::string(range) + "': " + what +
                                 ", expected '" + expected + "'");
  };
  std::vector<int64_t> keys;
  std::string_view rest = text;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string prefix = std::string(names[i]) + "=";
    if (!rest.starts_with(prefix)) throw fail("keys '" + std::string(text) + "'");
    rest.remove_prefix(prefix.size());
    const std::size_t comma = rest.find(',');
    const std::string_view digits = rest.substr(0, comma);
    int64_t value = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (error != std::errc() || end != digits.data() + digits.size() || value <= 0) {
      throw fail("key " + std::string(names[i]) + " = '" + std::string(digits) + "'");
    }
    keys.push_back(value);
    const bool last = i + 1 == names.size();
    if (last != (comma == std::string_view::npos)) throw fail("keys '" + std::string(text) + "'");
    if (!last) rest.remove_prefix(comma + 1);
  }
  return keys;
}

// The range of a name that starts with the prefix; `measurement` is left empty where it is the
// table.
CalibrationRange parse_range(std::string_view text) {
  const std::string_view body = text.substr(kCalibrationRangePrefix.size());
  const std::size_t slash = body.find('/');
  const std::string_view head = body.substr(0, slash);
  const std::string_view tail =
      slash == std::string_view::npos ? std::string_view() : body.substr(slash + 1);
  CalibrationRange range;
  if (head == "gemm.bf16" || head == "gemm.fp8") {
    const std::size_t next = tail.find('/');
    const std::string_view layout = tail.substr(0, next);
    if (layout != "fwd" && layout != "dgrad" && layout != "wgrad") {
      throw std::invalid_argument("calibration range '" + std::string(text) + "': layout '" +
                                  std::string(layout) + "', expected fwd, dgrad or wgrad");
    }
    range.kind = MeasurementKind::kGemm;
    range.table = std::string(head) + "." + std::string(layout);
    range.keys = parse_keys(next == std::string_view::npos ? "" : tail.substr(next + 1),
                            {"m", "n", "k"}, text);
    return range;
  }
  if (head == "attention.fwd.bf16" || head == "attention.bwd.bf16") {
    range.kind = MeasurementKind::kAttention;
    range.table = std::string(head);
    range.keys = parse_keys(tail, {"bh", "s", "d"}, text);
    return range;
  }
  if (head == "attention.flash.fwd.bf16" || head == "attention.flash.bwd.bf16") {
    range.kind = MeasurementKind::kAttention;
    range.table = std::string(head);
    range.keys = parse_keys(tail, {"bh", "s", "d", "g"}, text);
    return range;
  }
  if (head == "memory.norm" || head == "memory.elementwise" || head == "memory.optimizer" ||
      head == "memory.softmax" || head == "memory.fp8_cast") {
    range.kind = MeasurementKind::kMemory;
    range.table = std::string(head);
    range.keys = parse_keys(tail, {"bytes"}, text);
    return range;
  }
  if (head == kLossForwardMeasurement || head == kLossBackwardMeasurement) {
    range.kind = MeasurementKind::kMemory;
    range.table = "memory.loss";
    range.measurement = std::string(head);
    range.keys = parse_keys(tail, {"bytes"}, text);
    return range;
  }
  if (head == kMetaMeasurement) {
    range.kind = MeasurementKind::kMeta;
    range.measurement = std::string(head);
    range.keys = parse_keys(tail, {"driver", "runtime", "cublas", "nccl"}, text);
    return range;
  }
  static constexpr std::array<std::string_view, 4> kCollectives = {
      "allreduce.nvlink", "allgather.nvlink", "reducescatter.nvlink", "send.nvlink"};
  for (std::string_view collective : kCollectives) {
    if (head != collective) continue;
    range.kind = MeasurementKind::kCollective;
    range.table = std::string(head);
    range.keys = parse_keys(tail, {"g", "bytes"}, text);
    return range;
  }
  if (head == "interference" && tail.starts_with("gemm.bf16/")) {
    range.kind = MeasurementKind::kInterference;
    range.table = "interference.gemm.bf16";
    range.keys =
        parse_keys(tail.substr(std::string_view("gemm.bf16/").size()), {"m", "n", "k"}, text);
    return range;
  }
  throw std::invalid_argument(
      "calibration range '" + std::string(text) + "': unknown measurement '" + std::string(head) +
      "', expected gemm.bf16, gemm.fp8, attention.fwd.bf16, attention.bwd.bf16, "
      "attention.flash.fwd.bf16, "
      "attention.flash.bwd.bf16, memory.norm, memory.fp8_cast, "
      "memory.elementwise, memory.optimizer, memory.loss.fwd, memory.loss.bwd, memory.softmax, "
      "allreduce.nvlink, allgather.nvlink, reducescatter.nvlink, send.nvlink, "
      "interference/gemm.bf16 or meta");
}

}  // namespace

std::optional<CalibrationRange> parse_calibration_range(std::string_view text) {
  if (!text.starts_with(kCalibrationRangePrefix)) return std::nullopt;
  CalibrationRange range = parse_range(text);
  if (range.measurement.empty()) range.measurement = range.table;
  return range;
}

std::string gemm_range_name(std::string_view layout, int64_t m, int64_t n, int64_t k) {
  return "calib/gemm.bf16/" + std::string(layout) + "/m=" + std::to_string(m) +
         ",n=" + std::to_string(n) + ",k=" + std::to_string(k);
}

std::string fp8_gemm_range_name(std::string_view layout, int64_t m, int64_t n, int64_t k) {
  return "calib/gemm.fp8/" + std::string(layout) + "/m=" + std::to_string(m) +
         ",n=" + std::to_string(n) + ",k=" + std::to_string(k);
}

std::string attention_range_name(bool backward, int64_t bh, int64_t s, int64_t d) {
  return std::string(backward ? "calib/attention.bwd.bf16" : "calib/attention.fwd.bf16") +
         "/bh=" + std::to_string(bh) + ",s=" + std::to_string(s) + ",d=" + std::to_string(d);
}

std::string flash_attention_range_name(bool backward, int64_t bh, int64_t s, int64_t d, int64_t g) {
  return std::string(backward ? "calib/attention.flash.bwd.bf16"
                              : "calib/attention.flash.fwd.bf16") +
         "/bh=" + std::to_string(bh) + ",s=" + std::to_string(s) + ",d=" + std::to_string(d) +
         ",g=" + std::to_string(g);
}

std::string memory_range_name(std::string_view op, int64_t bytes) {
  return "calib/memory." + std::string(op) + "/bytes=" + std::to_string(bytes);
}

std::string loss_range_name(bool backward, int64_t bytes) {
  return memory_range_name(backward ? "loss.bwd" : "loss.fwd", bytes);
}

std::string collective_range_name(std::string_view op, int64_t group, int64_t bytes) {
  return "calib/" + std::string(op) + ".nvlink/g=" + std::to_string(group) +
         ",bytes=" + std::to_string(bytes);
}

std::string interference_range_name(int64_t m, int64_t n, int64_t k) {
  return "calib/interference/gemm.bf16/m=" + std::to_string(m) + ",n=" + std::to_string(n) +
         ",k=" + std::to_string(k);
}

std::string meta_range_name(int64_t driver, int64_t runtime, int64_t cublas, int64_t nccl) {
  return "calib/meta/driver=" + std::to_string(driver) + ",runtime=" + std::to_string(runtime) +
         ",cublas=" + std::to_string(cublas) + ",nccl=" + std::to_string(nccl);
}

}  // namespace mpsim::calibration
