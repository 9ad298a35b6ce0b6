// The float64 reference GPT / Llama; see reference_gpt.h.
#include "executor/core/reference_gpt.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

#include "executor/core/param_init.h"

namespace mpsim::executor {
namespace {

using Vec = std::vector<double>;

constexpr double kNormEps = 1e-5;
constexpr double kGeluScale = 0.7978845608;  // sqrt(2 / pi), as the GPU kernels write it
constexpr double kGeluCubic = 0.044715;

std::vector<const ParamSpec*> all_params(const GptCatalogue& c) {
  std::vector<const ParamSpec*> out;
  for (const ParamSpec& p : c.embedding) out.push_back(&p);
  for (const auto& layer : c.layers)
    for (const ParamSpec& p : layer) out.push_back(&p);
  for (const ParamSpec& p : c.head) out.push_back(&p);
  return out;
}

// Parameters by name, each checked against its catalogue size.
class ParamView {
 public:
  ParamView(const GptCatalogue& c, const Tensors& params) {
    for (const ParamSpec* p : all_params(c)) {
      auto it = params.find(p->name);
      if (it == params.end()) {
        throw std::invalid_argument("reference gpt: parameter " + p->name + " is missing");
      }
      const auto expected = static_cast<size_t>(p->rows * p->cols);
      if (it->second.size() != expected) {
        throw std::invalid_argument("reference gpt: parameter " + p->name + " has " +
                                    std::to_string(it->second.size()) + " elements, expected " +
                                    std::to_string(expected));
      }
      data_[p->name] = it->second.data();
      shapes_[p->name] = {p->rows, p->cols};
    }
  }
  const double* operator()(const std::string& name) const { return data_.at(name); }
  // Null when the catalogue has no such tensor (biases of a model without them).
  const double* optional(const std::string& name) const {
    auto it = data_.find(name);
    return it == data_.end() ? nullptr : it->second;
  }
  void expect_shape(const std::string& name, int64_t rows, int64_t cols) const {
    auto it = shapes_.find(name);
    if (it == shapes_.end() || it->second.first != rows || it->second.second != cols) {
      throw std::invalid_argument("reference gpt: catalogue tensor " + name + " must be [" +
                                  std::to_string(rows) + ", " + std::to_string(cols) +
                                  "] for the model's dimensions");
    }
  }

