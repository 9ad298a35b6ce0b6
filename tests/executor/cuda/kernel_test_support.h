// What the kernel tests (tests/executor/cuda/<family>_test.cu) share: device arrays, random
// inputs with fixed seeds, bf16 conversions, tolerance checks, and the KernelsTest fixture, which
// skips the test without a GPU. The tests compare each kernel family (executor/cuda/kernels.h)
// with straightforward float64 loops on the host. Inputs are rounded to bf16 first, so the
// reference sees exactly the values the GPU sees; tolerances then cover only fp32 arithmetic and
// the final bf16 rounding of outputs (2^-8 relative). Sizes include odd widths (element-wise
// paths), row counts that leave partial blocks, and the widths the vectorised paths switch on.
// Failed CUDA calls throw ExecutorError (CUDA_CHECK), which fails the test.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "executor/cuda/cuda_check.h"
#include "executor/cuda/kernel_types.h"

namespace mpsim::executor::kernels {

template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)));
    CUDA_CHECK(cudaMemset(ptr_, 0, std::max<size_t>(n, 1) * sizeof(T)));
  }
  explicit DeviceArray(const std::vector<T>& v) : DeviceArray(v.size()) { upload(v); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(ptr_); }

  T* get() const { return ptr_; }
  void upload(const std::vector<T>& v) {
    CUDA_CHECK(cudaMemcpy(ptr_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> v(n_);
    CUDA_CHECK(cudaMemcpy(v.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

inline std::vector<float> randn(size_t n, uint32_t seed, double std = 1.0, double mean = 0.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(mean, std);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

inline std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16(v[i]);
  return out;
}
inline std::vector<double> to_double(const std::vector<bf16>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __bfloat162float(v[i]);
  return out;
}
inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// Every element within rtol * |want| + atol; reports the first few that are not.
inline void expect_close(const std::vector<double>& got, const std::vector<double>& want,
                         double rtol, double atol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) <= rtol * std::abs(want[i]) + atol) continue;
    if (bad < 5) ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
    ++bad;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " out of tolerance";
}
// Per-element tolerance (e.g. for sums, relative to the sum of absolute terms).
inline void expect_close(const std::vector<double>& got, const std::vector<double>& want,
                         const std::vector<double>& tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) <= tol[i]) continue;
    if (bad < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i]
                    << " (tolerance " << tol[i] << ")";
    ++bad;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " out of tolerance";
}

class KernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) GTEST_SKIP() << "no GPU";
  }
};

struct Shape {
  int64_t rows, cols;
};
inline std::string name(const Shape& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.cols);
}

// Rows and widths of the bias and activation tests: vectorised (1024, 3072, 8), element-wise (100,
// 5), a row count (515) that spreads over several column-sum chunks.
inline const std::vector<Shape> kBiasShapes = {{33, 1024}, {17, 100}, {515, 3072}, {4, 8}, {3, 5}};

}  // namespace mpsim::executor::kernels
