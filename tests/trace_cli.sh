#!/usr/bin/env bash
# trace_cli.sh — `--trace` and `--kernels` end to end on the CPU backend:
#   generate --trace writes Chrome trace JSON with a prefill span and one span per decode step (their
#   steps numbered, ts / dur in order) and, inside each verify span, one span per layer of the target,
#   and leaves --json's stdout alone; bench --trace writes one
#   span per traced decode step; bench --kernels on the CPU says on stderr that there is no kernel
#   timeline and puts "kernels": null in --json; an unwritable --trace path fails before the run
#   (exit 2, one stderr line naming the path, no file made). Also bench's other "not measured"
#   notice: with a draft but no tokenizer.json it says the generation rows need text prompts.
#   usage: tests/trace_cli.sh PATH/TO/specscope PATH/TO/models/demo/target
. "$(dirname "$0")/lib.sh"
usage_check 2 "PATH/TO/specscope PATH/TO/models/demo/target" "$@"
prog=$1 model=$2
need_program "$prog"
[[ -f $model/config.json ]] || skip "no model at $model"
need_python3 "to read the traces"
make_work tracecli

# check_trace NAME FILE PYTHON-CONDITION: the file is a Chrome trace and the condition (over `spans`,
# the host "X" events, and `meta`, the "M" events) holds.
check_trace() {
    local name=$1 file=$2 cond=$3 out
    if out=$(python3 - "$file" "$cond" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
spans = [e for e in ev if e["ph"] == "X" and e["pid"] == 1 and "layer" not in e["args"]]
layers = [e for e in ev if e["ph"] == "X" and e["pid"] == 1 and "layer" in e["args"]]
meta = [e for e in ev if e["ph"] == "M"]
for e in ev:
    if e["ph"] == "X":
        assert e["dur"] >= 0 and e["ts"] >= 0 and isinstance(e["name"], str), e
assert any(m["name"] == "process_name" and m["args"]["name"] == "specscope host" for m in meta), meta
assert eval(sys.argv[2]), sys.argv[2]
EOF
    ); then ok; else fail "$name: $out"; fi
}

# generate: a prefill span, then decode steps 1.. in time order, each after the one before.
"$prog" generate --model "$model" -p "Hello" -n 8 --trace "$work/g.json" >"$work/out" 2>"$work/err"
rc=$?
if [[ $rc -ne 0 ]]; then fail "generate --trace: exit $rc ($(cat "$work/err"))"; else ok; fi
# The engine's own spans (prefill per model, and draft / verify / calibrate inside each step) nest
# inside these: every step holds the verify span of its number.
check_trace "generate --trace" "$work/g.json" \
    '(lambda pre, steps: pre["args"]["phase"] == "prefill" and len(steps) >= 1 and
      [s["args"]["step"] for s in steps] == list(range(1, len(steps) + 1)) and
      all(s["args"]["phase"] == "decode" and s["cat"] == "target" for s in steps) and
      all(b["ts"] >= a["ts"] + a["dur"] for a, b in zip([pre] + steps, steps)) and
      all(any(v["name"] == "verify" and v["args"]["step"] == s["args"]["step"] and s["ts"] <= v["ts"] and
              v["ts"] + v["dur"] <= s["ts"] + s["dur"] for v in spans) for s in steps))(
     min((s for s in spans if s["name"] == "prefill"), key=lambda s: s["ts"]),
     sorted((s for s in spans if s["name"] == "step"), key=lambda s: s["ts"]))'
# On the CPU each verify forward holds one span per layer of the target, 0 .. n_layers - 1, in order.
nl=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["num_hidden_layers"])' "$model/config.json")
check_trace "generate --trace, layers" "$work/g.json" \
    "(lambda vs: len(vs) >= 1 and all([l['args']['layer'] for l in sorted(layers, key=lambda l: l['ts'])
      if v['ts'] <= l['ts'] and l['ts'] + l['dur'] <= v['ts'] + v['dur']] == list(range($nl)) for v in vs))(
     [s for s in spans if s['name'] == 'verify'])"

# generate --json: stdout stays one JSON object.
"$prog" generate --model "$model" -p "Hello" -n 4 --json --trace "$work/j.json" >"$work/out" 2>"$work/err"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "text" in d and "stats" in d' "$work/out" 2>/dev/null; then
    ok
else
    fail "generate --json --trace: stdout is not the result object: $(head -c 300 "$work/out")"
fi
check_trace "generate --json --trace" "$work/j.json" 'spans[0]["name"] == "prefill"'

# bench: one decode span per traced step (--repeats 1: 8 steps); --kernels on the CPU: a notice, null.
"$prog" bench --model "$model" --prompt-len 128 --repeats 1 --json --kernels --trace "$work/b.json" \
    >"$work/out" 2>"$work/err"
rc=$?
if [[ $rc -ne 0 ]]; then fail "bench --trace: exit $rc ($(cat "$work/err"))"; else ok; fi
check_trace "bench --trace" "$work/b.json" \
    '[s["args"]["step"] for s in spans] == list(range(8)) and all(s["name"] == "decode" for s in spans)'
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["kernels"] is None and "forward" in d' \
    "$work/out" 2>/dev/null; then ok; else fail "bench --kernels --json on the CPU: $(head -c 300 "$work/out")"; fi
if grep -q "no kernel timeline" "$work/err"; then ok; else fail "bench --kernels on the CPU: no notice ($(cat "$work/err"))"; fi

# bench with a draft on a checkpoint without tokenizer.json: the generation rows are not measured,
# and stderr says so (they generate from text prompts).
mkdir -p "$work/notok"
ln -s "$(realpath "$model")/config.json" "$(realpath "$model")/model.safetensors" "$work/notok/"
"$prog" bench --model "$work/notok" --draft ngram --backend cpu --prompt-len 32 -n 8 --repeats 1 >"$work/out" 2>"$work/err"
rc=$?
if [[ $rc -eq 0 ]] && grep -qF "$work/notok has no tokenizer.json" "$work/err" && ! grep -q "^spec " "$work/out"; then ok; else
    fail "bench --draft without a tokenizer: exit $rc, stderr '$(cat "$work/err")'"
fi

# An unwritable path: refused before loading anything.
for cmd in generate bench; do
    args=(--model "$model" --trace "$work/missing/t.json")
    [[ $cmd == generate ]] && args+=(-p Hello)
    "$prog" $cmd "${args[@]}" >"$work/out" 2>"$work/err"
    rc=$?
    if [[ $rc -ne 2 ]]; then fail "$cmd --trace to a missing folder: exit $rc, expected 2"; continue; fi
    if [[ $(wc -l <"$work/err") -ne 1 ]] || ! grep -qF "$work/missing/t.json" "$work/err"; then
        fail "$cmd --trace to a missing folder: stderr is not one line naming the path: $(cat "$work/err")"
        continue
    fi
    ok
done

finish
