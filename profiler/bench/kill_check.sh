#!/usr/bin/env bash
# Robustness on a GPU machine: a profiled 2-rank program killed with SIGKILL mid-run keeps what the
# profiler had flushed (every 500 ms, one transaction per batch). Run from the repository root with
# build/ carried; writes to $OUT.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_env.sh"
"$mpsim" profile -o "$out/killed.sqlite" -- \
  "$sample" --world 2 --iterations 100000 > "$out/killed_run.log" 2>&1 &
profiler=$!
sleep 10
pkill -9 -f "nccl_gemm_sample --rank"
wait "$profiler"
echo "profiler exit status: $? (137 = the command was killed)"
tail -2 "$out/killed_run.log"
for f in "$out"/killed.rank*.sqlite; do
  echo "== $f"
  "$mpsim" stats "$f" 2>&1 | sed -n '1,5p'
done
