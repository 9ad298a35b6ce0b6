// Deterministic parameter initialisation shared by the GPU executor and the CPU reference model.
// Every element of every parameter tensor is a pure function of (seed, parameter id, index of the
// element in the unsharded tensor), so a model split over any TP/PP layout starts from exactly the
// same weights as on one GPU, and the float64 reference can rebuild them on the host.
//
//   init_normal(seed, id, i): a standard normal sample (Box-Muller on two 24-bit uniforms drawn
//   from SplitMix64 of the triple); parameter_id(name): FNV-1a 64 of the parameter's name.
// Compiled by both nvcc (as __host__ __device__) and the host compiler. Nothing here fails.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

#if defined(__CUDACC__)
#define MPSIM_HOST_DEVICE __host__ __device__
#else
#define MPSIM_HOST_DEVICE
#endif

namespace mpsim::executor {

MPSIM_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in (0, 1], never 0 so log() is finite.
MPSIM_HOST_DEVICE inline double unit_uniform(uint64_t bits) {
  return (static_cast<double>(bits >> 40) + 1.0) * (1.0 / 16777216.0);
}

MPSIM_HOST_DEVICE inline float init_normal(uint64_t seed, uint64_t param_id, uint64_t index) {
  const uint64_t key = splitmix64(seed ^ splitmix64(param_id ^ splitmix64(index)));
  const double u1 = unit_uniform(key);
  const double u2 = unit_uniform(splitmix64(key));
  return static_cast<float>(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

constexpr uint64_t parameter_id(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace mpsim::executor
