#!/usr/bin/env python3
"""make_fixtures.py — tiny random-weight checkpoints and their reference outputs, for the engine's tests.

For each architecture the engine reads (llama, llama with llama3 RoPE scaling, mistral, qwen2 with q/k/v
biases, qwen3 with q/k norms and an explicit head_dim) it writes FOLDER-f32/ and FOLDER-bf16/ under --out,
each holding what `save_pretrained` writes (config.json, model.safetensors or shards + index) and:

  reference.json  {"cases": [{"ids": [...], "logits": "logits0.f32", "greedy": [32 ids],
                              "greedy_margin": [32 floats]}, ...],
                   "vocab": V, "transformers": "5.x", ...descriptive fields}
  logitsN.f32     raw little-endian float32 [len(ids), vocab]: the logits at every position

The reference is Hugging Face transformers' forward on CPU in float32 (eager attention). For a bf16
fixture the bf16 weights are loaded and upcast, so the reference is the exact float32 function of the
stored bf16 weights. `greedy` is 32 argmax steps (EOS is not special: no early stop), each a full
forward over the sequence; `greedy_margin` is top1 - top2 of the logits behind each step. Each prompt is
redrawn (seeded) until every margin is at least 0.01, so a backend with small rounding differences must
still reproduce the greedy tokens exactly; the summary table shows the smallest margin kept.

All weights are random, norms included (1 + noise), and q/k/v biases are non-zero. Matrices are drawn
with std 1/sqrt(fan_in) rather than 0.02 so that attention scores and logits are O(1): with 0.02 at
hidden 64 attention is nearly uniform and a wrong RoPE or mask would barely move the logits.

As a cross-check the script recomputes every case with its own small float64 forward written from the
architecture description (reading the saved .safetensors directly) and fails if HF disagrees; it also
checks that the llama3-scaled fixture really changes the RoPE frequencies and the logits.

Runs on CPU (CUDA not needed); needs torch, transformers, safetensors, numpy. Deterministic (seeded).
Exit 0 ok, 1 failure, 2 usage.
"""
import argparse
import json
import math
import os
import shutil
import sys

HIDDEN, HEADS, KV_HEADS, MAX_POS = 64, 4, 2, 256
PROMPT_LENGTHS = (7, 13, 20)
GREEDY_STEPS = 32
MIN_MARGIN = 0.01       # prompts are redrawn (up to PROMPT_TRIES times) until no greedy step is a near-tie
PROMPT_TRIES = 64
SIZE_LIMIT = 5 * 1000 * 1000
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 32}

# One entry per architecture; each is written as NAME-f32 and NAME-bf16 from the same random weights.
SPECS = [
    dict(name="llama", arch="llama", vocab=320, layers=2, inter=128, tied=False, theta=10000.0, eps=1e-5),
    dict(name="llama3rope", arch="llama", vocab=256, layers=2, inter=128, tied=True, theta=10000.0, eps=1e-5,
         scaling=LLAMA3_SCALING),
    dict(name="mistral", arch="mistral", vocab=384, layers=2, inter=160, tied=False, theta=10000.0, eps=1e-6,
         shard_f32=True),
    dict(name="qwen2", arch="qwen2", vocab=352, layers=2, inter=128, tied=True, theta=1000000.0, eps=1e-6,
         qkv_bias=True),
    dict(name="qwen3", arch="qwen3", vocab=288, layers=3, inter=96, tied=True, theta=1000000.0, eps=1e-6,
         head_dim=32, qk_norm=True),
]


def fail(msg):
    print(f"make_fixtures.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------------
# The independent float64 reference (no transformers): RoPE frequencies and the decoder forward.

def rope_inv_freq(head_dim, theta, scaling=None):
    """Inverse RoPE frequencies, float64; with llama3 scaling (Llama 3.1) when `scaling` says so."""
    import torch
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    if not scaling:
        return inv
    if scaling["rope_type"] != "llama3":
        fail(f"unsupported rope_type {scaling['rope_type']}")
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_ctx = scaling["original_max_position_embeddings"]
    out = []
    for f in inv.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < old_ctx / high:            # high frequency: kept
            out.append(f)
        elif wavelen > old_ctx / low:           # low frequency: divided by factor
            out.append(f / factor)
        else:                                   # in between: interpolated
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float64)


def rms_norm(x, weight, eps):
    return weight * (x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt())


def apply_rope(x, cos, sin):
    """x [L, heads, d]; rotate-half convention (first half pairs with second half), as HF Llama."""
    import torch
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


