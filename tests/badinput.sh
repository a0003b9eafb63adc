#!/usr/bin/env bash
# badinput.sh — `specscope generate` on broken checkpoint folders. Each must exit with status 2 and
# print exactly one line on stderr that names the broken file, tensor or field, with no sanitizer
# report. A valid tiny checkpoint, written the same way, must generate (exit 0): the control that
# shows the failures come from the breakage. Checkpoints are written at test time by python3 (stdlib).
#   usage: tests/badinput.sh PATH/TO/specscope
set -u

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    echo "usage: $0 PATH/TO/specscope"
    exit 0
fi
if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH/TO/specscope" >&2
    exit 2
fi
prog=$1
if [[ ! -x $prog ]]; then
    echo "badinput.sh: '$prog' is not an executable" >&2
    exit 1
fi
if ! command -v python3 >/dev/null; then
    echo "SKIP: python3 is needed to write the test checkpoints"
    exit 77
fi
work=$(mktemp -d /tmp/ss_badinput_XXXXXX)
trap 'rm -rf "$work"' EXIT

# One folder per case: valid/ and its broken variants.
python3 - "$work" <<'EOF' || { echo "badinput.sh: writing the checkpoints failed" >&2; exit 1; }
import json, os, random, struct, sys

root = sys.argv[1]
V, H, HEADS, KV, HD, I, L = 32, 16, 2, 1, 8, 32, 2
config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": H,
          "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": HEADS,
          "num_key_value_heads": KV, "head_dim": HD, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
          "rope_theta": 10000.0, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
          "hidden_act": "silu", "torch_dtype": "float32"}

shapes = {"model.embed_tokens.weight": [V, H]}
for l in range(L):
    p = f"model.layers.{l}."
    shapes.update({p + "input_layernorm.weight": [H], p + "post_attention_layernorm.weight": [H],
                   p + "self_attn.q_proj.weight": [HEADS * HD, H], p + "self_attn.k_proj.weight": [KV * HD, H],
                   p + "self_attn.v_proj.weight": [KV * HD, H], p + "self_attn.o_proj.weight": [H, HEADS * HD],
                   p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H],
                   p + "mlp.down_proj.weight": [H, I]})
shapes.update({"model.norm.weight": [H], "lm_head.weight": [V, H]})

rng = random.Random(7)
data, entries = b"", {}
for name, shape in shapes.items():
    n = 1
    for d in shape:
        n *= d
    values = [1.0 + rng.uniform(-0.1, 0.1) if name.endswith("norm.weight") else rng.uniform(-0.3, 0.3)
              for _ in range(n)]
    entries[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
    data += struct.pack(f"<{n}f", *values)

def safetensors(header, payload=data):
    text = json.dumps(dict({"__metadata__": {"format": "pt"}}, **header)).encode()
    text += b" " * (-len(text) % 8)  # keep the data section 8-byte aligned, as the safetensors library does
    return struct.pack("<Q", len(text)) + text + payload

def folder(name, header=None, blob=None, cfg=config, cfg_text=None):
    d = os.path.join(root, name)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(cfg_text if cfg_text is not None else json.dumps(cfg, indent=2))
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(blob if blob is not None else safetensors(header if header is not None else entries))

def edited(name, **fields):
    h = json.loads(json.dumps(entries))
    h[name].update(fields)
    return h

valid = safetensors(entries)
folder("valid")
folder("truncated", blob=valid[: len(valid) // 2])
folder("short", blob=valid[:5])
folder("header_past_eof", blob=struct.pack("<Q", len(valid) * 4) + valid[8:])
begin = len(data) - 8
folder("offsets_out_of_range", edited("model.norm.weight", data_offsets=[begin, begin + 4 * H]))
folder("overlap", edited("model.layers.1.post_attention_layernorm.weight",
                         data_offsets=entries["model.layers.1.input_layernorm.weight"]["data_offsets"]))
folder("shape_mismatch", edited("model.norm.weight", shape=[H + 1]))
folder("unknown_dtype", edited("lm_head.weight", dtype="I64", shape=[V, H // 2]))
folder("missing_tensor", {k: v for k, v in entries.items() if k != "model.layers.1.mlp.down_proj.weight"})
folder("malformed_config", cfg_text=json.dumps(config)[:-40])
folder("incomplete_config", cfg={k: v for k, v in config.items() if k != "num_attention_heads"})
folder("unknown_architecture", cfg=dict(config, model_type="gpt2"))
EOF

failures=0
fail() {
    echo "FAIL $1: $2"
    failures=$((failures + 1))
}

# run CASE DIR: generate on DIR; out/err land in $work/CASE.{out,err}, the status in $rc.
run() {
    timeout 120 "$prog" generate --model "$2" --prompt-ids "1 2 3" -n 2 >"$work/$1.out" 2>"$work/$1.err"
    rc=$?
    if grep -qE "AddressSanitizer|LeakSanitizer|runtime error" "$work/$1.out" "$work/$1.err"; then
        fail "$1" "sanitizer report:"
        cat "$work/$1.err"
    fi
}

# expect_bad CASE DIR NEEDLE...: exit 2, one stderr line containing every NEEDLE.
expect_bad() {
    local name=$1 dir=$2
    shift 2
    run "$name" "$dir"
    local lines line before=$failures
    lines=$(wc -l <"$work/$name.err")
    line=$(head -n 1 "$work/$name.err")
    [[ $rc == 2 ]] || fail "$name" "exit status $rc, want 2 (stderr: $(head -c 300 "$work/$name.err"))"
    [[ $lines == 1 ]] || fail "$name" "$lines lines on stderr, want 1: $(head -c 300 "$work/$name.err")"
    for needle in "$@"; do
        [[ $line == *"$needle"* ]] || fail "$name" "stderr '$line' does not name '$needle'"
    done
    ((failures == before)) && echo "ok   $name: $line"
}

run valid "$work/valid"
if [[ $rc == 0 ]]; then
    echo "ok   valid: generated"
else
    fail valid "the valid checkpoint exited $rc: $(head -c 300 "$work/valid.err")"
fi

st="model.safetensors"
expect_bad truncated "$work/truncated" "$work/truncated/$st" "end past data section"
expect_bad short "$work/short" "$work/short/$st" "too short"
expect_bad header_past_eof "$work/header_past_eof" "$work/header_past_eof/$st" "header length"
expect_bad offsets_out_of_range "$work/offsets_out_of_range" "$st" "'model.norm.weight'" "end past data section"
expect_bad overlap "$work/overlap" "$st" "overlap" "'model.layers.1.post_attention_layernorm.weight'" \
    "'model.layers.1.input_layernorm.weight'"
expect_bad shape_mismatch "$work/shape_mismatch" "$st" "'model.norm.weight'"
expect_bad unknown_dtype "$work/unknown_dtype" "$st" "'lm_head.weight'" "I64"
expect_bad missing_tensor "$work/missing_tensor" "model.layers.1.mlp.down_proj.weight"
expect_bad malformed_config "$work/malformed_config" "config.json" "line"
expect_bad incomplete_config "$work/incomplete_config" "config.json" "num_attention_heads"
expect_bad unknown_architecture "$work/unknown_architecture" "config.json" "gpt2"
expect_bad missing_directory "$work/no-such-folder" "$work/no-such-folder"

if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all bad-input cases rejected cleanly"
