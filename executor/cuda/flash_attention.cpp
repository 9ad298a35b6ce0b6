#include "executor/cuda/flash_attention.h"

#include <cudnn.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "executor/cuda/cuda_check.h"

#define CUDNN_CHECK(call)                                                              \
  do {                                                                                 \
    const cudnnStatus_t mpsim_status_ = (call);                                        \
    if (mpsim_status_ != CUDNN_STATUS_SUCCESS) {                                       \
      char mpsim_detail_[512] = {0};                                                   \
      cudnnGetLastErrorString(mpsim_detail_, sizeof mpsim_detail_);                    \
      ::mpsim::executor::throw_call_error(                                             \
          #call, __FILE__, __LINE__,                                                   \
          std::string(cudnnGetErrorString(mpsim_status_)) +                            \
              (mpsim_detail_[0] != 0 ? std::string(" (") + mpsim_detail_ + ")" : "")); \
    }                                                                                  \
  } while (0)

namespace mpsim::executor {
namespace {

using bf16 = __nv_bfloat16;

// One backend descriptor, owned.
class Descriptor {
 public:
  explicit Descriptor(cudnnBackendDescriptorType_t type) {
    CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_));
  }
  ~Descriptor() {
    if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  template <typename T>
  Descriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                  const T* values, int64_t count = 1) {
    CUDNN_CHECK(cudnnBackendSetAttribute(d_, name, type, count, values));
    return *this;
  }
  Descriptor& set(cudnnBackendAttributeName_t name, const Descriptor& other) {
    cudnnBackendDescriptor_t raw = other.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, &raw);
  }
  Descriptor& finalize() {
    CUDNN_CHECK(cudnnBackendFinalize(d_));
    return *this;
  }
  cudnnBackendDescriptor_t get() const { return d_; }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// The tensors the variant pack binds, by unique id; virtual tensors take ids from kFirstVirtual.
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kO,
  kLse,
  kDout,
  kDq,
  kDk,
  kDv,
  kScale,
  kNegInf,
  kOne,
  kSoftmaxSum,  // backward workspace: rowsum(dO * O), fp32
  kDqAccum,     // backward workspace: dQ in fp32
  kFirstVirtual = 100,
};

struct Tensor {
  const Descriptor* d = nullptr;
  std::vector<int64_t> dims, strides;
};

std::vector<int64_t> packed_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// Builds an operation graph as cuDNN's fused-attention engines expect it, keeping every
// descriptor alive as long as the plan.
class GraphBuilder {
 public:
  explicit GraphBuilder(std::vector<std::unique_ptr<Descriptor>>& keep) : keep_(keep) {}