 private:
  std::map<std::string, const double*> data_;
  std::map<std::string, std::pair<int64_t, int64_t>> shapes_;
};

// y = x W^T + b: x [T, in], W [out, in], b [out] or null, y [T, out].
void linear(const double* x, const double* w, const double* b, int64_t T, int64_t in, int64_t out,
            double* y) {
  for (int64_t t = 0; t < T; ++t) {
    const double* xt = x + t * in;
    for (int64_t o = 0; o < out; ++o) {
      const double* wo = w + o * in;
      double s = b != nullptr ? b[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += xt[i] * wo[i];
      y[t * out + o] = s;
    }
  }
}

// Backward of linear(): dx += dy W, dW += dy^T x, db += sum_t dy (db may be null).
void linear_backward(const double* x, const double* w, const double* dy, int64_t T, int64_t in,
                     int64_t out, double* dx, double* dw, double* db) {
  for (int64_t t = 0; t < T; ++t) {
    const double* xt = x + t * in;
    double* dxt = dx + t * in;
    for (int64_t o = 0; o < out; ++o) {
      const double g = dy[t * out + o];
      if (g == 0.0) continue;
      const double* wo = w + o * in;
      double* dwo = dw + o * in;
      for (int64_t i = 0; i < in; ++i) {
        dxt[i] += g * wo[i];
        dwo[i] += g * xt[i];
      }
      if (db != nullptr) db[o] += g;
    }
  }
}

struct NormCache {
  Vec xhat;  // [T, h] normalised input (before the weight)
  Vec rstd;  // [T] 1 / sqrt(var + eps), or 1 / sqrt(mean square + eps) for RMSNorm
};

// LayerNorm (layer_norm: y = (x - mean) rstd gamma + beta) or RMSNorm (y = x rstd gamma, beta
// null).
void norm_forward(bool layer_norm, const double* x, const double* gamma, const double* beta,
                  int64_t T, int64_t h, double* y, NormCache* cache) {
  cache->xhat.assign(static_cast<size_t>(T * h), 0.0);
  cache->rstd.assign(static_cast<size_t>(T), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const double* xt = x + t * h;
    double mean = 0;
    if (layer_norm) {
      for (int64_t i = 0; i < h; ++i) mean += xt[i];
      mean /= static_cast<double>(h);
    }
    double var = 0;
    for (int64_t i = 0; i < h; ++i) var += (xt[i] - mean) * (xt[i] - mean);
    var /= static_cast<double>(h);
    const double rstd = 1.0 / std::sqrt(var + kNormEps);
    cache->rstd[t] = rstd;
    for (int64_t i = 0; i < h; ++i) {
      const double xh = (xt[i] - mean) * rstd;
      cache->xhat[t * h + i] = xh;
      y[t * h + i] = beta != nullptr ? xh * gamma[i] + beta[i] : xh * gamma[i];
    }
  }
}

// dx += d norm / dx applied to dy; dgamma and (LayerNorm only) dbeta accumulate.
void norm_backward(bool layer_norm, const NormCache& cache, const double* gamma, const double* dy,
                   int64_t T, int64_t h, double* dx, double* dgamma, double* dbeta) {
  const double n = static_cast<double>(h);
  for (int64_t t = 0; t < T; ++t) {
    const double* xh = cache.xhat.data() + t * h;
    const double* dyt = dy + t * h;
    double mean_dxhat = 0, mean_dxhat_xhat = 0;
    for (int64_t i = 0; i < h; ++i) {
      const double dxhat = dyt[i] * gamma[i];
      mean_dxhat += dxhat;
      mean_dxhat_xhat += dxhat * xh[i];
      dgamma[i] += dyt[i] * xh[i];
      if (dbeta != nullptr) dbeta[i] += dyt[i];
    }
    // Without mean subtraction (RMSNorm) the mean of dxhat does not flow back.
    mean_dxhat = layer_norm ? mean_dxhat / n : 0.0;
    mean_dxhat_xhat /= n;
    for (int64_t i = 0; i < h; ++i) {
      const double dxhat = dyt[i] * gamma[i];
      dx[t * h + i] += cache.rstd[t] * (dxhat - mean_dxhat - xh[i] * mean_dxhat_xhat);
    }
  }
}

double gelu(double u) {
  return 0.5 * u * (1.0 + std::tanh(kGeluScale * (u + kGeluCubic * u * u * u)));
}

double gelu_derivative(double u) {
  const double th = std::tanh(kGeluScale * (u + kGeluCubic * u * u * u));
  return 0.5 * (1.0 + th) +
         0.5 * u * (1.0 - th * th) * kGeluScale * (1.0 + 3.0 * kGeluCubic * u * u);
}

double sigmoid(double u) { return 1.0 / (1.0 + std::exp(-u)); }

// Everything the backward pass of one layer needs.
struct LayerCache {
  NormCache norm1;
  Vec a;      // [T, h] attention norm output
  Vec qkv;    // [T, W] after rotary (when on): what attention reads
  Vec probs;  // [B, heads, s, s] causal attention probabilities (zero above the diagonal)
  Vec ctx;    // [T, heads d]
  NormCache norm2;
  Vec m;  // [T, h] MLP norm output
  Vec u;  // [T, f] (GeLU) or [T, 2f] (SwiGLU) fc1 output
  Vec g;  // [T, f] activation
};

struct Shape {
  int64_t B, s, h, heads, kv, r, d, f, V, T;
  int64_t W;  // qkv row width (heads + 2 kv) d
  int64_t A;  // attention context width heads d
};

// The names of layer `l`'s tensors.
struct LayerNames {
  explicit LayerNames(int l) {
    std::string p = std::to_string(l);  // "L" + to_string(l) trips GCC 12's -Wrestrict (bug 105651)
    p.insert(p.begin(), 'L');
    p += '.';
    norm1_w = p + "attn.norm.weight";
    norm1_b = p + "attn.norm.bias";
    qkv_w = p + "attn.qkv.weight";
    qkv_b = p + "attn.qkv.bias";
    proj_w = p + "attn.proj.weight";
    proj_b = p + "attn.proj.bias";
    norm2_w = p + "mlp.norm.weight";
    norm2_b = p + "mlp.norm.bias";
    fc1_w = p + "mlp.fc1.weight";
    fc1_b = p + "mlp.fc1.bias";
    fc2_w = p + "mlp.fc2.weight";
    fc2_b = p + "mlp.fc2.bias";
  }
  std::string norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b, fc1_w, fc1_b, fc2_w,
      fc2_b;
};

// Offsets in a qkv row (gpt_params.h): kv group g holds its r query heads, then its key, then its
// value, d elements each.
int64_t query_offset(const Shape& sh, int64_t head) {
  return (head / sh.r) * (sh.r + 2) * sh.d + (head % sh.r) * sh.d;
}
int64_t key_offset(const Shape& sh, int64_t group) {
  return group * (sh.r + 2) * sh.d + sh.r * sh.d;
}
int64_t value_offset(const Shape& sh, int64_t group) { return key_offset(sh, group) + sh.d; }

// Rotates every query and key head of every token by its position within its sequence; with
// `inverse`, by minus that position (the transpose, which carries gradients back).
void rotate_queries_and_keys(const Shape& sh, double base, bool inverse, Vec* qkv) {
  for (int64_t t = 0; t < sh.T; ++t) {
    const int64_t pos = (t % sh.s) * (inverse ? -1 : 1);
    double* row = qkv->data() + t * sh.W;
    for (int64_t hd = 0; hd < sh.heads; ++hd)
      apply_rotary(row + query_offset(sh, hd), sh.d, pos, base);
    for (int64_t g = 0; g < sh.kv; ++g) apply_rotary(row + key_offset(sh, g), sh.d, pos, base);
  }
}

void attention_forward(const Shape& sh, LayerCache* c) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(sh.d));
  c->probs.assign(static_cast<size_t>(sh.B * sh.heads * sh.s * sh.s), 0.0);
  c->ctx.assign(static_cast<size_t>(sh.T * sh.A), 0.0);
  const double* qkv = c->qkv.data();
  const int64_t row = sh.W;
  Vec scores(static_cast<size_t>(sh.s));
  for (int64_t b = 0; b < sh.B; ++b) {
    for (int64_t hd = 0; hd < sh.heads; ++hd) {
      const int64_t kv_group = hd / sh.r;
      for (int64_t i = 0; i < sh.s; ++i) {
        const double* q = qkv + (b * sh.s + i) * row + query_offset(sh, hd);
        double max_score = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j <= i; ++j) {
          const double* k = qkv + (b * sh.s + j) * row + key_offset(sh, kv_group);
          double dot = 0;
          for (int64_t e = 0; e < sh.d; ++e) dot += q[e] * k[e];
          scores[j] = dot * scale;
          max_score = std::max(max_score, scores[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= i; ++j) sum += std::exp(scores[j] - max_score);
        double* p = c->probs.data() + ((b * sh.heads + hd) * sh.s + i) * sh.s;
        double* out = c->ctx.data() + (b * sh.s + i) * sh.A + hd * sh.d;
        for (int64_t j = 0; j <= i; ++j) {
          p[j] = std::exp(scores[j] - max_score) / sum;
          const double* v = qkv + (b * sh.s + j) * row + value_offset(sh, kv_group);
          for (int64_t e = 0; e < sh.d; ++e) out[e] += p[j] * v[e];
        }
      }
    }
  }
}

// dqkv [T, W] (overwritten) from dctx [T, heads d]; a group's key and value gather the
// gradients of all its query heads.
void attention_backward(const Shape& sh, const LayerCache& c, const Vec& dctx, Vec* dqkv) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(sh.d));
  dqkv->assign(static_cast<size_t>(sh.T * sh.W), 0.0);
  const double* qkv = c.qkv.data();
  const int64_t row = sh.W;
  Vec dp(static_cast<size_t>(sh.s));
  for (int64_t b = 0; b < sh.B; ++b) {
    for (int64_t hd = 0; hd < sh.heads; ++hd) {
      const int64_t kv_group = hd / sh.r;
      for (int64_t i = 0; i < sh.s; ++i) {
        const int64_t ti = b * sh.s + i;
        const double* p = c.probs.data() + ((b * sh.heads + hd) * sh.s + i) * sh.s;
        const double* dout = dctx.data() + ti * sh.A + hd * sh.d;
        // ctx_i = sum_j p_ij v_j
        double p_dot_dp = 0;
        for (int64_t j = 0; j <= i; ++j) {
          const int64_t tj = b * sh.s + j;
          const double* v = qkv + tj * row + value_offset(sh, kv_group);
          double* dv = dqkv->data() + tj * row + value_offset(sh, kv_group);
          double s = 0;
          for (int64_t e = 0; e < sh.d; ++e) {
            s += dout[e] * v[e];
            dv[e] += p[j] * dout[e];
          }
          dp[j] = s;
          p_dot_dp += p[j] * s;
        }
        // p_i = softmax(scale * q_i . k_j over j <= i)
        const double* q = qkv + ti * row + query_offset(sh, hd);
        double* dq = dqkv->data() + ti * row + query_offset(sh, hd);
        for (int64_t j = 0; j <= i; ++j) {
          const double dscore = p[j] * (dp[j] - p_dot_dp) * scale;
          const int64_t tj = b * sh.s + j;
          const double* k = qkv + tj * row + key_offset(sh, kv_group);
          double* dk = dqkv->data() + tj * row + key_offset(sh, kv_group);
          for (int64_t e = 0; e < sh.d; ++e) {
            dq[e] += dscore * k[e];
            dk[e] += dscore * q[e];
          }
        }
      }
    }
  }
}

