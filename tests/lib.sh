# lib.sh — what the shell tests share. Source it first: . "$(dirname "$0")/lib.sh"
#   usage_check N "ARGS..." "$@"   --help prints the usage (exit 0); another count than N: usage, exit 2
#   need_program PATH              not an executable: a line naming it, exit 1
#   skip WHY                       "SKIPPED: WHY" and the CTest skip code, 77
#   need_python3 WHY               skips when python3 is missing
#   make_work NAME                 $work: a fresh temporary folder, removed on exit
#   ok / fail MESSAGE              count a check (fail prints "FAIL: MESSAGE" on stderr)
#   finish                         prints "P passed, F failed"; status 0 when nothing failed and something ran
#   chatml_copy MODEL DIR END IDS...  DIR: MODEL whose tokenizer also names token END <|im_end|> (and a
#                                  token not among IDS <|im_start|>), so its chat format is ChatML
#   through_first WORD WORDS...    the WORDS up to and including the first WORD
set -u

usage_check() {
    local want=$1 usage="usage: $0 $2"
    shift 2
    if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        echo "$usage"
        exit 0
    fi
    if [[ $# -ne $want ]]; then
        echo "$usage" >&2
        exit 2
    fi
}

need_program() {
    [[ -x $1 ]] || { echo "$(basename "$0"): '$1' is not an executable" >&2; exit 1; }
}

skip() {
    echo "SKIPPED: $*"
    exit 77
}

need_python3() { command -v python3 >/dev/null || skip "python3 is needed $*"; }

make_work() {
    work=$(mktemp -d "/tmp/ss_$1_XXXXXX")
    trap 'rm -rf "$work"' EXIT
}

passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

finish() {
    echo "$passed passed, $failed failed"
    ((failed == 0 && passed > 0))
}

chatml_copy() {
    local model=$1 dir=$2 end=$3
    shift 3
    mkdir -p "$dir"
    ln -s "$(realpath "$model")/config.json" "$(realpath "$model")/model.safetensors" "$dir/"
    python3 - "$model/tokenizer.json" "$dir/tokenizer.json" "$end" "$@" <<'PY'
import json, sys
src, dst, end, emitted = sys.argv[1], sys.argv[2], int(sys.argv[3]), set(map(int, sys.argv[4:]))
t = json.load(open(src))
start = next(i for i in range(len(t["model"]["vocab"]) - 1, 0, -1) if i not in emitted)
for content, i in (("<|im_start|>", start), ("<|im_end|>", end)):
    t["added_tokens"].append({"id": i, "content": content, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True})
json.dump(t, open(dst, "w"))
PY
}

through_first() {
    local word=$1 out=()
    shift
    for w in "$@"; do
        out+=("$w")
        [[ $w == "$word" ]] && break
    done
    echo "${out[*]}"
}
