#!/usr/bin/env bash
# gpu-check.sh — the CUDA backend's checks and benchmarks on the GPU machine, from the repository
# root, with build/ built on the development machine and carried along:
#   1. the GPU tests (ctest -L gpu): kernels and ops against the CPU backend, models against the
#      CPU backend and the transformers fixtures, greedy speculative == plain greedy (and the model
#      tests again with the persistent kernel on);
#   2. the ceilings and the batch-1 GEMV against cuBLASLt (build/tests/bench_gpu_kernels), and a
#      look at the GEMV's machine code (16-byte loads: LDG.E.128);
#   3. `specscope bench --backend cuda --json` on random-weight checkpoints of real geometries
#      (scripts/make_random_model.py), again with PDL off, with the persistent kernel on, with the
#      ring GEMV off (SPECSCOPE_CUDA_RING=0), and
#      on llama-3.2-1b with fusion / graphs off (--no-ab: none of these A/B runs);
#   4. the 8B geometry at tp 2 against tp 1 (test_gpu_tp on it, then generate's tokens): both ranks
#      on one GPU, and with 2 or more GPUs one rank per GPU (NCCL, and the peer all-reduce); then
#      decode scaling over 1, 2 (4) ranks with prompt-lookup (ngram) speculative decoding's speedup
#      at each, and again with NCCL for every sum and with the peer all-reduce;
#   5. a summary table, printed last: a skipped GPU test reads SKIPPED (and fails the run), never
#      passed, and a test part that could not run here (tp 2 with one GPU) has a "not run" row.
# Full logs go to $OUT when it is set (else BUILD/gpu-check/). The whole run keeps under 8 minutes:
# each step gets what is left of the budget and later steps are skipped when it runs out.
#
# Usage: scripts/gpu-check.sh [--build DIR] [--presets "P1 P2 ..."] [--models DIR] [--no-ab]
#   presets: qwen2.5-0.5b llama-3.2-1b llama-3.1-8b (default: all three)
# Exit 0 when every test passed and every benchmark ran, 1 otherwise, 2 on bad usage.
set -u

BUILD=build
PRESETS="qwen2.5-0.5b llama-3.2-1b llama-3.1-8b"
MODELS=/tmp/specscope-models
AB=1
BUDGET=460 # seconds: 8 minutes less a margin for the summary
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --presets) PRESETS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --no-ab) AB=0; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -f CMakeLists.txt ] && [ -d engine ] || { echo "gpu-check.sh: run it from the repository root" >&2; exit 2; }

START=$(date +%s)
LOGS=${OUT:-$BUILD/gpu-check}
mkdir -p "$LOGS" "$MODELS"
LOG=$LOGS/gpu-check.log
: >"$LOG"
FAILED=0
declare -a SUMMARY

