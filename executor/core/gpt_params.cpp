// Parameter catalogue of the GPT family; see gpt_params.h.
#include "executor/core/gpt_params.h"

#include <cmath>
#include <stdexcept>

namespace mpsim::executor {
namespace {

ParamSpec weight(std::string name, int64_t rows, int64_t cols, Split split, double std, int layer) {
  ParamSpec p;
  p.name = std::move(name);
  p.rows = rows;
  p.cols = cols;
  p.split = split;
  p.std = static_cast<float>(std);
  p.decay = true;
  p.layer = layer;
  return p;
}

ParamSpec vector(std::string name, int64_t n, Split split, float value, int layer,
                 bool sequence_parallel_grad) {
  ParamSpec p;
  p.name = std::move(name);
  p.rows = n;
  p.cols = 1;
  p.split = split;
  p.mean = value;
  p.layer = layer;
  p.sequence_parallel_grad = sequence_parallel_grad;
  return p;
}

void add_norm(std::vector<ParamSpec>& out, const std::string& prefix, int64_t h, int layer,
              bool layer_norm) {
  out.push_back(vector(prefix + ".weight", h, Split::kReplicated, 1.0f, layer, true));
  if (layer_norm) out.push_back(vector(prefix + ".bias", h, Split::kReplicated, 0.0f, layer, true));
}

}  // namespace

GptCatalogue make_gpt_catalogue(const graph::ModelDims& d, int tp, double init_std) {
  if (d.kv_heads < 1 || d.heads % d.kv_heads != 0) {
    throw std::invalid_argument("attention heads must be a multiple of kv heads");
  }
  if (tp < 1 || d.kv_heads % tp != 0 || d.ffn % tp != 0) {
    throw std::invalid_argument("kv heads (" + std::to_string(d.kv_heads) + ") and ffn size (" +
                                std::to_string(d.ffn) + ") must be divisible by tp (" +
                                std::to_string(tp) + ")");
  }
  if (d.rotary && d.head_dim % 2 != 0)
    throw std::invalid_argument("rotary embeddings need an even head size");
  GptCatalogue c;
  c.dims = d;
  c.padded_vocab = graph::padded_vocab(d.vocab, tp);
  const int64_t h = d.hidden, attn_width = d.heads * d.head_dim;
  const int64_t qkv_rows = attn_width + 2 * d.kv_heads * d.head_dim;
  const int64_t fc1_rows = d.swiglu ? 2 * d.ffn : d.ffn;
  c.embedding.push_back(weight("embed.word", c.padded_vocab, h, Split::kRows, init_std, -1));
  if (d.learned_positions)
    c.embedding.push_back(weight("embed.position", d.seq, h, Split::kReplicated, init_std, -1));
  const double out_std = init_std / std::sqrt(2.0 * static_cast<double>(d.layers));
  for (int layer = 0; layer < d.layers; ++layer) {
    std::string p = "L";  // (GCC 12's -Wrestrict misfires on "L" + std::to_string(...))
    p += std::to_string(layer);
    p += '.';
    std::vector<ParamSpec> l;
    add_norm(l, p + "attn.norm", h, layer, d.layer_norm);
    l.push_back(weight(p + "attn.qkv.weight", qkv_rows, h, Split::kRows, init_std, layer));
    if (d.bias)
      l.push_back(vector(p + "attn.qkv.bias", qkv_rows, Split::kRows, 0.0f, layer, false));
    l.push_back(weight(p + "attn.proj.weight", h, attn_width, Split::kColumns, out_std, layer));
    if (d.bias) l.push_back(vector(p + "attn.proj.bias", h, Split::kReplicated, 0.0f, layer, true));
    add_norm(l, p + "mlp.norm", h, layer, d.layer_norm);
    l.push_back(weight(p + "mlp.fc1.weight", fc1_rows, h, Split::kRows, init_std, layer));
    if (d.bias) l.push_back(vector(p + "mlp.fc1.bias", fc1_rows, Split::kRows, 0.0f, layer, false));
    l.push_back(weight(p + "mlp.fc2.weight", h, d.ffn, Split::kColumns, out_std, layer));
    if (d.bias) l.push_back(vector(p + "mlp.fc2.bias", h, Split::kReplicated, 0.0f, layer, true));
    c.layers.push_back(std::move(l));
  }
  add_norm(c.head, "head.norm", h, -1, d.layer_norm);
  if (!d.tied)
    c.head.push_back(weight("head.logits.weight", c.padded_vocab, h, Split::kRows, init_std, -1));
  return c;
}

}  // namespace mpsim::executor