// g = gelu(u) [T, f], or for SwiGLU g_j = silu(u_2j) u_2j+1 from u [T, 2f].
void mlp_activation(bool swiglu, const Vec& u, Vec* g) {
  if (!swiglu) {
    g->resize(u.size());
    for (size_t i = 0; i < u.size(); ++i) (*g)[i] = gelu(u[i]);
    return;
  }
  g->resize(u.size() / 2);
  for (size_t j = 0; j < g->size(); ++j) {
    const double gate = u[2 * j];
    (*g)[j] = gate * sigmoid(gate) * u[2 * j + 1];
  }
}

// du (same shape as u, overwritten) from dg.
void mlp_activation_backward(bool swiglu, const Vec& u, const Vec& dg, Vec* du) {
  du->resize(u.size());
  if (!swiglu) {
    for (size_t i = 0; i < u.size(); ++i) (*du)[i] = dg[i] * gelu_derivative(u[i]);
    return;
  }
  for (size_t j = 0; j < dg.size(); ++j) {
    const double gate = u[2 * j], up = u[2 * j + 1], sg = sigmoid(gate);
    (*du)[2 * j] = dg[j] * up * sg * (1.0 + gate * (1.0 - sg));  // silu'(x) = s(x)(1 + x(1 - s(x)))
    (*du)[2 * j + 1] = dg[j] * gate * sg;
  }
}