note() { echo "[$(date +%H:%M:%S) +$(($(date +%s) - START))s] $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }
# run SECONDS CMD...: output to the log; 124 when it ran out of time.
run() {
    local t=$1
    shift
    [ "$t" -gt 0 ] || return 124
    timeout "$t" "$@" >>"$LOG" 2>&1
}

# ---------------------------------------------------------------- the machine and the build
# Libraries carried beside the binaries (the GPU machine lacks jansson, pcre2, lua, openblas).
[ -d "$BUILD/lib" ] && export LD_LIBRARY_PATH="$PWD/$BUILD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
note "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader 2>&1)"
if ! "$BUILD/specscope" --help >/dev/null 2>&1; then
    note "the carried $BUILD/specscope does not run here ($(ldd "$BUILD/specscope" 2>&1 | grep -m3 'not found' | tr '\n' ' ')); building in build-gpu"
    if run "$(left)" cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 &&
        run "$(left)" cmake --build build-gpu -j"$(nproc)"; then
        BUILD=build-gpu
    else
        note "FAILED: no usable build (see $LOG)"
        exit 1
    fi
fi
SUMMARY+=("build|$BUILD")

# ---------------------------------------------------------------- tests
note "ctest -L gpu"
ctest_ok=0
run "$(left)" ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 120 && ctest_ok=1
# Every test's own output (ctest keeps it for passing tests too): skips and parts not run are named.
TESTLOG="$BUILD/Testing/Temporary/LastTest.log"
[ -f "$TESTLOG" ] && cat "$TESTLOG" >>"$LOG"
if [ "$ctest_ok" = 0 ]; then
    SUMMARY+=("gpu tests|FAILED (see gpu-check.log)")
    FAILED=1
elif [ -f "$TESTLOG" ] && grep -q "^SKIPPED:" "$TESTLOG"; then
    SUMMARY+=("gpu tests|SKIPPED: $(grep -m1 '^SKIPPED:' "$TESTLOG" | cut -c10-) (not passed)")
    FAILED=1
else
    SUMMARY+=("gpu tests|passed")
fi
if [ -f "$TESTLOG" ]; then
    while IFS= read -r line; do SUMMARY+=("not run|${line#NOT RUN: }"); done < <(grep '^NOT RUN:' "$TESTLOG")
fi
grep -q "CHECK failed" "$LOG" && note "some checks failed: grep 'CHECK failed' $LOG"
# The models again with the opt-in persistent kernel: its decode steps and the register kernel's
# verification batches must keep greedy speculative decoding on plain greedy's tokens.
note "test_gpu_model with SPECSCOPE_CUDA_PERSISTENT=1"
if run "$(left)" env SPECSCOPE_CUDA_PERSISTENT=1 "$BUILD/tests/test_gpu_model"; then
    SUMMARY+=("persistent|test_gpu_model passed with SPECSCOPE_CUDA_PERSISTENT=1")
else
    SUMMARY+=("persistent|test_gpu_model FAILED with SPECSCOPE_CUDA_PERSISTENT=1 (see gpu-check.log)")
    FAILED=1
fi

# ---------------------------------------------------------------- kernels
GEMV_SYM=_ZN2sk11gemv_kernelILi0ELi1ELi1EEEvNS_11gemv_paramsE # gemv_kernel<GEMV_ROWS, 1, team 1>
if command -v cuobjdump >/dev/null && [ -x "$BUILD/tests/test_gpu_ops" ]; then
    wide=$(cuobjdump --dump-sass --function "$GEMV_SYM" "$BUILD/tests/test_gpu_ops" 2>>"$LOG" | grep -c 'LDG.E.128')
    arch=$(cuobjdump --list-elf "$BUILD/tests/test_gpu_ops" 2>/dev/null | grep -o 'sm_[0-9]*' | sort -u | tr '\n' ' ')
    note "GEMV machine code: $wide 16-byte global loads (LDG.E.128); ELF targets: $arch"
    SUMMARY+=("GEMV SASS|$wide x LDG.E.128, targets $arch")
    [ "${wide:-0}" -gt 0 ] || FAILED=1 # no 16-byte loads (or the symbol moved): look before trusting the bench
fi
note "bench_gpu_kernels"
t=$(left)
if [ "$t" -gt 0 ] && timeout "$t" "$BUILD/tests/bench_gpu_kernels" >"$LOGS/kernels.txt" 2>>"$LOG"; then :; else
    SUMMARY+=("kernel bench|FAILED")
    FAILED=1
fi
cat "$LOGS/kernels.txt" >>"$LOG"

# ---------------------------------------------------------------- models
bench() { # preset label [ENV=VALUE...]
    local preset=$1 label=$2
    shift 2
    local out="$LOGS/bench-$preset.json"
    [ "$label" = base ] || out="$LOGS/bench-ab.jsonl"
    local t
    t=$(left)
    [ "$t" -gt 20 ] || { note "skipped bench $preset $label: out of time"; return 1; }
    note "bench $preset ($label)"
    if env "$@" timeout "$t" "$BUILD/specscope" bench --backend cuda --ctx 8192 --model "$MODELS/$preset" --json >"$LOGS/.bench.tmp" 2>>"$LOG"; then
        if [ "$label" = base ]; then cp "$LOGS/.bench.tmp" "$out"; else
            python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); o["label"]=sys.argv[2]; print(json.dumps(o))' \
                "$LOGS/.bench.tmp" "$preset $label" >>"$out"
        fi
        cat "$LOGS/.bench.tmp" >>"$LOG"
    else
        note "FAILED: bench $preset ($label)"
        FAILED=1
    fi
    rm -f "$LOGS/.bench.tmp"
}

for preset in $PRESETS; do
    if [ ! -f "$MODELS/$preset/config.json" ]; then
        need=30
        [ "$preset" = llama-3.1-8b ] && need=150
        if [ "$(left)" -lt "$need" ]; then
            note "skipped $preset: $(left)s left, making it takes about ${need}s"
            SUMMARY+=("$preset|skipped (time)")
            continue
        fi
        note "making $preset"
        # The demo tokenizer beside the random weights: text prompts for bench's generation rows.
        if ! PYTHONUNBUFFERED=1 run "$(left)" python3 scripts/make_random_model.py --preset "$preset" --out "$MODELS/$preset" \
            --tokenizer models/demo/target; then
            note "FAILED: make_random_model.py --preset $preset"
            SUMMARY+=("$preset|model not made")
            FAILED=1
            continue
        fi
    fi
    bench "$preset" base
    [ "$AB" = 1 ] || continue
    bench "$preset" no-pdl SPECSCOPE_CUDA_PDL=0
    bench "$preset" persistent SPECSCOPE_CUDA_PERSISTENT=1
    bench "$preset" no-ring SPECSCOPE_CUDA_RING=0
    if [ "$preset" = llama-3.2-1b ]; then
        bench "$preset" no-fuse SPECSCOPE_CUDA_FUSE=0
        bench "$preset" no-graphs SPECSCOPE_CUDA_GRAPHS=0
    fi
