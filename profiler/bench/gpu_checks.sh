#!/usr/bin/env bash
# The profiler's checks on a machine with 2 GPUs, from a build made on the development machine
# and carried as build/ (see profiler/README.md). Writes logs, databases and traces to $OUT.
#   1. the GPU test (ctest label gpu): both ranks captured, kernels counted, NCCL classified,
#      NVTX ranges containing their kernels;
#   2. evidence for traces/: the 2-rank sample profiled, merged, summarised and exported;
#   3. overhead: the sample timed without and with the profiler, alternating, median step time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
nvidia-smi -L | tee "$out/gpus.txt"

echo "== gpu test"
build/tests/profiler/cupti/profiler_cupti_gpu_tests 2>&1 | tee "$out/gpu_test.log" | tail -5

echo "== evidence"
"$mpsim" profile -o "$out/nccl_gemm.sqlite" --merge -- "$sample" --world 2 --iterations 5 \
  > "$out/profile_run.log" 2>&1 || { tail -20 "$out/profile_run.log"; exit 1; }
tail -3 "$out/profile_run.log"
rm -f "$out"/nccl_gemm.rank*.sqlite* "$out"/nccl_gemm.sqlite-*
ls -la "$out"
"$mpsim" stats "$out/nccl_gemm.sqlite" > "$out/stats.txt" 2>&1 || true
head -40 "$out/stats.txt"
"$mpsim" trace "$out/nccl_gemm.sqlite" -o "$out/nccl_gemm.trace.json" 2>&1 || true

# A step closer to a training step's shape: 8 bf16 GEMMs of 8192^3 and a 64 MiB all-reduce.
step_args=(--world 2 --iterations 40 --size 8192 --gemms 8)
echo "== overhead (median ms per step over steps 5..39 of both ranks, 3 runs each, alternating)"
median_step() {  # reads "rank R iteration I: T ms" lines, prints the median T over I >= 5
  awk '/iteration/ { split($0, a, ": "); split(a[1], b, " "); if (b[4] + 0 >= 5) print a[2] + 0 }' |
    sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
for run in 1 2 3; do
  plain=$("$sample" "${step_args[@]}" 2>&1 | median_step)
  profiled=$("$mpsim" profile -o "$out/overhead.sqlite" -- "$sample" "${step_args[@]}" 2>&1 | median_step)
  echo "run $run: plain $plain ms, profiled $profiled ms" | tee -a "$out/overhead.txt"
done
rm -f "$out"/overhead*.sqlite*
