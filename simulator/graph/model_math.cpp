#include "simulator/graph/model_math.h"

#include <stdexcept>

namespace mpsim::graph {

ModelDims model_dims(const spec::ModelSpec& model) {
  ModelDims d;
  d.layers = model.num_layers();
  d.hidden = model.hidden_size();
  d.ffn = model.ffn_hidden_size() > 0 ? model.ffn_hidden_size() : 4 * model.hidden_size();
  d.heads = model.num_attention_heads();
  d.kv_heads = model.num_kv_heads() > 0 ? model.num_kv_heads() : model.num_attention_heads();
  d.head_dim = d.heads > 0 ? d.hidden / d.heads : 0;
  d.seq = model.seq_length();
  d.vocab = model.vocab_size();
  d.swiglu = model.activation() == spec::SWIGLU;
  d.tied = model.tied_embeddings();
  d.learned_positions = model.position_embedding() == spec::LEARNED;
  d.rotary = model.position_embedding() == spec::ROTARY;
  if (model.rotary_base() > 0) d.rotary_base = model.rotary_base();
  d.bias = model.linear_bias();
  d.layer_norm = model.norm() != spec::RMS_NORM;
  d.dropout = model.dropout();
  switch (model.dtype()) {
    case spec::FP32:
      d.bytes_per_element = 4;
      break;
    case spec::FP8:
      d.bytes_per_element = 2;  // BF16 outside the FP8 GEMMs
      d.fp8 = true;
      break;
    default:
      d.bytes_per_element = 2;
      break;
  }
  return d;
}

int64_t padded_vocab(int64_t vocab, int64_t tp) {
  const int64_t multiple = 128 * tp;
  return (vocab + multiple - 1) / multiple * multiple;
}

namespace {

// Weights of the four linear layers of one transformer layer (no biases, no norms).
int64_t layer_matrix_parameters(const ModelDims& d) {
  const int64_t qkv_out = d.hidden + 2 * d.kv_heads * d.head_dim;
  const int64_t fc1_out = d.swiglu ? 2 * d.ffn : d.ffn;
  return d.hidden * qkv_out + d.hidden * d.hidden + d.hidden * fc1_out + d.ffn * d.hidden;
}

}  // namespace

int64_t norm_parameters(const ModelDims& d) { return d.layer_norm ? 2 * d.hidden : d.hidden; }

int64_t layer_parameters(const ModelDims& d) {
  int64_t p = layer_matrix_parameters(d) + 2 * norm_parameters(d);
  if (d.bias) {
    const int64_t qkv_out = d.hidden + 2 * d.kv_heads * d.head_dim;
    const int64_t fc1_out = d.swiglu ? 2 * d.ffn : d.ffn;
    p += qkv_out + d.hidden + fc1_out + d.hidden;
  }
  return p;
}

int64_t layer_parameters_local(const ModelDims& d, int64_t t) {
  const int64_t qkv_out = d.hidden + 2 * d.kv_heads * d.head_dim;
  const int64_t fc1_out = d.swiglu ? 2 * d.ffn : d.ffn;
  int64_t p = layer_matrix_parameters(d) / t + 2 * norm_parameters(d);
  if (d.bias) p += (qkv_out + fc1_out) / t + 2 * d.hidden;
  return p;
}

int64_t layer_linear_weights_local(const ModelDims& d, int64_t t) {
  return layer_matrix_parameters(d) / t;
}

int64_t model_parameters(const ModelDims& d) {
  int64_t p = d.layers * layer_parameters(d) + d.vocab * d.hidden + norm_parameters(d);
  if (d.learned_positions) p += d.seq * d.hidden;
  if (!d.tied) p += d.vocab * d.hidden;
  return p;
}

double attention_core_forward_flops(const ModelDims& d) {
  // QK^T and (softmax)V: 2 * s * s * (heads * head_dim) each.
  return 4.0 * static_cast<double>(d.seq) * static_cast<double>(d.seq) *
         static_cast<double>(d.heads * d.head_dim);
}

double layer_forward_flops(const ModelDims& d) {
  return 2.0 * static_cast<double>(d.seq) * static_cast<double>(layer_matrix_parameters(d)) +
         attention_core_forward_flops(d);
}

double model_flops_per_iteration(const ModelDims& d, int64_t sequences) {
  const double head = 2.0 * static_cast<double>(d.seq) * static_cast<double>(d.hidden) *
                      static_cast<double>(d.vocab);
  const double forward = static_cast<double>(d.layers) * layer_forward_flops(d) + head;
  return 3.0 * forward * static_cast<double>(sequences);
}

}  // namespace mpsim::graph
