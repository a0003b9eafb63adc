#!/usr/bin/env bash
# tui_tmux.sh — drives `specscope chat` on the demo pair inside tmux (send-keys, capture-pane) and
# checks what a person would see: every pane title; the answer to a prompt, equal to what
# `specscope generate --chat` produces for it; the acceptance figures of that run; a resize to
# 80x24 and back; `/k 2` changing the statistics (again equal to generate's); Ctrl-C stopping a
# generation but not the program; the timeline pane's phase rows of the last step and `/trace FILE`
# writing a Chrome trace with the run's host spans; `/save`; the history file; `/quit` with exit
# status 0; and, in a sanitizer build, no ASan/UBSan report.
#   usage: tests/tui/tui_tmux.sh PATH/TO/specscope
#   TUI_CAPTURE_DIR=DIR also keeps the screens it captured there (docs/screenshots come from it).
set -u

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    echo "usage: $0 PATH/TO/specscope"
    exit 0
fi
if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 PATH/TO/specscope (an executable)" >&2
    exit 2
fi
prog=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
demo=$root/models/demo
if [[ ! -f $demo/target/config.json || ! -f $demo/draft/config.json ]]; then
    echo "SKIPPED: no demo pair ($demo/target/config.json is absent)"
    exit 77
fi
for tool in tmux python3; do
    if ! command -v $tool >/dev/null; then
        echo "SKIPPED: $tool is needed"
        exit 77
    fi
done