done

# ---------------------------------------------------------------- several GPUs (docs/tp.md)
# The 8B geometry (4 layers of it, to keep the CPU reference short) split over 2 ranks against 1
# rank: test_gpu_tp on it (logits of a prefill and 8
# greedy decode steps, through the GEMV and through cuBLASLt; both ranks on one GPU, and with 2 or
# more GPUs one rank per GPU through NCCL and through the peer kernel), then 32 greedy tokens of
# `generate` at tp 2 against tp 1 (reported, not judged: its prefill rounds activations to bf16, so
# a near tie may go the other way; docs/tp.md), and with 2 or more GPUs decode scaling over 1, 2
# (and 4) ranks. NVLink multicast stays off (NCCL_NVLS_ENABLE=0).
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
export NCCL_NVLS_ENABLE=0
TPMODEL=$MODELS/llama-3.1-8b-4layers
if [ ! -f "$TPMODEL/config.json" ] && ! PYTHONUNBUFFERED=1 run "$(left)" python3 scripts/make_random_model.py \
    --preset llama-3.1-8b --layers 4 --out "$TPMODEL"; then
    note "FAILED: make_random_model.py --preset llama-3.1-8b --layers 4"
fi
ids=$(seq 1000 1063 | tr '\n' ' ')
# greedy TP [VAR=VALUE...]: the 32 greedy tokens at that tp, under that environment.
greedy() {
    local tp=$1
    shift
    env "$@" "$BUILD/specscope" generate --backend cuda --model "$TPMODEL" --tp "$tp" --prompt-ids "$ids" \
        -n 32 --temp 0 --json 2>>"$LOG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"])'
}
# same_as_tp1 LABEL [VAR=VALUE...]: how many of tp 2's first tokens (under that environment) are tp 1's.
same_as_tp1() {
    local label=$1 got
    shift
    got=$(greedy 2 "$@")
    echo "$label: tp 1 $tp1 / tp 2 $got" >>"$LOG"
    SUMMARY+=("$label|$(python3 -c 'import sys
a, b = (eval(x) if x.strip() else [] for x in sys.argv[1:3])
n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
print("no tokens (see gpu-check.log)" if not a or not b else "all 32 tokens identical to tp 1" if a == b else
      "first %d of 32 tokens identical to tp 1" % n)' "$tp1" "$got")")
}
if [ -f "$TPMODEL/config.json" ]; then
    note "test_gpu_tp on $TPMODEL"
    if run "$(left)" env SPECSCOPE_TP_TEST_MODEL="$TPMODEL" "$BUILD/tests/test_gpu_tp"; then
        SUMMARY+=("tp 2 vs tp 1, 8B geometry, 4 layers|passed (test_gpu_tp: prefill and 8 decode steps, GEMV and cuBLAS paths)")
    else
        SUMMARY+=("tp 2 vs tp 1, 8B geometry, 4 layers|FAILED (test_gpu_tp; see gpu-check.log)")
        FAILED=1
    fi
    tp1=$(greedy 1)
    same_as_tp1 "tp 2 generate, one GPU" SPECSCOPE_TP_DEVICES=1
fi
if [ "${gpus:-0}" -ge 2 ] && [ -f "$TPMODEL/config.json" ] && [ -f "$MODELS/llama-3.1-8b/config.json" ]; then
    same_as_tp1 "tp 2 generate, two GPUs" SPECSCOPE_TP_COMM=nccl
    same_as_tp1 "tp 2 generate, NCCL only" SPECSCOPE_TP_COMM=nccl SPECSCOPE_TP_ONESHOT=0
    same_as_tp1 "tp 2 generate, peer" SPECSCOPE_TP_COMM=peer
    list=1,2
    [ "$gpus" -ge 4 ] && list=1,2,4
    # scaling LABEL FILE [VAR=VALUE...] -- BENCH ARGS: one --tp-scaling run on the 8B geometry under
    # that environment, its row in the summary (with the ngram speculative speedup when measured).
    scaling() {
        local label=$1 file=$LOGS/$2
        shift 2
        local envs=()
        while [ "$1" != "--" ]; do envs+=("$1"); shift; done
        shift
        note "bench --tp-scaling $list on llama-3.1-8b ($gpus GPUs) ${envs[*]}"
        if [ "$(left)" -gt 0 ] && env "${envs[@]}" timeout "$(left)" "$BUILD/specscope" bench --backend cuda \
            --model "$MODELS/llama-3.1-8b" --tp-scaling "$list" "$@" --json >"$file" 2>>"$LOG"; then
            SUMMARY+=("$label|$(python3 -c 'import json,sys; print(", ".join("tp %d %.1f tok/s (%.0f%%)%s" % (p["tp"], p["decode_tokens_per_s"], 100 * p["efficiency"], ", ngram speculative %.2fx" % p["spec_speedup"] if p["spec_speedup"] else "") for p in json.load(open(sys.argv[1]))["tp_scaling"]))' "$file")")
        else
            SUMMARY+=("$label|FAILED (see gpu-check.log)")
            FAILED=1
        fi
    }
    # The default (small sums by the one-shot all-reduce, kernels/allreduce.cu), then in the same
    # run NCCL for every sum and the peer all-reduce's one kernel: what the two all-reduces of a
    # layer cost each way (docs/tp.md).
    scaling "tp scaling" bench-tp.json -- --draft ngram
    scaling "tp scaling, NCCL only" bench-tp-nccl.json SPECSCOPE_TP_ONESHOT=0 --
    scaling "tp scaling, peer" bench-tp-peer.json SPECSCOPE_TP_COMM=peer --
    # The 70B geometry, 16 of its 80 layers (~30 GB: the whole model does not fit this disk), when
    # time is left: decode scaling on its wider layers.
    M70=$MODELS/llama-3.1-70b-16layers
    if [ "$(left)" -gt 200 ] && { [ -f "$M70/config.json" ] || PYTHONUNBUFFERED=1 run "$(left)" python3 \
        scripts/make_random_model.py --preset llama-3.1-70b --layers 16 --out "$M70"; }; then
        note "bench --tp-scaling $list on the 70B geometry, 16 layers"
        if timeout "$(left)" "$BUILD/specscope" bench --backend cuda --model "$M70" --tp-scaling "$list" --repeats 3 \
            --json >"$LOGS/bench-tp-70b.json" 2>>"$LOG"; then
            SUMMARY+=("tp scaling, 70B x16|$(python3 -c 'import json,sys; print(", ".join("tp %d %.1f tok/s (%.0f%%)" % (p["tp"], p["decode_tokens_per_s"], 100 * p["efficiency"]) for p in json.load(open(sys.argv[1]))["tp_scaling"]))' "$LOGS/bench-tp-70b.json")")
        else
            SUMMARY+=("tp scaling, 70B x16|FAILED (see gpu-check.log)")
            FAILED=1
        fi
    else
        SUMMARY+=("tp scaling, 70B x16|not run ($(left)s left)")
    fi
else
    SUMMARY+=("several GPUs|not run: ${gpus:-0} GPU(s) here")
fi

# ---------------------------------------------------------------- summary
{
    echo
    echo "==== gpu-check summary ($(($(date +%s) - START)) s) ===="
    for row in "${SUMMARY[@]}"; do printf '%-14s %s\n' "${row%%|*}" "${row#*|}"; done
    [ -s "$LOGS/kernels.txt" ] && cat "$LOGS/kernels.txt"
    python3 - "$LOGS" <<'EOF'
import glob, json, os, sys
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "bench-*.json"))) + sorted(glob.glob(os.path.join(sys.argv[1], "bench-ab.jsonl"))):
    with open(path) as f:
        objs = [json.loads(l) for l in f if l.strip()] if path.endswith(".jsonl") else [json.load(f)]
    for o in objs:
        label = o.get("label") or os.path.basename(path)[6:-5]
        fw = o.get("forward", {})
        dec = {d["context"]: d for d in fw.get("decode", [])}
        def d(ctx, key, scale=1.0, fmt="%.1f"):
            v = dec.get(ctx, {}).get(key)
            return fmt % (v * scale) if v is not None else "-"
        gemm = fw.get("prefill_gemm_ratio")
        rows.append((label, d(128, "tokens_per_s"), d(128, "bandwidth_ratio", 100, "%.1f%%"),
                     d(4096, "tokens_per_s"), d(4096, "bandwidth_ratio", 100, "%.1f%%"),
                     "%.0f" % fw.get("prefill_tokens_per_s", 0), "%.1f%%" % (100 * gemm) if gemm else "-",
                     "%.2f" % ((o.get("copy_bytes_per_s") or 0) / 1e12),
                     "%.0f" % ((o.get("gemm_flops_per_s") or 0) / 1e12)))
if rows:
    head = ("model", "tok/s@128", "of copy BW", "tok/s@4096", "of copy BW", "prefill tok/s", "of GEMM", "copy TB/s", "GEMM TF/s")
    print("%-26s %10s %11s %11s %11s %14s %8s %10s %10s" % head)
    for r in rows:
        print("%-26s %10s %11s %11s %11s %14s %8s %10s %10s" % r)
EOF
    [ "$FAILED" = 0 ] && echo "result: OK" || echo "result: FAILED (details in $LOG)"
} | tee "$LOGS/summary.txt"
exit "$FAILED"