def reference_forward(weights, geo, ids):
    """Logits [L, vocab] in float64 from a dict of tensors named as in HF checkpoints."""
    import torch
    w = {k: v.to(torch.float64) for k, v in weights.items()}
    L, hd, nh, nkv = len(ids), geo["head_dim"], geo["heads"], geo["kv_heads"]
    inv = rope_inv_freq(hd, geo["theta"], geo.get("scaling"))
    angles = torch.outer(torch.arange(L, dtype=torch.float64), inv)
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()
    causal = torch.full((L, L), float("-inf"), dtype=torch.float64).triu(1)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(geo["layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], geo["eps"])

        def proj(name, heads):
            y = h @ w[p + f"self_attn.{name}.weight"].T
            if p + f"self_attn.{name}.bias" in w:
                y = y + w[p + f"self_attn.{name}.bias"]
            return y.view(L, heads, hd)

        q, k, v = proj("q_proj", nh), proj("k_proj", nkv), proj("v_proj", nkv)
        if geo.get("qk_norm"):
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], geo["eps"])
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], geo["eps"])
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        heads_out = []
        for head in range(nh):
            kvh = head // (nh // nkv)
            scores = q[:, head] @ k[:, kvh].T / math.sqrt(hd) + causal
            heads_out.append(torch.softmax(scores, -1) @ v[:, kvh])
        x = x + torch.cat(heads_out, -1) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], geo["eps"])
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], geo["eps"])
    head_w = w.get("lm_head.weight", w["model.embed_tokens.weight"] if geo["tied"] else None)
    if head_w is None:
        fail("untied checkpoint has no lm_head.weight")
    return x @ head_w.T


# ---------------------------------------------------------------------------------------------------
# Building, randomising, saving and evaluating with transformers.

def geometry(spec):
    return dict(arch=spec["arch"], vocab=spec["vocab"], layers=spec["layers"], heads=HEADS, kv_heads=KV_HEADS,
                head_dim=spec.get("head_dim", HIDDEN // HEADS), theta=spec["theta"], eps=spec["eps"],
                scaling=spec.get("scaling"), tied=spec["tied"], qk_norm=spec.get("qk_norm", False))


def rope_config_kwargs(transformers, theta, scaling):
    """transformers 5 keeps theta and scaling in `rope_parameters`; 4.x had rope_theta + rope_scaling."""
    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"rope_parameters": dict(scaling or {"rope_type": "default"}, rope_theta=theta)}
    return {"rope_theta": theta, "rope_scaling": dict(scaling) if scaling else None}


def build_model(transformers, spec):
    config_cls, model_cls = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
    }[spec["arch"]]
    geo = geometry(spec)
    kwargs = dict(vocab_size=spec["vocab"], hidden_size=HIDDEN, intermediate_size=spec["inter"],
                  num_hidden_layers=spec["layers"], num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                  max_position_embeddings=MAX_POS, rms_norm_eps=spec["eps"], tie_word_embeddings=spec["tied"],
                  bos_token_id=1, eos_token_id=2, hidden_act="silu")
    kwargs.update(rope_config_kwargs(transformers, spec["theta"], spec.get("scaling")))
    if spec["arch"] == "qwen3":
        kwargs["head_dim"] = geo["head_dim"]
    if spec["arch"] == "mistral":
        kwargs["sliding_window"] = None
    return model_cls(checked_config(config_cls(**kwargs), geo)), model_cls