work=$(mktemp -d /tmp/ss_tui_XXXXXX)
sock=specscope_tui_$$ # a server of our own: never touches a person's tmux
tmx() { tmux -L "$sock" -f /dev/null "$@"; }
cleanup() {
    tmx kill-server 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

export LC_ALL=C.UTF-8
N=32
prompt="The Linux kernel"
models=(--model "$demo/target" --draft "$demo/draft" --backend cpu)

# The reference: the same first chat turn through `generate --chat`, with k 4 (default) and k 2.
reference() { # K -> "expected-text-prefix<TAB>accepted/proposed<TAB>acceptance<TAB>mean length"
    "$prog" generate "${models[@]}" --chat -n $N --k "$1" -p "$prompt" --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
lines = [l.strip() for l in r["text"].split("\n") if l.strip()]
d = r["stats"]["draft"]
print("%s\t(%d/%d)\t%.3f\t%.2f" % (lines[0][:30] if lines else "", d["accepted"], d["proposed"],
      d["accepted"] / d["proposed"], d["mean_accepted_length"]))'
}
IFS=$'\t' read -r text4 frac4 acc4 len4 < <(reference 4)
IFS=$'\t' read -r text2 frac2 acc2 len2 < <(reference 2)
if [[ -z ${frac4:-} || -z ${frac2:-} || -z ${text4:-} ]]; then
    echo "FAIL: specscope generate gave no reference (k 4: '${frac4:-}', k 2: '${frac2:-}')"
    exit 1
fi
echo "reference: k 4 -> '$text4' $frac4 $acc4, mean $len4; k 2 -> $frac2 $acc2"
[[ "$frac4" != "$frac2" ]] || echo "note: k 2 and k 4 accept the same counts on this prompt"

mkdir -p "$work/state"
san="ASAN_OPTIONS=log_path=$work/asan:detect_leaks=1 UBSAN_OPTIONS=log_path=$work/ubsan:print_stacktrace=1"
tmx new-session -d -x 120 -y 40 \
    "cd '$work' && env LC_ALL=C.UTF-8 XDG_STATE_HOME='$work/state' $san '$prog' chat ${models[*]} -n $N; echo EXIT=\$? > '$work/exit'; sleep 60"

screen() { tmx capture-pane -p > "$work/screen"; }
keep() { [[ -n ${TUI_CAPTURE_DIR:-} ]] && mkdir -p "$TUI_CAPTURE_DIR" && cp "$work/screen" "$TUI_CAPTURE_DIR/$1.txt"; return 0; }
wait_for() { # FIXED-STRING SECONDS [grep flag]: polls the screen until it shows the string
    local deadline=$((SECONDS + $2)) how=${3:--F}
    while ((SECONDS < deadline)); do
        screen
        grep -q "$how" -- "$1" "$work/screen" && return 0
        [[ -f $work/exit ]] && break
        sleep 0.2
    done
    fail "timed out waiting for '$1'; the screen was:"
    cat "$work/screen"
    return 1
}
shows() { grep -qF -- "$1" "$work/screen" || fail "the screen lacks '$1'"; }
titles() {
    for t in chat speculation timeline lora console; do shows "─ $t ─"; done
}
keys() { tmx send-keys "$@"; }

wait_for "─ console ─" 60 || exit 1
titles
shows "no step yet: send a message"
shows "no adapter loaded: /lora load DIR [SCALE]"

# 1. A prompt and its answer, with the statistics of that run.
keys "$prompt" Enter
wait_for "$frac4" 120
wait_for " idle " 30
shows "> $prompt"
shows "$text4"
shows "acceptance"
shows "$acc4 $frac4"
shows "$len4 tokens per target step"
shows "k 4 · $N tokens"
shows "speedup    not measured yet"
# The timeline pane: the last step's phases with their times, and on the CPU its layers.
grep -qE "│ *draft +[·█▏▎▍▌▋▊▉]+ +[0-9]+\.[0-9]{2} ms" "$work/screen" || fail "the timeline pane has no draft row with ms"
grep -qE "│ *verify +[·█▏▎▍▌▋▊▉]+ +[0-9]+\.[0-9]{2} ms" "$work/screen" || fail "the timeline pane has no verify row with ms"
titles
keep 01-answer-120x40
# Zoomed (F4), the timeline shows every row: calibrate too, and the verify phase's CPU time per layer
# of the 8-layer target.
keys F4
wait_for "verify CPU per layer: 8 layers" 10
grep -qE "│ *calibrate +[·█▏▎▍▌▋▊▉]+ +[0-9]+\.[0-9]{2} ms" "$work/screen" || fail "the zoomed timeline has no calibrate row"
shows "(last of the run), wall"
keep 01-timeline-zoomed
keys F4
wait_for "─ chat ─" 10
# Colours: draft tokens green, target tokens yellow (the escape sequences tmux keeps with -e).
tmx capture-pane -e -p > "$work/colour"
grep -qF $'\e[32m' "$work/colour" && grep -qF $'\e[33m' "$work/colour" || fail "no draft/target colours on the screen"
[[ $(wc -L < "$work/screen") -le 120 ]] || fail "the screen is wider than 120 columns"

# 2. Resizes: 80x24 still shows every pane, then back.
tmx resize-window -x 80 -y 24
sleep 0.5
wait_for "─ lora ─" 10
titles
[[ $(wc -l < "$work/screen") -le 24 && $(wc -L < "$work/screen") -le 80 ]] || fail "the 80x24 screen overflows"
keep 02-resized-80x24
tmx resize-window -x 120 -y 40
sleep 0.5
wait_for "─ timeline ─" 10
titles

# 3. /k 2 on a fresh conversation: the next run's statistics are generate's for k 2.
keys "/clear" Enter
wait_for "the conversation is cleared" 10
keys "/k 2" Enter
wait_for "k = 2 from the next message" 10
shows "next run   k 2 ·"
keys "$prompt" Enter
wait_for "$frac2" 120
wait_for " idle " 30
shows "$acc2 $frac2"
shows "$len2 tokens per target step"
shows "k 2 · $N tokens"
shows "$text2"
if grep -qF -- "  pos 3 " "$work/screen"; then fail "k 2 still shows a third draft position"; fi
keep 03-k2

# 4. Zoom on the speculation pane and back; the help overlay; unavailable commands say so.
keys F3
wait_for "^┌─ speculation .*┐$" 10 -E || fail "F3 did not zoom the speculation pane to the full width"
keep 04-zoom-speculation
keys F3
wait_for "─ chat ─" 10
keys F1
wait_for "help: any key closes" 10
keep 05-help
keys Escape
sleep 0.3
keys "/trace $work/x.json" Enter
wait_for "wrote $work/x.json" 10
python3 - "$work/x.json" <<'PY' || fail "/trace wrote no Chrome trace with the runs' draft/verify spans"
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
spans = [e for e in events if e.get("ph") == "X" and e.get("pid") == 1]
phases = {(e["cat"], e["args"].get("phase")) for e in spans}
need = {("target", "prefill"), ("draft", "draft"), ("target", "verify"), ("draft", "calibrate")}
missing = need - phases
if missing or not all(e["dur"] >= 0 for e in spans):
    sys.exit("missing %s in %d host spans" % (sorted(missing), len(spans)))
PY
keys "/trace /nonexistent-dir/x.json" Enter
wait_for "/trace: trace: cannot write '/nonexistent-dir/x.json'" 10
keys "/lora load $work/x" Enter
wait_for "/lora load: $work/x/adapter_config.json: not found" 10
keys "/lora load $root/models/demo/lora-kjv 0.5" Enter
wait_for "lora-kjv  r 8  s 2  scale 0.5  on" 20
shows "|s*BA|/|W0| by layer and module"
keys F5 # zoomed, the heatmap's every layer, the largest values and Stable-LoRA's count show
wait_for "largest layer" 10
shows "(A still shrinks): 36 of 56 modules"
keep 07-lora-zoomed
keys F5
keys "/lora off" Enter
wait_for "scale 0.5  off" 10
keys F5 # zoomed, the lora pane has the focus: + steps the scale, space switches it
keys +
wait_for "scale 0.6  off" 10
keys " "
wait_for "scale 0.6  on" 10
keys F5 Tab # unzoomed, and the focus back to the console

# 5. Ctrl-C right after a prompt stops that generation; the program goes on.
keys "tell me more" Enter C-c
wait_for "[stopped]" 60
wait_for " idle " 30
keys "/save $work/transcript.txt" Enter
wait_for "transcript saved to" 10
keep 06-stopped
grep -qF "### user" "$work/transcript.txt" && grep -qF "$text2" "$work/transcript.txt" ||
    fail "/save wrote no transcript with the answer"

# 6. /quit ends with status 0; the history file has the lines typed.
keys "/quit" Enter
for _ in $(seq 100); do [[ -f $work/exit ]] && break; sleep 0.2; done
if [[ "$(cat "$work/exit" 2>/dev/null)" != "EXIT=0" ]]; then
    fail "exit status: '$(cat "$work/exit" 2>/dev/null)'"
    screen
    cat "$work/screen"
fi
grep -qxF "/k 2" "$work/state/specscope/history" || fail "the history file lacks '/k 2'"

# 7. NO_COLOR: attributes only (bold, dim, reverse), no colour at all.
tmx new-session -d -s nocolor -x 100 -y 30 \
    "env LC_ALL=C.UTF-8 NO_COLOR=1 XDG_STATE_HOME='$work/state' $san '$prog' chat ${models[*]} -n 4; echo EXIT=\$? > '$work/exit2'"
for _ in $(seq 150); do tmx capture-pane -p -t nocolor | grep -qF "─ console ─" && break; sleep 0.2; done
tmx send-keys -t nocolor "$prompt" Enter
for _ in $(seq 300); do tmx capture-pane -p -t nocolor | grep -qF "#1 done" && break; sleep 0.2; done
tmx capture-pane -e -p -t nocolor > "$work/mono"
grep -qF "#1 done" "$work/mono" || { fail "the NO_COLOR session did not answer:"; cat "$work/mono"; }
if grep -qE $'\e\\[([0-9]+;)*([34][0-7]|[34]8|9[0-7]|10[0-7])m' "$work/mono"; then fail "colours despite NO_COLOR"; fi
grep -qF $'\e[1m' "$work/mono" || fail "no bold text under NO_COLOR (the monochrome styles)"
tmx send-keys -t nocolor C-q
for _ in $(seq 100); do [[ -f $work/exit2 ]] && break; sleep 0.2; done
[[ "$(cat "$work/exit2" 2>/dev/null)" == "EXIT=0" ]] || fail "Ctrl-Q: exit status '$(cat "$work/exit2" 2>/dev/null)'"

# 8. No sanitizer report (in a sanitizer build the runtime writes log_path.PID on an error).
for report in "$work"/asan* "$work"/ubsan*; do
    [[ -s $report ]] || continue
    fail "sanitizer report $report:"
    cat "$report"
done

if ((failures)); then
    echo "$failures checks failed"
    exit 1
fi
echo "tui_tmux: all checks passed"
