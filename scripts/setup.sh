#!/usr/bin/env bash
# setup.sh — installs the Debian packages specscope needs (when missing) and builds it into build/
# (and a sanitizer build into build/asan, which the test suite runs too).
#   scripts/setup.sh && build/specscope                               runs the program
#   scripts/setup.sh && ctest --test-dir build --output-on-failure    runs the tests
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config python3 tmux
          libjansson-dev libpcre2-dev libopenblas-dev liblua5.4-dev libreadline-dev libncurses-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "setup.sh: missing packages; run:"
    echo "  sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

# The CUDA toolkit is optional: with nvcc the CUDA backend is built (and falls back to the CPU at
# run time when there is no GPU); without it, the CPU backend alone.
if [[ -z ${CUDACXX:-} && -x /usr/local/cuda/bin/nvcc ]]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSPECSCOPE_SANITIZE=ON >/dev/null
cmake --build build/asan -j"$jobs"
echo "setup.sh: built build/specscope (and build/asan with AddressSanitizer + UBSan)"