  Tensor tensor(int64_t uid, cudnnDataType_t type, std::vector<int64_t> dims,
                std::vector<int64_t> strides, bool is_virtual = false, bool by_value = false) {
    Descriptor& t = own(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t alignment = 16;
    t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type)
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims.data(),
             static_cast<int64_t>(dims.size()))
        .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides.data(),
             static_cast<int64_t>(strides.size()))
        .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid)
        .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &alignment);
    if (is_virtual) t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, &is_virtual);
    if (by_value) t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, &by_value);
    t.finalize();
    return {&t, std::move(dims), std::move(strides)};
  }
  Tensor scalar(int64_t uid) {
    return tensor(uid, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true);
  }
  Tensor virtual_tensor(std::vector<int64_t> dims, cudnnDataType_t type = CUDNN_DATA_FLOAT,
                        std::vector<int64_t> strides = {}) {
    if (strides.empty()) strides = packed_strides(dims);
    return tensor(next_virtual_++, type, std::move(dims), std::move(strides), true);
  }

  void matmul(const Tensor& a, const Tensor& b, const Tensor& c) {
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    Descriptor& m = own(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    m.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &compute).finalize();
    add_op(own(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR)
               .set(CUDNN_ATTR_OPERATION_MATMUL_ADESC, *a.d)
               .set(CUDNN_ATTR_OPERATION_MATMUL_BDESC, *b.d)
               .set(CUDNN_ATTR_OPERATION_MATMUL_CDESC, *c.d)
               .set(CUDNN_ATTR_OPERATION_MATMUL_DESC, m));
  }

  // y = mode(x[, b[, t]]); `axis` for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, const Tensor& x, const Tensor* b, const Tensor* t,
                 const Tensor& y, cudnnDataType_t compute = CUDNN_DATA_FLOAT, int64_t axis = -1) {
    Descriptor& p = own(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    p.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, &mode)
        .set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, &compute);
    if (mode == CUDNN_POINTWISE_GEN_INDEX)
      p.set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, &axis);
    p.finalize();
    Descriptor& op = own(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, p)
        .set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, *x.d)
        .set(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, *y.d);
    if (b != nullptr) op.set(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b->d);
    if (t != nullptr) op.set(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *t->d);
    const float one = 1.0f;
    op.set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, &one)
        .set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, &one);
    add_op(op);
  }
  // A unary or binary pointwise op into a new virtual fp32 tensor shaped as x.
  Tensor pointwise(cudnnPointwiseMode_t mode, const Tensor& x, const Tensor* b = nullptr) {
    Tensor y = virtual_tensor(x.dims, CUDNN_DATA_FLOAT, x.strides);
    pointwise(mode, x, b, nullptr, y);
    return y;
  }

  void reduction(cudnnReduceTensorOp_t mode, const Tensor& x, const Tensor& y) {
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    Descriptor& r = own(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    r.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, &mode)
        .set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &compute)
        .finalize();
    add_op(own(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR)
               .set(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, *x.d)
               .set(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, *y.d)
               .set(CUDNN_ATTR_OPERATION_REDUCTION_DESC, r));
  }

  void reshape(const Tensor& x, const Tensor& y) {
    add_op(own(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR)
               .set(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, *x.d)
               .set(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, *y.d));
  }

  // S with the causal mask: entries above the diagonal (column > row) become -inf.
  Tensor causal_mask(const Tensor& s, const Tensor& neg_inf) {
    Tensor row = virtual_tensor(s.dims, CUDNN_DATA_INT32, s.strides);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, row, CUDNN_DATA_FLOAT, 2);
    Tensor col = virtual_tensor(s.dims, CUDNN_DATA_INT32, s.strides);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, CUDNN_DATA_FLOAT, 3);
    Tensor keep = virtual_tensor(s.dims, CUDNN_DATA_BOOLEAN, s.strides);
    pointwise(CUDNN_POINTWISE_CMP_GE, row, &col, nullptr, keep, CUDNN_DATA_BOOLEAN);
    Tensor masked = virtual_tensor(s.dims, CUDNN_DATA_FLOAT, s.strides);
    pointwise(CUDNN_POINTWISE_BINARY_SELECT, s, &neg_inf, &keep, masked);
    return masked;
  }

  const std::vector<cudnnBackendDescriptor_t>& ops() const { return ops_; }

 private:
  Descriptor& own(cudnnBackendDescriptorType_t type) {
    keep_.push_back(std::make_unique<Descriptor>(type));
    return *keep_.back();
  }
  void add_op(Descriptor& op) { ops_.push_back(op.finalize().get()); }

  std::vector<std::unique_ptr<Descriptor>>& keep_;
  std::vector<cudnnBackendDescriptor_t> ops_;
  int64_t next_virtual_ = kFirstVirtual;
};

// Workspace pieces start on 256-byte boundaries.
int64_t aligned(int64_t bytes) { return (bytes + 255) / 256 * 256; }

std::vector<int64_t> dims_of(const AttentionShape& s, int64_t heads) {
  return {s.batch, heads, s.seq, s.head_dim};
}
std::vector<int64_t> strides_of(const HeadStrides& h) { return {h.batch, h.head, h.seq, 1}; }
// The transposed view [batch, heads, head_dim, seq] of the same memory.
std::vector<int64_t> transposed_strides(const HeadStrides& h) {
  return {h.batch, h.head, 1, h.seq};
}

