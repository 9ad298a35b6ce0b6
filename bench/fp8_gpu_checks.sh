#!/bin/bash
# The FP8 checks on a one-GPU machine, from binaries carried as build-gpu/ (as
# bench/flash_gpu_checks.sh): the FP8 kernel, GEMM and training tests, then the 300-step learning
# curves of gpt-bytes-small on the shipped text in BF16 and with --fp8 (the same seed and data),
# and the throughput of both on gpt2-355m and gpt-1.3b.
#   bash bench/fp8_gpu_checks.sh <out-dir>
set -u
out=${1:?out dir}
mkdir -p "$out"
[[ -e build ]] || ln -s build-gpu build
[[ -e /work/main ]] || { mkdir -p /work && ln -s "$PWD" /work/main; }
mpsim=build/tools/mpsim/mpsim
export NCCL_NVLS_ENABLE=0
log="$out/fp8_checks.log"
say() { echo "$@" | tee -a "$log"; }
say "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
build/tests/executor/cuda/executor_gpu_tests \
  --gtest_filter='KernelsTest.*Fp8*:LearningTest.Fp8*' > "$out/fp8_tests.log" 2>&1
grep -E "^\[ +(OK|FAILED|PASSED)|Failure|mean loss" "$out/fp8_tests.log" | head -30 | tee -a "$log"
say "== learning curves, 300 steps: gpt-bytes-small on data/shakespeare.txt"
for kind in bf16 fp8; do
  extra=""; [[ $kind == fp8 ]] && extra="--fp8"
  "$mpsim" train --model gpt-bytes-small --gpus 1 --mbs 16 --gbs 16 --lr 2e-3 --min-lr 2e-4 \
    --warmup 20 --steps 300 --seed 3 $extra --log "$out/curve-$kind.jsonl" > /dev/null 2>&1
  python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; t=r[-10:]; print(sys.argv[2], 'steps', len(r), 'mean loss of the last 10', round(sum(x['loss'] for x in t)/10,4))" "$out/curve-$kind.jsonl" $kind | tee -a "$log"
done
say "== throughput, 10 steps"
for model in gpt2-355m gpt-1.3b; do
  for kind in bf16 fp8; do
    extra=""; [[ $kind == fp8 ]] && extra="--fp8"
    "$mpsim" train --model $model --mbs 8 --gbs 8 --steps 10 --synthetic $extra \
      --log "$out/speed-$model-$kind.jsonl" > /dev/null 2>&1
    python3 -c "import json,sys,statistics; r=[json.loads(l) for l in open(sys.argv[1])][2:]; print(sys.argv[2], round(statistics.median(x['tokens_per_s'] for x in r)), 'tokens/s, peak', round(max(x['peak_memory_bytes']['total'] for x in r)/2**30,2), 'GiB')" "$out/speed-$model-$kind.jsonl" "$model $kind" | tee -a "$log"
  done
done
