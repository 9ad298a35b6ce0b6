#!/usr/bin/env bash
# Profiles an unmodified 2-process PyTorch DDP loop under torchrun (the GPU machine has PyTorch)
# and summarises both ranks. Run from the repository root with build/ carried; writes to $OUT.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
"$mpsim" profile -o "$out/torch_ddp.sqlite" --merge -- \
  torchrun --standalone --nproc_per_node 2 profiler/bench/torch_ddp_step.py > "$out/torch_run.log" 2>&1 \
  || { tail -30 "$out/torch_run.log"; exit 1; }
tail -3 "$out/torch_run.log"
rm -f "$out"/torch_ddp.rank*.sqlite* "$out"/torch_ddp.sqlite-*
"$mpsim" stats "$out/torch_ddp.sqlite" > "$out/torch_stats.txt" 2>&1
head -25 "$out/torch_stats.txt"
grep -A12 "NVTX ranges" "$out/torch_stats.txt"
tail -5 "$out/torch_stats.txt"
