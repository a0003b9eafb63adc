#!/usr/bin/env bash
# fuzz.sh — builds the checkpoint loader's libFuzzer target (tests/fuzz/fuzz_loader.c) with clang-14,
# ASan and UBSan, and runs it on the seeds in tests/fuzz/corpus/.
#   scripts/fuzz.sh [SECONDS]      run for SECONDS (default 600); one core
#   BUILD_DIR=DIR scripts/fuzz.sh  build in DIR (default build-fuzz); the grown corpus stays in
#                                  DIR/fuzz-corpus, crashing inputs land in DIR/fuzz-artifacts/
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,6s/^# \{0,1\}//p' "$0"
    exit 0
fi
seconds=${1:-600}
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
    echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
if ! command -v clang-14 >/dev/null; then
    echo "fuzz.sh: clang-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
fi

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECSCOPE_FUZZ=ON -DSPECSCOPE_CUDA=OFF >/dev/null
cmake --build "$build" --target fuzz_loader
mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts"
exec "$build/tests/fuzz_loader" "$build/fuzz-corpus" "$root/tests/fuzz/corpus" \
    -dict="$root/tests/fuzz/loader.dict" -max_total_time="$seconds" \
    -artifact_prefix="$build/fuzz-artifacts/" -print_final_stats=1