// The model's dimensions as the loops below index them, checked: at least one sequence, heads a
// multiple of kv heads, an even head size for rotary embeddings.
Shape checked_shape(const graph::ModelDims& dims, int64_t batch) {
  Shape sh;
  sh.B = batch;
  sh.s = dims.seq;
  sh.h = dims.hidden;
  sh.heads = dims.heads;
  sh.kv = dims.kv_heads;
  sh.d = dims.head_dim;
  sh.f = dims.ffn;
  sh.V = dims.vocab;
  sh.T = sh.B * sh.s;
  if (batch < 1) throw std::invalid_argument("reference gpt: batch must be at least 1");
  if (sh.kv < 1 || sh.heads % sh.kv != 0) {
    throw std::invalid_argument("reference gpt: heads (" + std::to_string(sh.heads) +
                                ") must be a multiple of kv heads (" + std::to_string(sh.kv) + ")");
  }
  if (dims.rotary && sh.d % 2 != 0) {
    throw std::invalid_argument("reference gpt: rotary embeddings need an even head size, got " +
                                std::to_string(sh.d));
  }
  sh.r = sh.heads / sh.kv;
  sh.W = (sh.heads + 2 * sh.kv) * sh.d;
  sh.A = sh.heads * sh.d;
  return sh;
}

