# lib.sh — what the shell tests share. Source it first: . "$(dirname "$0")/lib.sh"
#   usage_check N "ARGS..." "$@"   --help prints the usage (exit 0); another count than N: usage, exit 2
#   need_program PATH              not an executable: a line naming it, exit 1
#   skip WHY                       "SKIPPED: WHY" and the CTest skip code, 77
#   need_python3 WHY               skips when python3 is missing
#   make_work NAME                 $work: a fresh temporary folder, removed on exit
#   ok / fail MESSAGE              count a check (fail prints "FAIL: MESSAGE" on stderr)
#   finish                         prints "P passed, F failed"; status 0 when nothing failed and something ran
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
