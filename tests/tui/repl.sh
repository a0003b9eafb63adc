#!/usr/bin/env bash
# repl.sh — `specscope repl` fed from a pipe (and `specscope chat`, which falls back to it off a
# terminal): commands and their messages, a chat answer equal to `generate --chat`'s with its
# statistics line, /baseline's measured plain rate, /lua, /save, /quit, exit statuses, and no
# sanitizer report.
#   usage: tests/tui/repl.sh PATH/TO/specscope
set -u

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    echo "usage: $0 PATH/TO/specscope"
    exit 0
fi
if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 PATH/TO/specscope (an executable)" >&2
    exit 2
fi
prog=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
demo=$root/models/demo
if [[ ! -f $demo/target/config.json || ! -f $demo/draft/config.json ]]; then
    echo "SKIPPED: no demo pair ($demo/target/config.json is absent)"
    exit 77
fi
if ! command -v python3 >/dev/null; then
    echo "SKIPPED: python3 is needed"
    exit 77
fi
work=$(mktemp -d /tmp/ss_repl_XXXXXX)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=log_path=$work/asan:detect_leaks=1 UBSAN_OPTIONS=log_path=$work/ubsan:print_stacktrace=1
export XDG_STATE_HOME=$work/state
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
has() { grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks '$2'"; }

N=24
prompt="The Linux kernel"
models=(--model "$demo/target" --draft "$demo/draft" --backend cpu)
read -r first stats < <("$prog" generate "${models[@]}" --chat -n $N --k 2 -p "$prompt" --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
d = r["stats"]["draft"]
line = [l for l in r["text"].split("\n") if l.strip()][0]
print(line.strip()[:30].replace(" ", "\x01"), "k=2,\x01acceptance\x01%.3f\x01(%d/%d),\x01%.2f\x01tokens/step" % (
    d["accepted"] / d["proposed"], d["accepted"], d["proposed"], d["mean_accepted_length"]))')
first=${first//$'\x01'/ }
stats=${stats//$'\x01'/ }
[[ -n $stats ]] || { echo "FAIL: no reference from specscope generate"; exit 1; }

adapter=$root/tests/fixtures/lora/demo-r4
printf '%s\n' "/help" "/k 2" "$prompt" "/baseline" "/lua print(6*7)" '/lua error("boom")' "/lora on" \
    "/lora load $adapter 0.5" "/lora merge on" "/lora list" "/lora off" "/lora scale x" "/lora merge off" "/lora unload" \
    "/trace $work/r.json" "/bogus" "/k 99" "/easyspec 2" "/easyspec off" "/save $work/t.txt" "/quit" "never read" |
    "$prog" repl "${models[@]}" -n $N > "$work/out" 2> "$work/err"
status=$?
[[ $status -eq 0 ]] || fail "repl exit status $status"
has "$work/out" "/easyspec G|GROUPS|off [attn|layer]"
has "$work/out" "k = 2 from the next message"
has "$work/out" "$first"
has "$work/out" "[$N tokens"
has "$work/out" "$stats"
grep -qE "^plain decoding: [0-9.]+ tok/s over $N tokens; the last run's speedup: [0-9.]+x$" "$work/out" ||
    fail "no /baseline line in the output"
has "$work/out" "42"
has "$work/out" "EasySpec on: groups of 2 layers (attention in parallel)"
has "$work/out" "EasySpec off"
has "$work/out" "transcript saved to $work/t.txt (2 turns)"
has "$work/err" "boom"
has "$work/err" "/lora on: no adapter is loaded (/lora load DIR)"
has "$work/out" "LoRA demo-r4 loaded: r 4, s 1, scale 0.5, on; 56 projections, largest |s*BA|/|W0|"
has "$work/out" "* demo-r4 ($adapter): r 4, s 1, scale 0.5, on"
has "$work/out" "LoRA adapters merged into the weights: no cost per token"
has "$work/out" "LoRA demo-r4 switched off: r 4, s 1, scale 0.5, off, merged"
has "$work/out" "LoRA adapters unmerged: applied after each projection"
has "$work/err" "/lora scale: 'x' is not a number"
has "$work/out" "LoRA demo-r4 unloaded"
has "$work/out" "wrote $work/r.json: the session's timeline"
python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))["traceEvents"]; sys.exit(not any(x.get("cat") == "target" and x["args"].get("phase") == "verify" for x in e))' "$work/r.json" ||
    fail "/trace wrote no Chrome trace with verify spans"
has "$work/err" "unknown command '/bogus' (/help lists them)"
has "$work/err" "/k: '99' is not an integer in [0, 16]"
[[ $(grep -c "^\[$N tokens" "$work/out") -eq 1 ]] || fail "a line after /quit was run"
has "$work/t.txt" "### user"
has "$work/t.txt" "$first"

# `specscope chat` off a terminal is the REPL; bad options and folders exit 2 with one line.
echo "/help" | "$prog" chat "${models[@]}" > "$work/chat_out" 2>&1
[[ $? -eq 0 ]] || fail "chat from a pipe did not exit 0"
has "$work/chat_out" "/quit"
"$prog" repl --model "$work/missing" < /dev/null > /dev/null 2> "$work/e1"
[[ $? -eq 2 && $(wc -l < "$work/e1") -eq 1 ]] || fail "a missing model folder: want status 2 and one line, got: $(cat "$work/e1")"
"$prog" repl --lora "$work/x" < /dev/null > /dev/null 2> "$work/e2"
[[ $? -eq 2 && $(wc -l < "$work/e2") -eq 1 ]] || fail "--lora of a missing folder: want status 2 and one line, got: $(cat "$work/e2")"
has "$work/e2" "$work/x/adapter_config.json: not found"
echo "/lora list" | "$prog" repl "${models[@]}" --lora "$adapter:2" > "$work/l_out" 2>&1 || fail "repl --lora DIR:2 failed"
has "$work/l_out" "* demo-r4 ($adapter): r 4, s 1, scale 2, on"
"$prog" repl --k 99 < /dev/null > /dev/null 2> "$work/e3"
[[ $? -eq 2 ]] || fail "--k 99 should exit 2"
"$prog" repl --help > "$work/help" || fail "repl --help failed"
has "$work/help" "usage: specscope repl"

for report in "$work"/asan* "$work"/ubsan*; do
    [[ -s $report ]] || continue
    fail "sanitizer report $report:"
    cat "$report"
done
if ((failures)); then
    echo "--- stdout"; cat "$work/out"; echo "--- stderr"; cat "$work/err"
    echo "$failures checks failed"
    exit 1
fi
echo "repl: all checks passed"
