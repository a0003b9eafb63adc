#!/usr/bin/env bash
# lora_cli.sh — LoRA adapters from the command line, on the CPU, with the PEFT fixtures
# (tests/fixtures/lora, scripts/make_lora_fixtures.py):
#   `lora-info --json` prints one row per targeted layer and module with the reference's norms and
#   Stable-LoRA's test computed from them and the geometry (to 1e-9), `--scale 2` doubles |s*BA| and
#   the ratio, the table names r and s;
#   `generate --lora DIR` gives what PEFT's logits choose at the first step (greedy), `DIR:0` gives
#   the base model's tokens, two adapters at 0.5 give one at 1, and --lora-merge gives the unmerged
#   tokens;
#   bad input (a missing folder, a scale that is not a number, another model's adapter) fails with
#   exit 2 and one stderr line naming the culprit.
#   usage: tests/lora_cli.sh PATH/TO/specscope PATH/TO/tests/fixtures
. "$(dirname "$0")/lib.sh"
usage_check 2 "PATH/TO/specscope PATH/TO/tests/fixtures" "$@"
prog=$1 fixtures=$2
need_program "$prog"
adapter=$fixtures/lora/llama-all base=$fixtures/llama-f32
[[ -f $adapter/reference.json && -f $base/config.json ]] || skip "no LoRA fixtures under $fixtures"
need_python3 "to read the JSON"
make_work loracli

"$prog" lora-info "$adapter" --model "$base" --json >"$work/norms.json" 2>"$work/err" ||
    fail "lora-info --json: exit $? ($(cat "$work/err"))"
"$prog" lora-info "$adapter" --model "$base" --scale 2 --json >"$work/norms2.json" 2>"$work/err" ||
    fail "lora-info --scale 2: exit $? ($(cat "$work/err"))"
if out=$(python3 - "$work/norms.json" "$work/norms2.json" "$adapter/reference.json" "$base/config.json" 2>&1 <<'PY'
import json, sys
got, got2, ref, cfg = (json.load(open(p)) for p in sys.argv[1:5])
want = ref["norms"]
# Stable-LoRA's test |A| / ((numel A / numel B) |B|), numel A / numel B = in / out: from the geometry.
h, inter = cfg["hidden_size"], cfg["intermediate_size"]
hd = cfg.get("head_dim") or h // cfg["num_attention_heads"]
q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
in_out = {"q_proj": h / q, "k_proj": h / kv, "v_proj": h / kv, "o_proj": q / h, "gate_proj": h / inter,
          "up_proj": h / inter, "down_proj": inter / h}
assert len(got) == len(want) == 14, (len(got), len(want))
for g, g2, w in zip(got, got2, want):
    assert (g["layer"], g["module"]) == (w["layer"], w["module"]), (g, w)
    for k in "a", "b", "ba", "rel":
        assert abs(g[k] - w[k]) <= 1e-9 * max(1, abs(w[k])), (k, g, w)
    assert abs(g2["ba"] - 2 * g["ba"]) <= 1e-9 * g["ba"] and abs(g2["a"] - g["a"]) <= 1e-12 * g["a"], (g, g2)
    stable = w["a"] / (in_out[w["module"]] * w["b"])
    assert abs(g["stable"] - stable) <= 1e-9 * stable and g2["stable"] == g["stable"], (g, stable)
PY
); then ok; else fail "lora-info norms: $out"; fi
"$prog" lora-info "$adapter" --model "$base" >"$work/table.txt" 2>"$work/err" || fail "lora-info: exit $?"
grep -q "r 4, s 2, scale 1" "$work/table.txt" && [[ $(grep -c '_proj' "$work/table.txt") -eq 14 ]] && ok ||
    fail "lora-info table: $(head -3 "$work/table.txt")"

# generate: the first greedy token is the argmax of PEFT's logits at the last prompt position.
ids=$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["ids"])))' "$adapter/reference.json")
gen() { "$prog" generate --backend cpu --model "$base" --prompt-ids "$ids" -n 6 --temp 0 --json "$@" 2>"$work/err" |
        python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["tokens"])))'; }
with=$(gen --lora "$adapter") || fail "generate --lora: $(cat "$work/err")"
want=$(python3 - "$adapter/reference.json" "$adapter/logits_1.f32" <<'PY'
import json, struct, sys
ref = json.load(open(sys.argv[1])); n, v = len(ref["ids"]), ref["vocab"]
raw = open(sys.argv[2], "rb").read()
last = struct.unpack("<%df" % v, raw[(n - 1) * v * 4:n * v * 4])
print(max(range(v), key=lambda i: (last[i], -i)))
PY
)
[[ ${with%% *} == "$want" ]] && ok || fail "generate --lora: first token ${with%% *}, PEFT's argmax $want"
plain=$(gen) zero=$(gen --lora "$adapter:0") halves=$(gen --lora "$adapter:0.5" --lora "$adapter:0.5")
merged=$(gen --lora "$adapter" --lora-merge) || fail "generate --lora-merge: $(cat "$work/err")"
[[ $merged == "$with" ]] && ok || fail "generate --lora-merge: '$merged', unmerged: '$with'"
[[ -n $plain && $zero == "$plain" ]] && ok || fail "generate --lora DIR:0: '$zero', without: '$plain'"
[[ $with != "$plain" ]] && ok || fail "generate --lora: the adapter changed no token ('$with')"
[[ $halves == "$with" ]] && ok || fail "two adapters at 0.5: '$halves', one at 1: '$with'"

# bad input: exit 2, one line naming the culprit
bad() {
    local name=$1 needle=$2
    shift 2
    "$prog" "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [[ $rc -eq 2 && $(wc -l <"$work/err") -eq 1 ]] && grep -qF -- "$needle" "$work/err"; then ok; else
        fail "$name: exit $rc, stderr: $(cat "$work/err")"
    fi
}
bad "missing adapter" "$work/none/adapter_config.json: not found" generate --backend cpu --model "$base" -p x -n 1 --lora "$work/none"
bad "scale not a number" "--lora" generate --backend cpu --model "$base" -p x -n 1 --lora "$adapter:inf"
bad "another model's adapter" "expected [96, 2] (out, r)" lora-info "$fixtures/lora/llama3rope-mlp" --model "$fixtures/qwen3-bf16"
bad "lora-info without adapter" "give the adapter folder" lora-info --model "$base" --json
finish
