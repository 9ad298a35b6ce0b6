#!/usr/bin/env bash
# Profiles an unmodified 2-process PyTorch DDP loop under torchrun (the GPU machine has PyTorch)
# and summarises both ranks. Run from the repository root with build/ carried; writes to $OUT.
set -euo pipefail
root="$PWD"
out="${OUT:-/tmp/mpsim_gpu_out}"
mkdir -p "$out"
if [[ ! -e /work/main ]]; then mkdir -p /work && ln -s "$root" /work/main; fi
export LD_LIBRARY_PATH="/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
build/tools/mpsim/mpsim profile -o "$out/torch_ddp.sqlite" --merge -- \
  torchrun --standalone --nproc_per_node 2 profiler/bench/torch_ddp_step.py > "$out/torch_run.log" 2>&1 \
  || { tail -30 "$out/torch_run.log"; exit 1; }
tail -3 "$out/torch_run.log"
rm -f "$out"/torch_ddp.rank*.sqlite* "$out"/torch_ddp.sqlite-*
build/tools/mpsim/mpsim stats "$out/torch_ddp.sqlite" > "$out/torch_stats.txt" 2>&1
head -25 "$out/torch_stats.txt"
grep -A12 "NVTX ranges" "$out/torch_stats.txt"
tail -5 "$out/torch_stats.txt"
