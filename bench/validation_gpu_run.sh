#!/bin/bash
# The validation run on the GPU machine (from the repository root, with the CUDA build tree's
# mpsim, injection library and calibration bench carried): calibrates the machine with the
# microbenchmarks alone, then runs `mpsim validate` over the committed configuration list, and
# packs the profile, the measurements and the report into one archive.
#   bash bench/validation_gpu_run.sh <build-dir> <out-dir> [validate flags, e.g. --only a,b]
# A second call with the same <out-dir> reuses the profile (set CALIBRATE=0 to skip it).
# CONFIGS names another configuration list (default docs/validation/configs.txt).
set -u
build=${1:?build dir}
out=${2:?out dir}
shift 2
mpsim="$build/tools/mpsim/mpsim"
export NCCL_NVLS_ENABLE=0
export LD_LIBRARY_PATH="/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
mkdir -p "$out/validation/runs"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
gpus=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
  *H200*) base=h200-sxm; name=h200-${gpus}gpu-measured ;;
  *) base=h100-sxm; name=h100-${gpus}gpu-measured ;;
esac
profile="$out/$name.textproto"
if [[ "${CALIBRATE:-1}" == 1 || ! -e "$profile" ]]; then
  echo "== calibrate ($base)"
  ( time "$mpsim" calibrate -o "$profile" --base "$base" ) 2>&1 | tee "$out/calibrate.log" | tail -25
  # The bench's database and host-side means, so that the fit can be run again elsewhere.
  kept=$(grep -o "kept in [^ ]*" "$out/calibrate.log" | head -1 | cut -d' ' -f3)
  if [[ -n "$kept" ]]; then
    cp "$kept/calib.jsonl" "$out/" && gzip -c "$kept/calib.sqlite" > "$out/calib.sqlite.gz"
  fi
fi
echo "== validate"
( time "$mpsim" validate --configs "${CONFIGS:-docs/validation/configs.txt}" --hw "$profile" \
    --out "$out/validation" --runs "$out/validation/runs" "$@" ) 2>&1 | tail -40
