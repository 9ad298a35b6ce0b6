#include "simulator/graph/op_name.h"

#include <charconv>
#include <vector>

namespace mpsim::graph {
namespace {

void append_int(std::string& out, int64_t value) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, end);
}

void append_site(std::string& out, const Op& op) {
  switch (op.site) {
    case Site::kLayer:
      out += 'L';
      append_int(out, op.layer);
      if (op.kind == OpKind::kStepBlock) {
        out += '-';
        append_int(out, op.last_layer);
      }
      break;
    case Site::kEmbedding:
      out += "embed";
      break;
    case Site::kHead:
      out += "head";
      break;
    case Site::kNone:
      out += "none";
      break;
  }
}

// "<pass>/mb<N>/<site>/<label>"
void append_scoped(std::string& out, const Op& op) {
  out += to_string(op.pass);
  out += "/mb";
  append_int(out, op.micro_batch);
  out += '/';
  append_site(out, op);
  out += '/';
  out += label_name(op.label);
  if (op.parts > 1) {
    out += ".part";
    append_int(out, op.part);
  }
}

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = text.find('/', start);
    parts.push_back(text.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

// Parses "<prefix><digits>" into value; false if the shape does not match.
bool parse_prefixed(std::string_view part, std::string_view prefix, int& value) {
  if (part.size() <= prefix.size() || part.substr(0, prefix.size()) != prefix) return false;
  const char* begin = part.data() + prefix.size();
  const char* end = part.data() + part.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  return ec == std::errc() && ptr == end && value >= 0;
}

bool parse_pass(std::string_view part, Pass& pass) {
  if (part == "fwd")
    pass = Pass::kForward;
  else if (part == "bwd")
    pass = Pass::kBackward;
  else if (part == "rcp")
    pass = Pass::kRecompute;
  else
    return false;
  return true;
}

bool parse_site(std::string_view part, ParsedOpName& out) {
  if (part == "embed") {
    out.site = Site::kEmbedding;
    return true;
  }
  if (part == "head") {
    out.site = Site::kHead;
    return true;
  }
  out.site = Site::kLayer;
  const size_t dash = part.find('-');
  if (dash != std::string_view::npos) {
    return parse_prefixed(part.substr(0, dash), "L", out.layer) &&
           parse_prefixed(std::string("L").append(part.substr(dash + 1)), "L", out.last_layer) &&
           out.last_layer >= out.layer;
  }
  return parse_prefixed(part, "L", out.layer);
}

// parts = [pass, mb<N>, site, label]
bool parse_scoped(const std::vector<std::string_view>& parts, size_t first, ParsedOpName& out) {
  if (parts.size() != first + 4) return false;
  if (!parse_pass(parts[first], out.pass)) return false;
  if (!parse_prefixed(parts[first + 1], "mb", out.micro_batch)) return false;
  if (!parse_site(parts[first + 2], out)) return false;
  std::string_view label = parts[first + 3];
  if (const size_t dot = label.rfind(".part"); dot != std::string_view::npos) {
    if (!parse_prefixed(label.substr(dot + 1), "part", out.part)) return false;
    label = label.substr(0, dot);
  }
  if (label.empty()) return false;
  out.label = std::string(label);
  return true;
}

}  // namespace

std::string op_name(const Op& op) {
  std::string out;
  out.reserve(48);
  if (op.kind == OpKind::kOptimizer) return "optimizer";
  if (op.label == OpLabel::kFp8WeightCast) return "fp8.weights";
  if (op.label == OpLabel::kFp8Amax) return "comm/dp/fp8.amax";
  if (op.stream == Stream::kHost) return std::string("host/") + std::string(label_name(op.label));
  switch (op.group) {
    case Group::kNone:
      append_scoped(out, op);
      break;
    case Group::kTp:
      out += "comm/tp/";
      append_scoped(out, op);
      break;
    case Group::kCp:
      out += "comm/cp/";
      append_scoped(out, op);
      break;
    case Group::kPp:
      out += op.pass == Pass::kBackward ? "comm/pp/send/bwd/mb" : "comm/pp/send/fwd/mb";
      append_int(out, op.micro_batch);
      if (op.chunk >= 0) {
        out += "/c";
        append_int(out, op.chunk);
      }
      break;
    case Group::kDp:
      out += "comm/dp/";
      if (op.micro_batch >= 0) {
        append_scoped(out, op);
        break;
      }
      out += "bucket";
      append_int(out, op.bucket);
      if (op.kind == OpKind::kReduceScatter) out += "/reducescatter";
      if (op.kind == OpKind::kAllGather) out += "/allgather";
      break;
    case Group::kEmbedding:
      out += "comm/embed/allreduce";
      break;
  }
  return out;
}

std::optional<ParsedOpName> parse_op_name(std::string_view name) {
  ParsedOpName out;
  if (name == "optimizer") {
    out.family = ParsedOpName::Family::kOptimizer;
    out.pass = Pass::kStep;
    return out;
  }
  if (name == "fp8.weights") {
    out.family = ParsedOpName::Family::kCompute;
    out.label = "fp8.weights";
    return out;
  }
  if (name == "comm/dp/fp8.amax") {
    out.family = ParsedOpName::Family::kDp;
    out.pass = Pass::kStep;
    out.label = "fp8.amax";
    return out;
  }
  if (name == "host/offload.grads" || name == "host/offload.optimizer" ||
      name == "host/offload.params") {
    out.family = ParsedOpName::Family::kHost;
    out.pass = Pass::kStep;
    out.label = std::string(name.substr(5));
    return out;
  }
  if (name == "comm/embed/allreduce") {
    out.family = ParsedOpName::Family::kEmbedding;
    out.pass = Pass::kStep;
    out.label = "allreduce";
    return out;
  }
  const std::vector<std::string_view> parts = split(name);
  if (parts[0] != "comm") {
    out.family = ParsedOpName::Family::kCompute;
    if (!parse_scoped(parts, 0, out)) return std::nullopt;
    return out;
  }
  if (parts.size() < 3) return std::nullopt;
  if (parts[1] == "tp" || parts[1] == "cp") {
    out.family = parts[1] == "tp" ? ParsedOpName::Family::kTp : ParsedOpName::Family::kCp;
    if (!parse_scoped(parts, 2, out)) return std::nullopt;
    return out;
  }
  if (parts[1] == "pp") {
    out.family = ParsedOpName::Family::kPp;
    if (parts.size() < 5 || parts.size() > 6 || parts[2] != "send") return std::nullopt;
    if (parts[3] != "fwd" && parts[3] != "bwd") return std::nullopt;
    out.pp_backward = parts[3] == "bwd";
    out.pass = out.pp_backward ? Pass::kBackward : Pass::kForward;
    if (!parse_prefixed(parts[4], "mb", out.micro_batch)) return std::nullopt;
    if (parts.size() == 6 && !parse_prefixed(parts[5], "c", out.chunk)) return std::nullopt;
    return out;
  }
  if (parts[1] == "dp") {
    out.family = ParsedOpName::Family::kDp;
    if (parse_prefixed(parts[2], "bucket", out.bucket)) {
      out.pass = Pass::kStep;
      if (parts.size() == 3) {
        out.label = "allreduce";
      } else if (parts.size() == 4 && (parts[3] == "reducescatter" || parts[3] == "allgather")) {
        out.label = std::string(parts[3]);
      } else {
        return std::nullopt;
      }
      return out;
    }
    if (!parse_scoped(parts, 2, out)) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

}  // namespace mpsim::graph