void build_forward(GraphBuilder& g, const AttentionShape& s) {
  const int64_t b = s.batch, h = s.heads, hk = s.kv_heads, n = s.seq, d = s.head_dim;
  const Tensor q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, dims_of(s, h), strides_of(s.q));
  const Tensor kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, {b, hk, d, n}, transposed_strides(s.k));
  const Tensor v = g.tensor(kV, CUDNN_DATA_BFLOAT16, dims_of(s, hk), strides_of(s.v));
  const Tensor o = g.tensor(kO, CUDNN_DATA_BFLOAT16, dims_of(s, h), strides_of(s.o));
  const Tensor lse = g.tensor(kLse, CUDNN_DATA_FLOAT, {b, h, n, 1}, {h * n, n, 1, 1});
  const Tensor scale = g.scalar(kScale), neg_inf = g.scalar(kNegInf);

  const Tensor scores = g.virtual_tensor({b, h, n, n});
  g.matmul(q, kt, scores);
  const Tensor scaled = g.pointwise(CUDNN_POINTWISE_MUL, scores, &scale);
  const Tensor masked = g.causal_mask(scaled, neg_inf);
  const Tensor row_max = g.virtual_tensor({b, h, n, 1});
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, masked, row_max);
  const Tensor shifted = g.pointwise(CUDNN_POINTWISE_SUB, masked, &row_max);
  const Tensor exps = g.pointwise(CUDNN_POINTWISE_EXP, shifted);
  const Tensor row_sum = g.virtual_tensor({b, h, n, 1});
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, exps, row_sum);
  const Tensor log_sum = g.pointwise(CUDNN_POINTWISE_LOG, row_sum);
  g.pointwise(CUDNN_POINTWISE_ADD, row_max, &log_sum, nullptr, lse);
  const Tensor probs = g.virtual_tensor({b, h, n, n}, CUDNN_DATA_BFLOAT16);
  g.pointwise(CUDNN_POINTWISE_DIV, exps, &row_sum, nullptr, probs);
  g.matmul(probs, v, o);
}

void build_backward(GraphBuilder& g, const AttentionShape& s) {
  const int64_t b = s.batch, h = s.heads, hk = s.kv_heads, n = s.seq, d = s.head_dim;
  const Tensor q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, dims_of(s, h), strides_of(s.q));
  const Tensor kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, {b, hk, d, n}, transposed_strides(s.k));
  const Tensor vt = g.tensor(kV, CUDNN_DATA_BFLOAT16, {b, hk, d, n}, transposed_strides(s.v));
  const Tensor o = g.tensor(kO, CUDNN_DATA_BFLOAT16, dims_of(s, h), strides_of(s.o));
  const Tensor dout = g.tensor(kDout, CUDNN_DATA_BFLOAT16, dims_of(s, h), strides_of(s.o));
  const Tensor lse = g.tensor(kLse, CUDNN_DATA_FLOAT, {b, h, n, 1}, {h * n, n, 1, 1});
  const Tensor dq = g.tensor(kDq, CUDNN_DATA_BFLOAT16, dims_of(s, h), strides_of(s.q));
  const Tensor dk = g.tensor(kDk, CUDNN_DATA_BFLOAT16, dims_of(s, hk), strides_of(s.k));
  const Tensor dv = g.tensor(kDv, CUDNN_DATA_BFLOAT16, dims_of(s, hk), strides_of(s.v));
  const Tensor scale = g.scalar(kScale), neg_inf = g.scalar(kNegInf), one = g.scalar(kOne);
  const std::vector<int64_t> square = {b, h, n, n}, transposed = {h * n * n, n * n, 1, n};

  // rowsum(dO * O), kept in fp32 workspace.
  const Tensor prod =
      g.virtual_tensor(dims_of(s, h), CUDNN_DATA_FLOAT, {h * n * d, n * d, h * d, 1});
  g.pointwise(CUDNN_POINTWISE_MUL, dout, &o, nullptr, prod);
  const Tensor dot = g.virtual_tensor({b, h, n, 1});
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, prod, dot);
  const Tensor softmax_sum =
      g.tensor(kSoftmaxSum, CUDNN_DATA_FLOAT, {b, h, n, 1}, {h * n, n, 1, 1});
  g.pointwise(CUDNN_POINTWISE_MUL, dot, &one, nullptr, softmax_sum);

  // P = exp(S * scale - lse) under the causal mask; dV = P^T dO.
  const Tensor scores = g.virtual_tensor(square);
  g.matmul(q, kt, scores);
  const Tensor scaled = g.pointwise(CUDNN_POINTWISE_MUL, scores, &scale);
  const Tensor shifted = g.pointwise(CUDNN_POINTWISE_SUB, scaled, &lse);
  const Tensor masked = g.causal_mask(shifted, neg_inf);
  const Tensor probs = g.pointwise(CUDNN_POINTWISE_EXP, masked);
  const Tensor probs_t = g.virtual_tensor(square, CUDNN_DATA_BFLOAT16, transposed);
  g.reshape(probs, probs_t);
  // Grouped-query attention: per query head, then summed over the heads of a group.
  auto per_kv_head = [&](const Tensor& a, const Tensor& bmat, const Tensor& out) {
    if (h == hk) {
      g.matmul(a, bmat, out);
      return;
    }
    const Tensor full = g.virtual_tensor(dims_of(s, h), CUDNN_DATA_BFLOAT16);
    g.matmul(a, bmat, full);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, full, out);
  };
  per_kv_head(probs_t, dout, dv);

  // dS = P * (dO V^T - rowsum(dO * O)) * scale; dK = dS^T Q; dQ = dS K (accumulated in fp32).
  const Tensor dp = g.virtual_tensor(square);
  g.matmul(dout, vt, dp);
  const Tensor centred = g.pointwise(CUDNN_POINTWISE_SUB, dp, &softmax_sum);
  const Tensor weighted = g.pointwise(CUDNN_POINTWISE_MUL, centred, &probs);
  const Tensor ds = g.pointwise(CUDNN_POINTWISE_MUL, weighted, &scale);
  const Tensor ds_t = g.virtual_tensor(square, CUDNN_DATA_BFLOAT16, transposed);
  g.reshape(ds, ds_t);
  per_kv_head(ds_t, q, dk);
  const Tensor k = g.virtual_tensor(dims_of(s, hk), CUDNN_DATA_BFLOAT16, strides_of(s.k));
  g.reshape(kt, k);
  const Tensor dq_accum =
      g.tensor(kDqAccum, CUDNN_DATA_FLOAT, dims_of(s, h), packed_strides(dims_of(s, h)));
  g.matmul(ds, k, dq_accum);
  g.pointwise(CUDNN_POINTWISE_IDENTITY, dq_accum, nullptr, nullptr, dq);
}

}  // namespace