// Throws unless `tokens` holds B sequences of seq + 1 ids, each in [0, vocab).
void check_tokens(const Shape& sh, const std::vector<int32_t>& tokens) {
  const auto expected_tokens = static_cast<size_t>(sh.B * (sh.s + 1));
  if (tokens.size() != expected_tokens) {
    throw std::invalid_argument("reference gpt: expected " + std::to_string(expected_tokens) +
                                " tokens (" + std::to_string(sh.B) +
                                " sequences of seq + 1 = " + std::to_string(sh.s + 1) + "), got " +
                                std::to_string(tokens.size()));
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= sh.V) {
      throw std::invalid_argument("reference gpt: token " + std::to_string(i) + " is " +
                                  std::to_string(tokens[i]) + ", outside [0, " +
                                  std::to_string(sh.V) + ")");
    }
  }
}

// What one pass reads: the checked dimensions, the parameters and the token ids.
struct Model {
  const graph::ModelDims& dims;
  Shape sh;
  int64_t fc1_rows;  // fc1 output width: f, or 2f with SwiGLU (gate and up)
  const ParamView& P;
  const std::vector<int32_t>& tokens;

  // The input and the target id of token t (of the B * seq tokens the model sees).
  int32_t input(int64_t t) const { return tokens[(t / sh.s) * (sh.s + 1) + t % sh.s]; }
  int32_t target(int64_t t) const { return tokens[(t / sh.s) * (sh.s + 1) + t % sh.s + 1]; }
};

// The loops index by the dimensions: throws unless the catalogue's layer matrices have their
// shapes.
void check_layer_shapes(const Model& m) {
  const Shape& sh = m.sh;
  for (int l = 0; l < m.dims.layers; ++l) {
    const LayerNames n(l);
    m.P.expect_shape(n.qkv_w, sh.W, sh.h);
    m.P.expect_shape(n.proj_w, sh.h, sh.A);
    m.P.expect_shape(n.fc1_w, m.fc1_rows, sh.h);
    m.P.expect_shape(n.fc2_w, sh.h, sh.f);
  }
}

// x [T, h]: each input token's word embedding, plus its position's with learned positions.
Vec embed(const Model& m) {
  const ParamView& P = m.P;
  const int64_t T = m.sh.T, h = m.sh.h;
  Vec x(static_cast<size_t>(T * h));
  for (int64_t t = 0; t < T; ++t) {
    const double* w = P("embed.word") + m.input(t) * h;
    for (int64_t i = 0; i < h; ++i) x[t * h + i] = w[i];
  }
  if (m.dims.learned_positions) {
    for (int64_t t = 0; t < T; ++t) {
      const double* p = P("embed.position") + (t % m.sh.s) * h;
      for (int64_t i = 0; i < h; ++i) x[t * h + i] += p[i];
    }
  }
  return x;
}

