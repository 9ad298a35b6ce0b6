#!/usr/bin/env bash
# The checks one GPU can run, from a build made on the development machine and carried as
# build-gpu/ (the binaries below, copied from build/): the executor's and the profiler's GPU
# tests (tests needing 2 GPUs skip), the 1-rank NCCL+GEMM sample under the profiler, the
# calibration bench's --quick set profiled and fitted, and a profiled `mpsim train` whose run
# mark `mpsim calibrate --from` learns from. Writes $OUT/gpu_checks.log and the files it names.
# Binaries: tools/mpsim/mpsim, profiler/cupti/{libmpsim_inject.so,nccl_gemm_sample},
# tests/executor/cuda/executor_gpu_tests, tests/profiler/cupti/profiler_cupti_gpu_tests,
# calibration/bench/calibration_bench. Evidence: docs/executor/one_gpu_checks.log.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root
[[ -e build ]] || ln -s build-gpu build  # the tests have build/ paths compiled in
source profiler/bench/gpu_env.sh
log="$out/gpu_checks.log"
say() { echo "$@" | tee -a "$log"; }
say "== $(date -u +%FT%TZ) $(nvidia-smi -L | head -1)"
say "== executor GPU tests"
build/tests/executor/cuda/executor_gpu_tests 2>&1 | tee "$out/executor_gpu_tests.log" | grep -E "^\[  (PASSED|FAILED|  SKIPPED)|^\[==========\]|FAILED" | tee -a "$log"
say "== profiler GPU tests"
build/tests/profiler/cupti/profiler_cupti_gpu_tests 2>&1 | tee "$out/profiler_gpu_tests.log" | grep -E "^\[  (PASSED|FAILED|  SKIPPED)|^\[==========\]|FAILED" | tee -a "$log"
say "== nccl_gemm_sample under the profiler (1 rank)"
"$mpsim" profile -o "$out/sample.sqlite" --merge -- "$sample" --world 1 --iterations 5 >"$out/sample.log" 2>&1; say "rc=$?"
"$mpsim" stats "$out/sample.sqlite" 2>&1 | head -25 | tee -a "$log"
say "== calibration bench --quick under the profiler, fitted"
"$mpsim" calibrate --quick -o "$out/quick.textproto" --base h200-sxm --gpus 1 >"$out/calibrate_quick.log" 2>&1; say "rc=$?"
tail -5 "$out/calibrate_quick.log" | tee -a "$log"
grep -c "^calibrated {" "$out/quick.textproto" | sed 's/^/calibrated tables: /' | tee -a "$log"
say "== profiled mpsim train: the run mark, then calibrate --from the run"
"$mpsim" profile -o "$out/train.sqlite" --merge -- "$mpsim" train --model gpt2-124m --steps 6 --mbs 4 --gbs 16 --synthetic >"$out/train.log" 2>&1; say "rc=$?"
tail -3 "$out/train.log" | tee -a "$log"
python3 - "$out/train.sqlite" <<'PY' 2>&1 | tee -a "$log"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (v,) in db.execute("select value from StringIds where value like 'mpsim/run/%' limit 2"):
    print("run mark:", v[:400])
print("nvtx ranges:", db.execute("select count(*) from NVTX_EVENTS").fetchone()[0],
      "kernels:", db.execute("select count(*) from CUPTI_ACTIVITY_KIND_KERNEL").fetchone()[0])
PY
"$mpsim" calibrate --from "$out/train.sqlite" --base h200-sxm -o "$out/from_run.textproto" >"$out/calibrate_run.log" 2>&1; say "rc=$?"
tail -5 "$out/calibrate_run.log" | tee -a "$log"
grep -E '^  op: ' "$out/from_run.textproto" | sort | uniq -c | head -20 | tee -a "$log"
rm -f "$out"/*.sqlite-* 
ls -la "$out" | tee -a "$log"