struct FlashAttention::Plan {
  std::vector<std::unique_ptr<Descriptor>> descriptors;
  std::unique_ptr<Descriptor> graph, plan;
  int64_t workspace = 0;    // cuDNN's own
  int64_t softmax_sum = 0;  // backward: bytes of rowsum(dO * O)
  int64_t dq_accum = 0;     // backward: bytes of the fp32 dQ
};

FlashAttention::FlashAttention(DeviceMemory& memory, cudaStream_t stream)
    : memory_(memory), stream_(stream) {
  CUDNN_CHECK(cudnnCreate(&handle_));
  CUDNN_CHECK(cudnnSetStream(handle_, stream));
}

FlashAttention::~FlashAttention() {
  plans_.clear();
  if (handle_ != nullptr) cudnnDestroy(handle_);
}

const FlashAttention::Plan& FlashAttention::plan(const AttentionShape& shape, bool backward) {
  auto key = std::tuple(backward, shape.key());
  auto found = plans_.find(key);
  if (found != plans_.end()) return *found->second;
  if (shape.heads % shape.kv_heads != 0 || shape.head_dim % 8 != 0 || shape.head_dim > 256) {
    throw ExecutorError("flash attention: " + std::to_string(shape.heads) + " heads over " +
                        std::to_string(shape.kv_heads) + " key/value heads of size " +
                        std::to_string(shape.head_dim) +
                        "; expected heads divisible by key/value heads and a head size that is "
                        "a multiple of 8 up to 256");
  }

  auto p = std::make_unique<Plan>();
  GraphBuilder g(p->descriptors);
  if (backward) {
    build_backward(g, shape);
    const int64_t rows = shape.batch * shape.heads * shape.seq;
    p->softmax_sum = aligned(rows * 4);
    p->dq_accum = aligned(rows * shape.head_dim * 4);
  } else {
    build_forward(g, shape);
  }
  p->graph = std::make_unique<Descriptor>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  p->graph
      ->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g.ops().data(),
            static_cast<int64_t>(g.ops().size()))
      .set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, &handle_)
      .finalize();

  // The heuristics' engine configurations, best first; the first that finalizes is used.
  Descriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, *p->graph)
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode)
      .finalize();
  int64_t count = 0;
  CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                       CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  std::vector<std::unique_ptr<Descriptor>> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.push_back(std::make_unique<Descriptor>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    raw.push_back(configs.back()->get());
  }
  int64_t returned = 0;
  if (count > 0) {
    CUDNN_CHECK(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned,
                                         raw.data()));
  }
  std::string why = "the heuristics returned no engine";
  for (int64_t i = 0; i < returned && !p->plan; ++i) {
    auto plan = std::make_unique<Descriptor>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    cudnnBackendDescriptor_t config = raw[i];
    plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, &handle_)
        .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &config);
    const cudnnStatus_t status = cudnnBackendFinalize(plan->get());
    if (status != CUDNN_STATUS_SUCCESS) {
      why = cudnnGetErrorString(status);
      continue;
    }
    int64_t n = 0;
    CUDNN_CHECK(cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &n, &p->workspace));
    p->workspace = aligned(p->workspace);
    p->plan = std::move(plan);
  }
  if (!p->plan) {
    throw ExecutorError(std::string("flash attention: cuDNN has no engine for the ") +
                        (backward ? "backward" : "forward") + " pass of batch " +
                        std::to_string(shape.batch) + ", " + std::to_string(shape.heads) +
                        " heads, sequence " + std::to_string(shape.seq) + ", head size " +
                        std::to_string(shape.head_dim) + " (" + why + ", cuDNN " +
                        std::to_string(cudnnGetVersion()) + ")");
  }
  return *plans_.emplace(key, std::move(p)).first->second;
}