def checked_config(config, geo):
    """Fails if the config object did not take a field the way the fixture means it."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim != geo["head_dim"] or config.num_key_value_heads != geo["kv_heads"]:
        fail(f"{geo['arch']}: config kept head_dim {head_dim} / kv heads {config.num_key_value_heads}")
    if bool(config.tie_word_embeddings) != geo["tied"]:
        fail(f"{geo['arch']}: config kept tie_word_embeddings={config.tie_word_embeddings}")
    return config


def randomise(model, spec, generator):
    """Every parameter gets random values: matrices N(0, 1/fan_in), biases N(0, 0.5^2), norms 1 + N(0, 0.2^2)."""
    import torch
    names = []
    with torch.no_grad():
        for name, p in model.named_parameters():       # tied weights appear once
            if p.dim() == 2:
                std, mean = 1.0 / math.sqrt(p.shape[1]), 0.0
            elif p.dim() == 1 and name.endswith(".bias"):
                std, mean = 0.5, 0.0
            elif p.dim() == 1 and "norm" in name:
                std, mean = 0.2, 1.0
            else:
                fail(f"{spec['name']}: no randomisation rule for parameter {name} {tuple(p.shape)}")
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float32) * std + mean)
            names.append(name)
    if spec.get("qkv_bias") and not any(n.endswith("q_proj.bias") for n in names):
        fail(f"{spec['name']}: the model has no q_proj.bias")
    if spec.get("qk_norm") and not any(n.endswith("q_norm.weight") for n in names):
        fail(f"{spec['name']}: the model has no q_norm")
    return names


def read_checkpoint(folder):
    """The tensors as stored on disk (single file or shards listed in the index)."""
    from safetensors.torch import load_file
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for f in files:
        tensors.update(load_file(os.path.join(folder, f)))
    return tensors, files


def greedy(model, ids, steps):
    import torch
    seq, margins = list(ids), []
    with torch.no_grad():
        for _ in range(steps):
            last = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].float()
            top = torch.topk(last, 2)
            seq.append(int(top.indices[0]))
            margins.append(round(float(top.values[0] - top.values[1]), 6))
    return seq[len(ids):], margins


def pick_prompt(model, length, vocab, generator):
    """Random ids (3..vocab-1: 0-2 look like special tokens) whose greedy continuation has no near-tie;
    the best of PROMPT_TRIES draws when none is clear of MIN_MARGIN."""
    import torch
    best = None
    for _ in range(PROMPT_TRIES):
        ids = torch.randint(3, vocab, (length,), generator=generator).tolist()
        tokens, margins = greedy(model, ids, GREEDY_STEPS)
        if best is None or min(margins) > min(best[2]):
            best = (ids, tokens, margins)
        if min(margins) >= MIN_MARGIN:
            break
    return best


def write_fixture(transformers, model, model_cls, spec, dtype_name, generator, folder):
    import numpy as np
    import torch
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    sharded = dtype_name == "f32" and spec.get("shard_f32", False)
    to_save = model if dtype == torch.float32 else _copy_to(model, dtype)
    to_save.save_pretrained(folder, max_shard_size="100KB" if sharded else "50GB")
    stored, files = read_checkpoint(folder)
    if sharded and len(files) < 2:
        fail(f"{folder}: asked for a sharded checkpoint, got {files}")
    if not sharded and files != ["model.safetensors"]:
        fail(f"{folder}: expected one model.safetensors, got {files}")
    for name, t in stored.items():
        if t.dtype != dtype:
            fail(f"{folder}: tensor {name} stored as {t.dtype}, expected {dtype}")

    loaded = model_cls.from_pretrained(folder, dtype=dtype, attn_implementation="eager").float().eval()
    expected = {n: p.detach().to(dtype).float() for n, p in model.state_dict().items() if "rotary" not in n}
    for name, p in loaded.state_dict().items():
        if name in expected and not torch.equal(p, expected[name]):
            fail(f"{folder}: parameter {name} reloaded with different values")
    missing = [n for n in expected if n not in loaded.state_dict()]
    if missing:
        fail(f"{folder}: reloaded model lacks {missing[:3]}")

    geo = geometry(spec)
    cases, worst = [], 0.0
    for n, length in enumerate(PROMPT_LENGTHS):
        ids, tokens, margins = pick_prompt(loaded, length, spec["vocab"], generator)
        with torch.no_grad():
            logits = loaded(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()
        if tuple(logits.shape) != (len(ids), spec["vocab"]):
            fail(f"{folder}: logits shape {tuple(logits.shape)}")
        own = reference_forward(stored, geo, ids)
        diff = float((own - logits.double()).abs().max())
        worst = max(worst, diff)
        if not diff < 2e-4 * max(1.0, float(own.abs().max())):
            fail(f"{folder}: case {n}: transformers and the float64 cross-check differ by {diff:.3g}")
        np.asarray(logits.numpy(), dtype="<f4").tofile(os.path.join(folder, f"logits{n}.f32"))
        cases.append({"ids": ids, "logits": f"logits{n}.f32", "greedy": tokens, "greedy_margin": margins})
    reference = {
        "cases": cases, "vocab": spec["vocab"], "transformers": transformers.__version__,
        "architecture": spec["arch"], "dtype": {"f32": "float32", "bf16": "bfloat16"}[dtype_name],
        "tied_embeddings": spec["tied"], "sharded": sharded, "weight_files": files,
        "greedy_steps": GREEDY_STEPS, "greedy_stops_at_eos": False,
        "reference": "HF forward on CPU, float32, eager attention, from the stored weights",
        "crosscheck_max_abs_diff": worst,
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        f.write(compact_json(reference))
    return loaded, cases, worst, files


def compact_json(obj):
    """Indented at the top level, one line per case (the id lists stay readable)."""
    lines = [f' "{k}": ' + ("[\n  " + ",\n  ".join(json.dumps(c) for c in v) + "\n ]" if k == "cases" else json.dumps(v))
             for k, v in obj.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _copy_to(model, dtype):
    import copy
    return copy.deepcopy(model).to(dtype)


def check_llama3_scaling(transformers, model_cls, folder, spec, ids):
    """The scaled fixture must differ from the same weights with plain RoPE, and HF's frequencies must
    match ours (so the fixture exercises the scaling, not a no-op)."""
    import torch
    loaded = model_cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    ours = rope_inv_freq(HIDDEN // HEADS, spec["theta"], spec["scaling"])
    plain = rope_inv_freq(HIDDEN // HEADS, spec["theta"])
    if torch.allclose(ours, plain):
        fail("llama3 scaling leaves every frequency unchanged at this geometry")
    found = [b for n, b in loaded.named_buffers() if n.endswith("inv_freq") and "original" not in n]
    if found and not torch.allclose(found[0].double(), ours, rtol=1e-5, atol=0):
        fail(f"{folder}: HF inv_freq {found[0].tolist()} != llama3 reference {ours.tolist()}")
    if not found:
        print(f"make_fixtures: note: no inv_freq buffer found to compare in {folder}", flush=True)
    config = transformers.AutoConfig.from_pretrained(folder)
    plain_kwargs = rope_config_kwargs(transformers, spec["theta"], None)
    for key, value in plain_kwargs.items():
        setattr(config, key, value)
    unscaled = model_cls.from_pretrained(folder, config=config, dtype=torch.float32,
                                         attn_implementation="eager").eval()
    ids = torch.tensor([ids])
    with torch.no_grad():
        delta = (loaded(input_ids=ids).logits - unscaled(input_ids=ids).logits).abs().max().item()
    if delta < 1e-3:
        fail(f"{folder}: llama3 scaling changes the logits by only {delta:.3g}")
    return delta


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures", help="output folder (default tests/fixtures)")
    ap.add_argument("--seed", type=int, default=1234, help="base seed (default 1234)")
    args = ap.parse_args()

    try:
        import numpy  # noqa: F401  (used for the .f32 files)
        import safetensors  # noqa: F401
        import torch
        import transformers
    except ImportError as e:
        fail(f"missing Python package: {e.name}")
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)

    rows, ours = [], 0
    for index, spec in enumerate(SPECS):
        gen = torch.Generator().manual_seed(args.seed + 1000 * index)
        torch.manual_seed(args.seed + 1000 * index)     # whatever the constructor's own init draws
        model, model_cls = build_model(transformers, spec)
        randomise(model, spec, gen)
        model.eval()
        for dtype_name in ("f32", "bf16"):
            folder = os.path.join(args.out, f"{spec['name']}-{dtype_name}")
            prompt_gen = torch.Generator().manual_seed(args.seed + 1000 * index + (1 if dtype_name == "bf16" else 0))
            _, cases, worst, files = write_fixture(transformers, model, model_cls, spec, dtype_name, prompt_gen, folder)
            extra = ""
            if spec.get("scaling"):
                delta = check_llama3_scaling(transformers, model_cls, folder, spec, cases[-1]["ids"])
                extra = f" llama3 moves logits by {delta:.3f}"
            size = folder_bytes(folder)
            ours += size
            margin = min(m for c in cases for m in c["greedy_margin"])
            params = sum(p.numel() for p in model.parameters())
            rows.append((os.path.basename(folder), spec["arch"], "tied" if spec["tied"] else "untied",
                         len(files), params, size, worst, margin, extra))
            print(f"make_fixtures: wrote {folder}", flush=True)

    print(f"\n{'fixture':18s} {'arch':8s} {'embed':7s} {'files':>5s} {'params':>8s} {'bytes':>9s} "
          f"{'xcheck':>9s} {'min margin':>10s}")
    for name, arch, tied, nfiles, params, size, worst, margin, extra in rows:
        tie_note = "" if margin >= MIN_MARGIN else " (near-tie kept: no clear prompt found)"
        print(f"{name:18s} {arch:8s} {tied:7s} {nfiles:5d} {params:8d} {size:9d} {worst:9.2e} {margin:10.4f}"
              f"{extra}{tie_note}")
    total = folder_bytes(args.out)
    print(f"\nmake_fixtures: these fixtures {ours} bytes; whole {args.out} {total} bytes; "
          f"transformers {transformers.__version__}, torch {torch.__version__}", flush=True)
    if ours > SIZE_LIMIT:
        fail(f"fixtures take {ours} bytes, over the {SIZE_LIMIT} byte budget")


if __name__ == "__main__":
    main()