// Forward of layer l: attention and MLP add to the residual stream x [T, h]; `c` keeps what the
// backward pass needs. Optional tensors (biases, norm biases) are null when absent from the
// catalogue.
void layer_forward(const Model& m, int l, Vec* x, LayerCache* c) {
  const graph::ModelDims& dims = m.dims;
  const Shape& sh = m.sh;
  const ParamView& P = m.P;
  const int64_t T = sh.T, h = sh.h, fc1_rows = m.fc1_rows;
  const LayerNames n(l);
  c->a.resize(static_cast<size_t>(T * h));
  norm_forward(dims.layer_norm, x->data(), P(n.norm1_w), P.optional(n.norm1_b), T, h, c->a.data(),
               &c->norm1);
  c->qkv.resize(static_cast<size_t>(T * sh.W));
  linear(c->a.data(), P(n.qkv_w), P.optional(n.qkv_b), T, h, sh.W, c->qkv.data());
  if (dims.rotary) rotate_queries_and_keys(sh, dims.rotary_base, false, &c->qkv);
  attention_forward(sh, c);
  Vec proj(static_cast<size_t>(T * h));
  linear(c->ctx.data(), P(n.proj_w), P.optional(n.proj_b), T, sh.A, h, proj.data());
  for (size_t i = 0; i < x->size(); ++i) (*x)[i] += proj[i];
  c->m.resize(static_cast<size_t>(T * h));
  norm_forward(dims.layer_norm, x->data(), P(n.norm2_w), P.optional(n.norm2_b), T, h, c->m.data(),
               &c->norm2);
  c->u.resize(static_cast<size_t>(T * fc1_rows));
  linear(c->m.data(), P(n.fc1_w), P.optional(n.fc1_b), T, h, fc1_rows, c->u.data());
  mlp_activation(dims.swiglu, c->u, &c->g);
  Vec mlp(static_cast<size_t>(T * h));
  linear(c->g.data(), P(n.fc2_w), P.optional(n.fc2_b), T, sh.f, h, mlp.data());
  for (size_t i = 0; i < x->size(); ++i) (*x)[i] += mlp[i];
}

// The head's forward results, and what its backward pass needs.
struct HeadPass {
  NormCache norm;
  Vec y;                      // [T, h] final norm output
  std::string logits_name;    // the logits matrix: embed.word when tied, else head.logits.weight
  const double* E = nullptr;  // its rows [0, V) are the first V * h elements
  Vec losses;                 // [T] per-token cross-entropy
  Vec dlogits;                // [T, V] dMeanLoss/dlogits
};

// Head: final norm, logits over the real vocabulary, cross-entropy.
HeadPass head_forward(const Model& m, const Vec& x) {
  const graph::ModelDims& dims = m.dims;
  const Shape& sh = m.sh;
  const ParamView& P = m.P;
  const int64_t T = sh.T, h = sh.h;
  HeadPass head;
  head.y.resize(static_cast<size_t>(T * h));
  norm_forward(dims.layer_norm, x.data(), P("head.norm.weight"), P.optional("head.norm.bias"), T, h,
               head.y.data(), &head.norm);
  head.logits_name = dims.tied ? "embed.word" : "head.logits.weight";
  head.E = P(head.logits_name);
  Vec logits(static_cast<size_t>(T * sh.V));
  linear(head.y.data(), head.E, nullptr, T, h, sh.V, logits.data());
  head.losses.resize(static_cast<size_t>(T));
  head.dlogits.resize(static_cast<size_t>(T * sh.V));
  for (int64_t t = 0; t < T; ++t) {
    const double* z = logits.data() + t * sh.V;
    const double zmax = *std::max_element(z, z + sh.V);
    double sum = 0;
    for (int64_t v = 0; v < sh.V; ++v) sum += std::exp(z[v] - zmax);
    const double log_sum = zmax + std::log(sum);
    head.losses[t] = log_sum - z[m.target(t)];
    for (int64_t v = 0; v < sh.V; ++v) {
      head.dlogits[t * sh.V + v] =
          (std::exp(z[v] - log_sum) - (v == m.target(t) ? 1.0 : 0.0)) / static_cast<double>(T);
    }
  }
  return head;
}

