#!/usr/bin/env bash
# gpu-demo-spec.sh — speculative decoding of the bundled demo pair on the GPU, from the repository
# root with build/ built: plain against speculative decoding (specscope bench), k = 1..8 with EasySpec
# off and on (scripts/sweep_k.lua), and EasySpec group sizes (scripts/easyspec_groups.lua).
# Output and CSVs go to $OUT when it is set (else build/gpu-demo-spec/).
# Usage: scripts/gpu-demo-spec.sh [--backend cuda|cpu]   Exit 0 when every step ran, 1 otherwise.
set -u
BACKEND=cuda
case "${1:-}" in
--backend) BACKEND=${2:?--backend needs a value} ;;
-h | --help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "gpu-demo-spec.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
[ -x build/specscope ] || { echo "gpu-demo-spec.sh: build/specscope is missing (run scripts/setup.sh)" >&2; exit 2; }
LOGS=${OUT:-build/gpu-demo-spec}
mkdir -p "$LOGS"
[ -d build/lib ] && export LD_LIBRARY_PATH="$PWD/build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
failed=0
step() { # title command...
    echo "== $1"
    shift
    "$@" || { echo "FAILED: $*"; failed=1; }
}
{
    step "bench, k = 4" build/specscope bench --backend "$BACKEND" --model models/demo/target --draft models/demo/draft
    step "bench, k = 4, EasySpec G = 2 (layer)" build/specscope bench --backend "$BACKEND" --model models/demo/target \
        --draft models/demo/draft --easyspec 2 --easyspec-mode layer
    step "sweep_k, EasySpec off" build/specscope run scripts/sweep_k.lua --backend "$BACKEND" --out "$LOGS/k.csv"
    step "sweep_k, EasySpec G = 2" build/specscope run scripts/sweep_k.lua --backend "$BACKEND" --easyspec 2 \
        --out "$LOGS/k-easyspec2.csv"
    step "easyspec_groups (attn)" build/specscope run scripts/easyspec_groups.lua --backend "$BACKEND" \
        --out "$LOGS/easyspec-attn.csv"
    step "easyspec_groups (layer)" build/specscope run scripts/easyspec_groups.lua --backend "$BACKEND" --mode layer \
        --out "$LOGS/easyspec-layer.csv"
    exit "$failed"
} 2>&1 | tee "$LOGS/gpu-demo-spec.txt"
exit "${PIPESTATUS[0]}"
