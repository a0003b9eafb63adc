#!/usr/bin/env bash
# measure_ui_cost.sh — what the interface costs generation: the decode rate (the engine's own
# tokens/s, prefill excluded) of the same chat prompt through `specscope generate --chat` (text
# streamed to /dev/null, the rate from its statistics line) and through the interface in tmux (read
# from its speculation pane), alternating, R times each; the cost is 1 - the median of the paired
# ratios (a pair runs back to back, so a load that comes and goes hits both alike). Not a CTest
# (it takes a minute); run it on a quiet machine. It also reports the CPU time the interface's own
# thread took against the whole process's, which a busy machine does not blur.
#   usage: tests/tui/measure_ui_cost.sh PATH/TO/specscope [R] [N] [K] [MORE OPTIONS...]
#   e.g.   tests/tui/measure_ui_cost.sh build/specscope 9 256 4 --backend cpu
set -u
if [[ $# -lt 1 || ${1:-} == -h || ${1:-} == --help ]]; then
    echo "usage: $0 PATH/TO/specscope [REPEATS] [TOKENS] [K] [MORE OPTIONS...]"
    exit 0
fi
prog=$(realpath "$1")
repeats=${2:-9} n=${3:-256} k=${4:-4}
shift $(($# < 4 ? $# : 4))
root=$(cd "$(dirname "$0")/../.." && pwd)
demo=$root/models/demo
prompt="The Linux kernel"
opts=(--model "$demo/target" --draft "$demo/draft" -n "$n" --k "$k" "$@")
work=$(mktemp -d /tmp/ss_uicost_XXXXXX)
sock=specscope_uicost_$$
tmx() { tmux -L "$sock" -f /dev/null "$@"; }
trap 'tmx kill-server 2>/dev/null; rm -rf "$work"' EXIT
export LC_ALL=C.UTF-8

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

tmx new-session -d -x 120 -y 40 "env XDG_STATE_HOME='$work' '$prog' chat ${opts[*]}; sleep 30"
until tmx capture-pane -p | grep -qF "─ console ─"; do sleep 0.2; done
# The interface's process and its main (interface) thread: CPU time before and after.
ui_pid=$(pgrep -x -P "$(tmx display -p '#{pane_pid}')" specscope)
cpu_ns() { # the process (all threads, ended ones too) and its main thread, in ns
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f ", ($14 + $15) * 1e9 / hz}' "/proc/$ui_pid/stat"
    awk '{print $1}' "/proc/$ui_pid/task/$ui_pid/schedstat"
}
read -r proc0 main0 < <(cpu_ns)

for ((i = 1; i <= repeats; i++)); do
    "$prog" generate "${opts[@]}" --chat -p "$prompt" 2>&1 >/dev/null |
        sed -n 's/.* generated tokens, .*, \([0-9.]*\) tok\/s.*/\1/p' >> "$work/generate"
    tmx send-keys "/clear" Enter "$prompt" Enter
    until tmx capture-pane -p | grep -qE "last run +#$i done"; do sleep 0.2; done
    sleep 0.3
    tmx capture-pane -p | sed -n 's/.*│ tokens\/s *\([0-9.]*\) .*/\1/p' | head -1 >> "$work/tui"
done
read -r proc1 main1 < <(cpu_ns)
tmx send-keys "/quit" Enter
g=$(median < "$work/generate") t=$(median < "$work/tui")
ratio=$(paste "$work/generate" "$work/tui" | awk '$1 > 0 {print $2 / $1}' | median)
echo "generate: $(tr '\n' ' ' < "$work/generate")"
echo "interface: $(tr '\n' ' ' < "$work/tui")"
awk -v g="$g" -v t="$t" -v q="$ratio" -v r="$repeats" -v n="$n" -v k="$k" 'BEGIN {
    printf "%d runs of %d tokens (k %d): median generate %.1f tok/s, interface %.1f tok/s; ", r, n, k, g, t
    printf "median of the paired ratios interface/generate %.4f: the interface costs %.2f%%\n", q, 100 * (1 - q) }'
awk -v p=$((proc1 - proc0)) -v m=$((main1 - main0)) 'BEGIN {
    printf "CPU time of the interface process during the runs: %.2f s, of which its interface thread %.3f s (%.2f%%)\n",
           p / 1e9, m / 1e9, 100 * m / p }'
