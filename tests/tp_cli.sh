#!/usr/bin/env bash
# tp_cli.sh — `specscope bench --tp-scaling` end to end on CPU ranks (demo pair):
#   --json has one "tp_scaling" entry per rank count, in order, each with a decode rate, speedup and
#   efficiency (the first entry's speedup is 1), and with --draft the plain and speculative
#   generation rates and their ratio at that rank count (null without a draft); a rank count that
#   does not divide the heads fails with exit 2 and one stderr line naming it; --tp 2 --json names
#   tp and the devices the ranks run on.
#   usage: tests/tp_cli.sh PATH/TO/specscope PATH/TO/models/demo
. "$(dirname "$0")/lib.sh"
usage_check 2 "PATH/TO/specscope PATH/TO/models/demo" "$@"
prog=$1 demo=$2
need_program "$prog"
[[ -f $demo/target/config.json && -f $demo/draft/config.json ]] || skip "no demo pair at $demo"
need_python3 "to read the JSON"
make_work tpcli
quick=(--backend cpu --prompt-len 16 -n 8 --repeats 1 --ctx 256 --json)

# check NAME FILE PYTHON-CONDITION over `pts`, the tp_scaling entries.
check() {
    local name=$1 file=$2 cond=$3 out
    if out=$(python3 - "$file" "$cond" 2>&1 <<'PY'
import json, sys
pts = json.load(open(sys.argv[1]))["tp_scaling"]
assert eval("(" + sys.argv[2] + ")"), (sys.argv[2], pts)
PY
    ); then ok; else fail "$name: $out"; fi
}

"$prog" bench --model "$demo/target" --draft "$demo/draft" --tp-scaling 1,2 "${quick[@]}" >"$work/spec.json" 2>"$work/err" ||
    fail "bench --tp-scaling 1,2 --draft: exit $? ($(cat "$work/err"))"
check "with a draft" "$work/spec.json" '[p["tp"] for p in pts] == [1, 2] and pts[0]["speedup"] == 1 and
    all(p["decode_tokens_per_s"] > 0 and abs(p["efficiency"] - p["speedup"] / p["tp"]) < 1e-9 and
        p["plain_tokens_per_s"] > 0 and p["spec_tokens_per_s"] > 0 and
        abs(p["spec_speedup"] - p["spec_tokens_per_s"] / p["plain_tokens_per_s"]) < 1e-9 for p in pts)'

"$prog" bench --model "$demo/target" --tp-scaling 2 "${quick[@]}" >"$work/plain.json" 2>"$work/err" ||
    fail "bench --tp-scaling 2: exit $? ($(cat "$work/err"))"
check "without a draft" "$work/plain.json" '[p["tp"] for p in pts] == [2] and pts[0]["decode_tokens_per_s"] > 0 and
    pts[0]["spec_speedup"] is None and pts[0]["spec_tokens_per_s"] is None and pts[0]["plain_tokens_per_s"] is None'

# --tp 2 on CPU ranks: the JSON names the rank count and the devices they read weights on (the
# decode ceiling is that many devices' copy bandwidth on CUDA; none is measured on the CPU).
"$prog" bench --model "$demo/target" --tp 2 "${quick[@]}" >"$work/tp2.json" 2>"$work/err" ||
    fail "bench --tp 2: exit $? ($(cat "$work/err"))"
if out=$(python3 - "$work/tp2.json" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tp"] == 2 and d["devices"] == 1 and d["forward"]["decode"][0]["bandwidth_ratio"] is None, d
PY
); then ok; else fail "bench --tp 2 --json: $out"; fi

# 4 ranks do not divide the demo target's 6 heads: refused with one line.
"$prog" bench --model "$demo/target" --tp-scaling 1,4 "${quick[@]}" >"$work/out" 2>"$work/err"
rc=$?
if [[ $rc -eq 2 && $(wc -l <"$work/err") -eq 1 ]] && grep -q "tp 4 does not divide" "$work/err"; then ok; else
    fail "bench --tp-scaling 1,4: exit $rc, stderr '$(cat "$work/err")'"
fi

finish
