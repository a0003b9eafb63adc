#!/usr/bin/env bash
# generate_fixtures.sh SPECSCOPE FIXTURES_DIR — the CLI against transformers: for every case of every
# f32 fixture, `specscope generate --prompt-ids IDS -n 32 --temp 0 --json` must print exactly the
# reference greedy ids (reference.json, written by scripts/make_fixtures.py with transformers).
. "$(dirname "$0")/lib.sh"
usage_check 2 "PATH/TO/specscope PATH/TO/tests/fixtures" "$@"
prog=$1 fixtures=$2
need_program "$prog"
need_python3 "to read reference.json"
ls "$fixtures"/*-f32/reference.json >/dev/null 2>&1 || skip "no f32 fixtures in $fixtures"
for dir in "$fixtures"/*-f32; do
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$dir/reference.json")
    for ((i = 0; i < n; i++)); do
        ids=$(python3 -c 'import json,sys; print(" ".join(map(str, json.load(open(sys.argv[1]))["cases"][int(sys.argv[2])]["ids"])))' "$dir/reference.json" "$i")
        want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cases"][int(sys.argv[2])]["greedy"])' "$dir/reference.json" "$i")
        got=$("$prog" generate --model "$dir" --backend cpu --prompt-ids "$ids" -n 32 --temp 0 --json 2>/dev/null |
              python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"])' 2>/dev/null)
        if [[ $got == "$want" ]]; then ok; else fail "$(basename "$dir") case $i: got $got, want $want"; fi
    done
done
finish
