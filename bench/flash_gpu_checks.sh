#!/bin/bash
# The fused-attention checks on a one-GPU machine, from binaries built on the development machine
# and carried as build-gpu/ (tools/mpsim/mpsim, profiler/cupti/libmpsim_inject.so,
# tests/executor/cuda/executor_gpu_tests, calibration/bench/calibration_bench): which cuDNN the
# executor loads, the flash-attention kernel and model tests against the float64 reference, the
# two attention cores side by side in training, and executor throughput with each core.
#   bash bench/flash_gpu_checks.sh <out-dir>
set -u
out=${1:?out dir}
mkdir -p "$out"
[[ -e build ]] || ln -s build-gpu build  # the tests have build/ paths compiled in
# ... absolute ones, of the development machine's checkout
[[ -e /work/main ]] || { mkdir -p /work && ln -s "$PWD" /work/main; }
mpsim=build/tools/mpsim/mpsim
export NCCL_NVLS_ENABLE=0
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
log="$out/flash_checks.log"
say() { echo "$@" | tee -a "$log"; }
say "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
say "== cuDNN the executor loads"
ldd "$mpsim" | grep -E "cudnn|cublas|nccl" | tee -a "$log"
ldconfig -p | grep -E "libcudnn.so" | head -3 | tee -a "$log"
say "== kernel, flash attention, model reference and training tests"
build/tests/executor/cuda/executor_gpu_tests \
  --gtest_filter='KernelsTest.*:FlashAttentionTest.*:ModelReferenceTest.*:ParallelEquivalenceTest.AttentionKinds*:ParallelEquivalenceTest.Recomputation*' \
  > "$out/executor_gpu_tests.log" 2>&1
grep -E "^\[  (PASSED|FAILED|  SKIPPED)|^\[==========\]|FAILED|Failure|error|got " "$out/executor_gpu_tests.log" | head -60 | tee -a "$log"
say "== throughput: each core, 10 steps (the last 5 averaged)"
for model in gpt2-355m gpt-1.3b; do
  for attention in flash unfused; do
    "$mpsim" train --model "$model" --mbs 8 --gbs 8 --steps 10 --attention "$attention" \
      --log "$out/speed-$model-$attention.jsonl" > /dev/null 2> "$out/speed-$model-$attention.err"
    python3 - "$out/speed-$model-$attention.jsonl" "$model $attention" <<'PY' | tee -a "$log"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    print(sys.argv[2], "no iterations"); sys.exit()
last = rows[-5:]
tps = sum(r["tokens_per_s"] for r in last) / len(last)
peak = max(r["peak_memory_bytes"]["total"] for r in last) / 2**30
print(f"{sys.argv[2]:<22} {tps:10.0f} tokens/s  mfu {last[-1]['mfu']:.3f}  peak {peak:.2f} GiB  loss {rows[-1]['loss']:.3f}")
PY
  done
done