// Gradients by name. Construction overwrites `grads` with every catalogue tensor at zero, padding
// rows included.
class GradView {
 public:
  GradView(const GptCatalogue& c, Tensors* grads) : grads_(grads) {
    grads_->clear();
    for (const ParamSpec* p : all_params(c)) {
      (*grads_)[p->name].assign(static_cast<size_t>(p->rows * p->cols), 0.0);
    }
  }
  double* operator()(const std::string& name) const { return grads_->at(name).data(); }
  // Null when the catalogue has no such tensor.
  double* optional(const std::string& name) const {
    auto it = grads_->find(name);
    return it == grads_->end() ? nullptr : it->second.data();
  }

 private:
  Tensors* grads_;
};

// Backward of the head: returns dLoss/dx [T, h] at the last layer's output.
Vec head_backward(const Model& m, const GradView& G, const HeadPass& head) {
  const Shape& sh = m.sh;
  const int64_t T = sh.T, h = sh.h;
  Vec dy(static_cast<size_t>(T * h), 0.0);
  linear_backward(head.y.data(), head.E, head.dlogits.data(), T, h, sh.V, dy.data(),
                  G(head.logits_name), nullptr);
  Vec dx(static_cast<size_t>(T * h), 0.0);
  norm_backward(m.dims.layer_norm, head.norm, m.P("head.norm.weight"), dy.data(), T, h, dx.data(),
                G("head.norm.weight"), G.optional("head.norm.bias"));
  return dx;
}

// Backward of layer l: dx holds dLoss/d(the layer's output) on entry and dLoss/d(its input) on
// return; the layer's gradients accumulate.
void layer_backward(const Model& m, const GradView& G, int l, const LayerCache& c, Vec* dx) {
  const graph::ModelDims& dims = m.dims;
  const Shape& sh = m.sh;
  const ParamView& P = m.P;
  const int64_t T = sh.T, h = sh.h, fc1_rows = m.fc1_rows;
  const LayerNames n(l);
  // MLP: x_out = x_mid + fc2(act(fc1(norm2(x_mid)))); dx holds dLoss/dx_out.
  Vec dg(static_cast<size_t>(T * sh.f), 0.0);
  linear_backward(c.g.data(), P(n.fc2_w), dx->data(), T, sh.f, h, dg.data(), G(n.fc2_w),
                  G.optional(n.fc2_b));
  Vec du;
  mlp_activation_backward(dims.swiglu, c.u, dg, &du);
  Vec dm(static_cast<size_t>(T * h), 0.0);
  linear_backward(c.m.data(), P(n.fc1_w), du.data(), T, h, fc1_rows, dm.data(), G(n.fc1_w),
                  G.optional(n.fc1_b));
  norm_backward(dims.layer_norm, c.norm2, P(n.norm2_w), dm.data(), T, h, dx->data(), G(n.norm2_w),
                G.optional(n.norm2_b));
  // Attention: x_mid = x_in + proj(attn(rotary(qkv(norm1(x_in))))); dx now holds dLoss/dx_mid.
  Vec dctx(static_cast<size_t>(T * sh.A), 0.0);
  linear_backward(c.ctx.data(), P(n.proj_w), dx->data(), T, sh.A, h, dctx.data(), G(n.proj_w),
                  G.optional(n.proj_b));
  Vec dqkv;
  attention_backward(sh, c, dctx, &dqkv);
  if (dims.rotary) rotate_queries_and_keys(sh, dims.rotary_base, true, &dqkv);
  Vec da(static_cast<size_t>(T * h), 0.0);
  linear_backward(c.a.data(), P(n.qkv_w), dqkv.data(), T, h, sh.W, da.data(), G(n.qkv_w),
                  G.optional(n.qkv_b));
  norm_backward(dims.layer_norm, c.norm1, P(n.norm1_w), da.data(), T, h, dx->data(), G(n.norm1_w),
                G.optional(n.norm1_b));
}