namespace {

void execute(cudnnHandle_t handle, const Descriptor& plan, std::vector<int64_t> uids,
             std::vector<void*> pointers, void* workspace) {
  Descriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(),
           static_cast<int64_t>(uids.size()))
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, pointers.data(),
           static_cast<int64_t>(pointers.size()))
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &workspace)
      .finalize();
  CUDNN_CHECK(cudnnBackendExecute(handle, plan.get(), pack.get()));
}

void* mutable_ptr(const void* p) { return const_cast<void*>(p); }

}  // namespace

void FlashAttention::forward(const AttentionShape& shape, const bf16* q, const bf16* k,
                             const bf16* v, bf16* o, float* lse) {
  const Plan& p = plan(shape, false);
  float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  float neg_inf = -std::numeric_limits<float>::infinity();
  DeviceBuffer workspace(memory_, MemoryCategory::kWorkspace, p.workspace, stream_);
  execute(handle_, *p.plan, {kQ, kK, kV, kO, kLse, kScale, kNegInf},
          {mutable_ptr(q), mutable_ptr(k), mutable_ptr(v), o, lse, &scale, &neg_inf},
          workspace.get());
}

void FlashAttention::backward(const AttentionShape& shape, const bf16* q, const bf16* k,
                              const bf16* v, const bf16* o, const bf16* dout, const float* lse,
                              bf16* dq, bf16* dk, bf16* dv) {
  const Plan& p = plan(shape, true);
  float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  float neg_inf = -std::numeric_limits<float>::infinity();
  float one = 1.0f;
  DeviceBuffer workspace(memory_, MemoryCategory::kWorkspace,
                         p.workspace + p.softmax_sum + p.dq_accum, stream_);
  char* base = workspace.as<char>();
  // Before cuDNN 9.6 the fused backward pass expects its fp32 dQ accumulator zeroed.
  if (cudnnGetVersion() < 90600) {
    CUDA_CHECK(cudaMemsetAsync(base + p.workspace + p.softmax_sum, 0, p.dq_accum, stream_));
  }
  execute(
      handle_, *p.plan,
      {kQ, kK, kV, kO, kDout, kLse, kDq, kDk, kDv, kScale, kNegInf, kOne, kSoftmaxSum, kDqAccum},
      {mutable_ptr(q), mutable_ptr(k), mutable_ptr(v), mutable_ptr(o), mutable_ptr(dout),
       mutable_ptr(lse), dq, dk, dv, &scale, &neg_inf, &one, base + p.workspace,
       base + p.workspace + p.softmax_sum},
      base);
}

}  // namespace mpsim::executor
