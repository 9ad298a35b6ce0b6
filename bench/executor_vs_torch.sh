#!/bin/bash
# The reference executor against plain PyTorch (eager and torch.compile) on one GPU, side by side
# in one run on the same GPU: the same GPT shapes, sequence length 1024, micro-batch 8, synthetic
# tokens. Run on the GPU machine from the repository root with the build tree carried:
#   bash bench/executor_vs_torch.sh build-dir out-dir
# Writes <model>-<runner>.json(l) into out-dir and prints one summary line per run. The executor's
# number is the median over iterations 3..12 (the first two include cuBLAS and NCCL warm-up).
set -u
build=${1:-build}
out=${2:-/tmp/executor_vs_torch}
python=${PYTHON:-/opt/torch/.venv/bin/python}
mkdir -p "$out"
summary() {  # file runner model
  "$python" - "$1" "$2" "$3" <<'PY'
import json, statistics, sys
path, runner, model = sys.argv[1:4]
lines = [json.loads(l) for l in open(path) if l.strip()]
if runner == "mpsim":
    steady = lines[2:] or lines
    tps = statistics.median(l["tokens_per_s"] for l in steady)
    mfu = statistics.median(l["mfu"] for l in steady)
    mem = max(l["peak_memory_bytes"]["total"] for l in steady)
else:
    tps, mfu, mem = lines[-1]["tokens_per_s"], lines[-1]["mfu"], lines[-1]["peak_memory_bytes"]
print(f"{model:10s} {runner:14s} tokens/s {tps:9.0f}  MFU {mfu*100:5.1f}%  peak memory {mem/2**30:6.2f} GiB")
PY
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1
for spec in "gpt2-355m 24 1024 16" "gpt-1.3b 24 2048 16"; do
  set -- $spec
  model=$1
  "$build/tools/mpsim/mpsim" train --model "$model" --gpus 1 --mbs 8 --gbs 8 --steps 12 --synthetic \
    --log "$out/$model-mpsim.jsonl" > /dev/null && summary "$out/$model-mpsim.jsonl" mpsim "$model"
  "$python" bench/torch_gpt.py --layers "$2" --hidden "$3" --heads "$4" --seq 1024 --vocab 50257 \
    --mbs 8 --steps 10 > "$out/$model-torch-eager.json" && summary "$out/$model-torch-eager.json" torch-eager "$model"
  "$python" bench/torch_gpt.py --layers "$2" --hidden "$3" --heads "$4" --seq 1024 --vocab 50257 \
    --mbs 8 --steps 10 --compile > "$out/$model-torch-compile.json" 2> "$out/$model-torch-compile.err" \
    && summary "$out/$model-torch-compile.json" torch-compile "$model"
done
