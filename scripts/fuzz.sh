#!/usr/bin/env bash
# fuzz.sh — builds a libFuzzer target with clang-14, ASan and UBSan, and runs it on its seeds:
#   loader: the checkpoint loader (tests/fuzz/fuzz_loader.c; seeds tests/fuzz/corpus/)
#   lora:   PEFT LoRA adapters on a test checkpoint (tests/fuzz/fuzz_lora.c; seeds tests/fuzz/corpus-lora/)
#   scripts/fuzz.sh [SECONDS] [loader|lora]   run for SECONDS (default 600) on one core (default loader)
#   BUILD_DIR=DIR scripts/fuzz.sh ...         build in DIR (default build-fuzz); the grown corpus stays in
#                                             DIR/fuzz-corpus[-lora], crashing inputs land in DIR/fuzz-artifacts/
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,7s/^# \{0,1\}//p' "$0"
    exit 0
fi
seconds=${1:-600}
target=${2:-loader}
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
    echo "fuzz.sh: SECONDS must be a whole number, not '$seconds'" >&2
    exit 2
fi
case $target in
loader) seeds=corpus dict=loader.dict grown=fuzz-corpus ;;
lora) seeds=corpus-lora dict=lora.dict grown=fuzz-corpus-lora ;;
*)
    echo "fuzz.sh: the target is loader or lora, not '$target'" >&2
    exit 2
    ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
if ! command -v clang-14 >/dev/null; then
    echo "fuzz.sh: clang-14 not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
fi

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPECSCOPE_FUZZ=ON -DSPECSCOPE_CUDA=OFF >/dev/null
cmake --build "$build" --target "fuzz_$target"
mkdir -p "$build/$grown" "$build/fuzz-artifacts"
exec "$build/tests/fuzz_$target" "$build/$grown" "$root/tests/fuzz/$seeds" \
    -dict="$root/tests/fuzz/$dict" -max_total_time="$seconds" \
    -artifact_prefix="$build/fuzz-artifacts/" -print_final_stats=1