// Backward of the embedding: dx (dLoss/d the first layer's input) accumulates into the rows of
// the input tokens and, with learned positions, of their positions.
void embedding_backward(const Model& m, const GradView& G, const Vec& dx) {
  const int64_t T = m.sh.T, h = m.sh.h;
  double* dword = G("embed.word");
  double* dpos = m.dims.learned_positions ? G("embed.position") : nullptr;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < h; ++i) {
      dword[m.input(t) * h + i] += dx[t * h + i];
      if (dpos != nullptr) dpos[(t % m.sh.s) * h + i] += dx[t * h + i];
    }
  }
}

// Forward (and, with grads, backward) of the whole model; returns the per-token losses.
Vec run(const GptCatalogue& catalogue, const Tensors& params, const std::vector<int32_t>& tokens,
        int64_t batch, Tensors* grads) {
  const graph::ModelDims& dims = catalogue.dims;
  const Shape sh = checked_shape(dims, batch);
  check_tokens(sh, tokens);
  const ParamView P(catalogue, params);
  const Model m{dims, sh, dims.swiglu ? 2 * sh.f : sh.f, P, tokens};
  check_layer_shapes(m);

  Vec x = embed(m);
  std::vector<LayerCache> caches(static_cast<size_t>(dims.layers));
  for (int l = 0; l < dims.layers; ++l) layer_forward(m, l, &x, &caches[l]);
  HeadPass head = head_forward(m, x);
  if (grads == nullptr) return std::move(head.losses);

  const GradView G(catalogue, grads);
  Vec dx = head_backward(m, G, head);
  for (int l = dims.layers - 1; l >= 0; --l) layer_backward(m, G, l, caches[l], &dx);
  embedding_backward(m, G, dx);
  return std::move(head.losses);
}

}  // namespace

void apply_rotary(double* x, int64_t d, int64_t position, double base) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double theta = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    const double angle = static_cast<double>(position) * theta;
    const double cs = std::cos(angle), sn = std::sin(angle);
    const double lo = x[i], hi = x[i + half];
    x[i] = lo * cs - hi * sn;
    x[i + half] = hi * cs + lo * sn;
  }
}

Tensors init_reference_parameters(const GptCatalogue& catalogue, uint64_t seed) {
  Tensors out;
  for (const ParamSpec* p : all_params(catalogue)) {
    std::vector<double>& v = out[p->name];
    v.resize(static_cast<size_t>(p->rows * p->cols));
    const uint64_t id = parameter_id(p->name);
    for (size_t i = 0; i < v.size(); ++i) {
      // For weights (mean 0) the double product of two floats is exact, so rounding it to float
      // gives what float arithmetic on the GPU gives.
      v[i] = static_cast<double>(p->mean) +
             static_cast<double>(p->std) * static_cast<double>(init_normal(seed, id, i));
    }
  }
  return out;
}

double round_to_bf16(double x) {
  const float f = static_cast<float>(x);
  if (!std::isfinite(f)) return f;
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t lsb = (bits >> 16) & 1u;  // ties go to the even (lsb 0) neighbour
  bits += 0x7fffu + lsb;
  bits &= 0xffff0000u;
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}

Tensors round_to_bf16(const Tensors& tensors) {
  Tensors out = tensors;
  for (auto& [name, values] : out)
    for (double& v : values) v = round_to_bf16(v);
  return out;
}

double reference_loss_and_grads(const GptCatalogue& catalogue, const Tensors& params,
                                const std::vector<int32_t>& tokens, int64_t batch, Tensors* grads) {
  const Vec losses = run(catalogue, params, tokens, batch, grads);
  double sum = 0;
  for (double l : losses) sum += l;
  return sum / static_cast<double>(losses.size());
}

std::vector<double> reference_token_losses(const GptCatalogue& catalogue, const Tensors& params,
                                           const std::vector<int32_t>& tokens, int64_t batch) {
  return run(catalogue, params, tokens, batch, nullptr);
}

}  // namespace mpsim::executor
