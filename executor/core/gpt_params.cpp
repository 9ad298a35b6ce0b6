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

void add_norm(std::vector<ParamSpec>& out, const std::string& prefix, int64_t h, int layer) {
  out.push_back(vector(prefix + ".weight", h, Split::kReplicated, 1.0f, layer, true));
  out.push_back(vector(prefix + ".bias", h, Split::kReplicated, 0.0f, layer, true));
}

}  // namespace

GptCatalogue make_gpt_catalogue(const graph::ModelDims& d, int tp, double init_std) {
  if (!d.layer_norm || d.swiglu || d.rotary || !d.learned_positions || !d.bias ||
      d.kv_heads != d.heads) {
    throw std::invalid_argument(
        "the executor runs the GPT family only (LayerNorm, GeLU MLP, learned positions, linear "
        "biases, no grouped-query attention)");
  }
  if (tp < 1 || d.heads % tp != 0 || d.ffn % tp != 0) {
    throw std::invalid_argument("heads and ffn size must be divisible by tp");
  }
  GptCatalogue c;
  c.dims = d;
  c.padded_vocab = graph::padded_vocab(d.vocab, tp);
  const int64_t h = d.hidden;
  c.embedding.push_back(weight("embed.word", c.padded_vocab, h, Split::kRows, init_std, -1));
  c.embedding.push_back(weight("embed.position", d.seq, h, Split::kReplicated, init_std, -1));
  const double out_std = init_std / std::sqrt(2.0 * static_cast<double>(d.layers));
  for (int layer = 0; layer < d.layers; ++layer) {
    const std::string p = "L" + std::to_string(layer) + ".";
    std::vector<ParamSpec> l;
    add_norm(l, p + "attn.norm", h, layer);
    l.push_back(weight(p + "attn.qkv.weight", 3 * h, h, Split::kRows, init_std, layer));
    l.push_back(vector(p + "attn.qkv.bias", 3 * h, Split::kRows, 0.0f, layer, false));
    l.push_back(weight(p + "attn.proj.weight", h, h, Split::kColumns, out_std, layer));
    l.push_back(vector(p + "attn.proj.bias", h, Split::kReplicated, 0.0f, layer, true));
    add_norm(l, p + "mlp.norm", h, layer);
    l.push_back(weight(p + "mlp.fc1.weight", d.ffn, h, Split::kRows, init_std, layer));
    l.push_back(vector(p + "mlp.fc1.bias", d.ffn, Split::kRows, 0.0f, layer, false));
    l.push_back(weight(p + "mlp.fc2.weight", h, d.ffn, Split::kColumns, out_std, layer));
    l.push_back(vector(p + "mlp.fc2.bias", h, Split::kReplicated, 0.0f, layer, true));
    c.layers.push_back(std::move(l));
  }
  add_norm(c.head, "head.norm", h, -1);
  if (!d.tied) c.head.push_back(weight("head.logits.weight", c.padded_vocab, h, Split::kRows, init_std, -1));
  return c;
}

}  // namespace mpsim::executor
