#!/usr/bin/env python3
"""make_lora_fixtures.py — PEFT LoRA adapters on the test checkpoints, and their reference outputs.

For each adapter below it writes tests/fixtures/lora/NAME/ (under --out) holding what PEFT's
`save_pretrained` writes (adapter_config.json, adapter_model.safetensors) and:

  reference.json  {"base": "../../llama-f32", "ids": [...], "scaling": s,
                   "cases": [{"scale": 1.0, "logits": "logits_1.f32"}, {"scale": 0.5, ...}],
                   "norms": [{"layer": L, "module": "q_proj", "a": |A|, "b": |B|, "ba": |s BA|,
                              "rel": |s BA| / |W0|}, ...], "peft": "0.x", ...}
  logits_*.f32    raw little-endian float32 [len(ids), vocab]: every position's logits with the
                  adapter applied at that multiple of its own scaling s (alpha / r, or
                  alpha / sqrt(r) with use_rslora)

The reference is Hugging Face transformers + peft on CPU in float32 (eager attention), with the base
checkpoint and the adapter as stored (a bf16 adapter is loaded and upcast, so the reference is the
exact float32 function of the stored values). The scale-0.5 case halves every LoRA layer's scaling in
PEFT's own modules. As a cross-check the script merges the adapter into a float64 copy of the base
weights by hand (W0 + s B A, from the saved tensors) and runs the plain transformers model on them: it
must agree with PEFT's unmerged forward. Norms are computed in float64 from the saved tensors.

PEFT initialises B to zero (an adapter that changes nothing); here A and B are both drawn at random,
B large enough that the adapter moves the logits by O(1), so a wrong scaling, a transposed factor or
a missed module shows.

Needs torch, transformers, peft, safetensors (the GPU machine has them; CUDA is not used).
Deterministic (seeded). Exit 0 ok, 1 failure, 2 usage.
"""
import argparse
import json
import math
import os
import shutil
import sys

ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# name, base fixture, rank, alpha, rsLoRA, target modules, adapter dtype
ADAPTERS = [
    dict(name="llama-all", base="llama-f32", r=4, alpha=8, rslora=False, modules=ALL, dtype="float32"),
    dict(name="qwen3-qv-rslora", base="qwen3-bf16", r=8, alpha=4, rslora=True, modules=["q_proj", "v_proj"],
         dtype="bfloat16"),
    dict(name="llama3rope-mlp", base="llama3rope-bf16", r=2, alpha=2, rslora=False,
         modules=["gate_proj", "up_proj", "down_proj"], dtype="bfloat16"),
    # The bundled demo target (it has a tokenizer, so the interface and the REPL can chat with it).
    dict(name="demo-r4", base="../../models/demo/target", r=4, alpha=4, rslora=False, modules=ALL, dtype="bfloat16",
         ids=[1, 450, 4996, 17354, 1701, 432, 29889, 13, 450, 2107]),
]
SCALES = (1.0, 0.5)


def fail(msg):
    print(f"make_lora_fixtures.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def lora_layers(model):
    from peft.tuners.lora import LoraLayer
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoraLayer)]


def randomise(model, generator):
    """A ~ N(0, 1/in), B ~ N(0, 0.5/r): each update s B A x is a sizeable fraction of W0 x."""
    import torch
    with torch.no_grad():
        for _, m in lora_layers(model):
            a, b = m.lora_A["default"].weight, m.lora_B["default"].weight
            a.copy_(torch.randn(a.shape, generator=generator) / math.sqrt(a.shape[1]))
            b.copy_(torch.randn(b.shape, generator=generator) * math.sqrt(0.5 / b.shape[1]))


def read_tensors(path):
    from safetensors.torch import load_file
    return load_file(path)


def parse_key(key):
    """'base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight' -> (3, 'q_proj', 'A')."""
    parts = key.split(".")
    i = parts.index("layers")
    return int(parts[i + 1]), parts[i + 3], parts[i + 4][-1]


def norms_of(adapter_tensors, base_tensors, scaling):
    import torch
    pairs = {}
    for key, t in adapter_tensors.items():
        layer, module, which = parse_key(key)
        pairs.setdefault((layer, module), {})[which] = t.to(torch.float64)
    rows = []
    for (layer, module), ab in sorted(pairs.items(), key=lambda kv: (kv[0][0], ALL.index(kv[0][1]))):
        a, b = ab["A"], ab["B"]
        group = "self_attn" if module in ALL[:4] else "mlp"
        w0 = base_tensors[f"model.layers.{layer}.{group}.{module}.weight"].to(torch.float64)
        ba = scaling * (b @ a)
        rows.append(dict(layer=layer, module=module, a=a.norm().item(), b=b.norm().item(), ba=ba.norm().item(),
                         rel=ba.norm().item() / w0.norm().item()))
    return rows


def merged_logits(transformers, base_dir, adapter_tensors, scaling, ids):
    """The plain model on W0 + s B A (float64 merge by hand), float32 forward."""
    import torch
    model = transformers.AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32,
                                                              attn_implementation="eager").eval()
    pairs = {}
    for key, t in adapter_tensors.items():
        layer, module, which = parse_key(key)
        pairs.setdefault((layer, module), {})[which] = t.to(torch.float64)
    with torch.no_grad():
        for (layer, module), ab in pairs.items():
            group = "self_attn" if module in ALL[:4] else "mlp"
            lin = getattr(getattr(model.model.layers[layer], group), module)
            w = lin.weight.to(torch.float64) + scaling * (ab["B"] @ ab["A"])
            lin.weight.copy_(w.to(torch.float32))
        return model(torch.tensor([ids])).logits[0].float()


