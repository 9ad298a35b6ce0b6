#!/usr/bin/env bash
# Installs what mpsim needs from Debian 12 packages, builds it, and then
#   run:  simulates GPT-3 175B on 1024 H100s (the built-in defaults), prints the result table
#         and writes the Chrome trace out/gpt3-175b.trace.json;
#   test: runs the test suite (GPU tests skip without a GPU).
# Usage: bash tools/setup.sh run|test        (as root, or a user allowed to apt-get install)
set -euo pipefail

mode="${1:-run}"
case "$mode" in run|test) ;; *) echo "usage: $0 run|test" >&2; exit 2 ;; esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

packages=(build-essential cmake pkg-config protobuf-compiler libprotobuf-dev
          libboost-graph-dev libboost-program-options-dev nlohmann-json3-dev
          libsqlite3-dev libgtest-dev libgmock-dev libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# CUDA parts (later issues) build only where nvcc is found; the CUDA 13 toolkit sits here.
if [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH="/usr/local/cuda/bin:$PATH"; fi

jobs="$(nproc)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"

if [[ "$mode" == run ]]; then
  mkdir -p out
  ./build/tools/mpsim/mpsim simulate --trace out/gpt3-175b.trace.json
else
  ctest --test-dir build --output-on-failure -j"$jobs"
fi
