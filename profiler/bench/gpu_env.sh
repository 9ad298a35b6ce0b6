# Sourced by the GPU check scripts (run from the repository root with build/ carried from the
# development machine): output folder, the build tree's absolute paths, CUPTI's library folder,
# and NVLink multicast off as the GPU machines require.
root="$PWD"
out="${OUT:-/tmp/mpsim_gpu_out}"
mkdir -p "$out"
# Tests have the build tree's absolute paths compiled in; give them the same place here.
if [[ ! -e /work/main ]]; then mkdir -p /work && ln -s "$root" /work/main; fi
export LD_LIBRARY_PATH="/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
mpsim=build/tools/mpsim/mpsim
sample=build/profiler/cupti/nccl_gemm_sample
