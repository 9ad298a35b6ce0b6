// NVTX range names; see range_names.h.
#include "executor/core/range_names.h"

namespace mpsim::executor {
namespace {

std::string_view pass_word(RangePass pass) {
  switch (pass) {
    case RangePass::kForward:
      return "fwd";
    case RangePass::kBackward:
      return "bwd";
    case RangePass::kRecompute:
      return "rcp";
  }
  return "fwd";
}

std::string site_word(int layer) {
  if (layer == kEmbeddingSite) return "embed";
  if (layer == kHeadSite) return "head";
  return "L" + std::to_string(layer);
}

std::string chunk_suffix(int chunk) { return chunk >= 0 ? "/c" + std::to_string(chunk) : ""; }

}  // namespace

std::string compute_range(RangePass pass, int micro_batch, int layer, graph::OpLabel label) {
  std::string name(pass_word(pass));
  name += "/mb" + std::to_string(micro_batch) + "/" + site_word(layer) + "/";
  name += graph::label_name(label);
  return name;
}

std::string tp_range(RangePass pass, int micro_batch, int layer, graph::OpLabel label) {
  return "comm/tp/" + compute_range(pass, micro_batch, layer, label);
}

std::string pp_range(bool send, bool forward, int micro_batch, int chunk) {
  return std::string(send ? "comm/pp/send/" : "comm/pp/recv/") + (forward ? "fwd" : "bwd") + "/mb" +
         std::to_string(micro_batch) + chunk_suffix(chunk);
}

std::string dp_range(int bucket, std::string_view suffix) {
  std::string name = "comm/dp/bucket" + std::to_string(bucket);
  if (!suffix.empty()) name += "/" + std::string(suffix);
  return name;
}

std::string pipeline_range(bool forward, int micro_batch, int chunk) {
  return std::string("pipeline/") + (forward ? "fwd" : "bwd") + "/mb" +
         std::to_string(micro_batch) + chunk_suffix(chunk);
}

}  // namespace mpsim::executor
