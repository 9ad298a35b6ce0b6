#!/bin/bash
# Evidence runs of the reference executor on the GPU machine (from the repository root, with the
# build tree carried): the learning curve on the shipped text, two profiled 2-GPU runs whose NVTX
# ranges carry the simulator's op names, and `mpsim train` on its defaults.
#   bash bench/executor_gpu_runs.sh build-dir out-dir
set -u
build=${1:-build}
out=${2:-/tmp/executor_gpu_runs}
mpsim="$build/tools/mpsim/mpsim"
export NCCL_NVLS_ENABLE=0
mkdir -p "$out/profile"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== learning curve: gpt-bytes-small on data/shakespeare.txt"
time "$mpsim" train --model gpt-bytes-small --gpus 1 --mbs 16 --gbs 16 --lr 2e-3 --min-lr 2e-4 \
  --warmup 20 --steps 1000 --seed 3 --log "$out/learning_curve.jsonl" > /dev/null
tail -n 1 "$out/learning_curve.jsonl"
for layout in "pp2:--pp 2 --schedule 1f1b" "tp2sp:--tp 2 --sp"; do
  name=${layout%%:*}
  echo "== profiled: $name"
  "$mpsim" profile -o "$out/profile/$name.sqlite" -- "$mpsim" train --model gpt-bytes-tiny --gpus 2 \
    ${layout#*:} --mbs 2 --gbs 4 --steps 2 --synthetic --log "$out/profile/$name.jsonl" > /dev/null
  ls -la "$out/profile" | grep "$name"
done
echo "== defaults: mpsim train --steps 3"
"$mpsim" train --steps 3 | cut -c1-200