def write_adapter(transformers, peft, torch, spec, fixtures, out_root, generator):
    """A random adapter of spec on its base checkpoint, saved as PEFT saves one, and its reference."""
    base_dir = os.path.join(fixtures, spec["base"])
    folder = os.path.join(out_root, spec["name"])
    dtype = getattr(torch, spec["dtype"])
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype, attn_implementation="eager")
    cfg = peft.LoraConfig(r=spec["r"], lora_alpha=spec["alpha"], use_rslora=spec["rslora"],
                          target_modules=spec["modules"], lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, cfg, autocast_adapter_dtype=False)  # the adapter in the base's dtype
    randomise(model, generator)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    if "ids" in spec:
        ids = [i % base.config.vocab_size for i in spec["ids"]]
    else:
        with open(os.path.join(base_dir, "reference.json")) as f:
            ids = json.load(f)["cases"][1]["ids"]
    write_reference(transformers, peft, torch, base_dir, folder, folder, ids)


def write_reference(transformers, peft, torch, base_dir, adapter_dir, folder, ids, min_move=0.5):
    """reference.json and logits_*.f32 in folder for the adapter stored in adapter_dir (folder itself, or
    another folder that reference.json then names as "adapter"), on the checkpoint in base_dir."""
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(os.path.normpath(folder))
    # The reference: the stored adapter on the stored base, upcast to float32.
    base32 = transformers.AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32,
                                                                attn_implementation="eager")
    ref = peft.PeftModel.from_pretrained(base32, adapter_dir).float().eval()
    config = ref.peft_config["default"]
    layers = lora_layers(ref)
    scaling = layers[0][1].scaling["default"]
    want = config.lora_alpha / (math.sqrt(config.r) if config.use_rslora else config.r)
    if abs(scaling - want) > 1e-12 or any(abs(m.scaling["default"] - scaling) > 1e-12 for _, m in layers):
        fail(f"{name}: PEFT's scaling {scaling} is not {want}")
    cases = []
    with torch.no_grad():
        plain = None
        for scale in SCALES:
            for _, m in layers:
                m.scaling["default"] = scaling * scale
            logits = ref(torch.tensor([ids])).logits[0].float()
            file = f"logits_{scale:g}.f32"
            logits.numpy().astype("<f4").tofile(os.path.join(folder, file))
            cases.append(dict(scale=scale, logits=file))
            if scale == 1.0:
                plain = logits
        with ref.disable_adapter():
            base_logits = ref(torch.tensor([ids])).logits[0].float()
    adapter_tensors = read_tensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    merged = merged_logits(transformers, base_dir, adapter_tensors, scaling, ids)
    diff = (merged - plain).abs().max().item()
    if diff > 2e-4 * max(1.0, plain.abs().max().item()):
        fail(f"{name}: PEFT's forward and the hand-merged weights differ by {diff}")
    moved = (plain - base_logits).abs().max().item()
    if moved < min_move:
        fail(f"{name}: the adapter moves the logits by only {moved}")
    base_tensors = read_tensors(os.path.join(base_dir, "model.safetensors"))
    modules = [m for m in ALL if m in config.target_modules]
    dtype = str(next(iter(adapter_tensors.values())).dtype).replace("torch.", "")
    reference = dict(base=os.path.relpath(os.path.normpath(base_dir), os.path.normpath(folder)), ids=ids,
                     scaling=scaling, rank=config.r, alpha=config.lora_alpha, use_rslora=config.use_rslora,
                     modules=modules, dtype=dtype, vocab=int(plain.shape[1]), cases=cases,
                     norms=norms_of(adapter_tensors, base_tensors, scaling),
                     crosscheck_merged_max_abs_diff=diff, adapter_moves_logits_by=moved,
                     peft=peft.__version__, transformers=transformers.__version__,
                     reference="transformers + peft forward on CPU, float32, eager attention, stored weights")
    if os.path.normpath(adapter_dir) != os.path.normpath(folder):
        reference = dict(adapter=os.path.relpath(os.path.normpath(adapter_dir), os.path.normpath(folder)), **reference)
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(adapter_dir, n)) for n in os.listdir(adapter_dir))
    print(f"{name:18s} r={config.r} s={scaling:.4f} {len(reference['norms'])} modules, "
          f"logits moved {moved:.2f}, merged cross-check {diff:.2e}, {size} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", default="tests/fixtures", help="the base checkpoints (make_fixtures.py)")
    ap.add_argument("--out", default="tests/fixtures/lora")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", help="write just this adapter (a name above)")
    args = ap.parse_args()
    try:
        import peft
        import torch
        import transformers
    except ImportError as e:
        print(f"make_lora_fixtures.py: {e}", file=sys.stderr)
        sys.exit(2)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    for index, spec in enumerate(ADAPTERS):
        if args.only and spec["name"] != args.only:
            continue
        generator = torch.Generator().manual_seed(args.seed * 1000 + index)  # each adapter on its own
        write_adapter(transformers, peft, torch, spec, args.fixtures, args.out, generator)


if __name__ == "__main__":
    main()
