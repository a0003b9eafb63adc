#!/usr/bin/env python3
"""make_random_model.py — random-weight checkpoints with the exact geometry of real models, for benchmarks.

  make_random_model.py --preset {qwen2.5-0.5b,llama-3.2-1b,llama-3.1-8b,llama-3.1-70b} --out DIR
                       [--layers N] [--dtype bf16|f16|f32] [--seed 0] [--tokenizer DIR]
                       [--device cuda|cpu] [--max-shard-size 5GB]

The config matches the published config.json of each model (geometry, RoPE, tying, special token ids).
The model is built directly on the GPU in the target dtype (an 8B model built on the CPU takes minutes),
every matrix and bias is redrawn from N(0, 0.02^2) with a seeded generator and every norm weight set to 1,
then it is moved to the CPU and written with save_pretrained (llama-3.1-8b comes out in 4 shards at the
default --max-shard-size). --layers N keeps the preset's layer geometry with N layers (a 70B-class
layer stack that fits the GPUs at hand: llama-3.1-70b's 80 layers are 141 GB in bf16, more than one
H200 holds, so the full preset needs --device cpu and tensor parallelism to run). With --tokenizer DIR the tokenizer files of DIR are copied beside it (random
weights need no particular tokenizer, but the engine wants one to run `generate`).
Exit 0 ok, 1 failure, 2 usage.
"""
import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

LLAMA3_ROPE = {"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
PRESETS = {
    # Qwen/Qwen2.5-0.5B
    "qwen2.5-0.5b": dict(arch="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True,
                         bos_token_id=151643, eos_token_id=151643, theta=1000000.0, scaling=None),
    # meta-llama/Llama-3.2-1B
    "llama-3.2-1b": dict(arch="llama", vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                         num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         bos_token_id=128000, eos_token_id=128001, theta=500000.0,
                         scaling=dict(LLAMA3_ROPE, factor=32.0)),
    # meta-llama/Llama-3.1-8B
    "llama-3.1-8b": dict(arch="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                         bos_token_id=128000, eos_token_id=128001, theta=500000.0,
                         scaling=dict(LLAMA3_ROPE, factor=8.0)),
    # meta-llama/Llama-3.1-70B
    "llama-3.1-70b": dict(arch="llama", vocab_size=128256, hidden_size=8192, intermediate_size=28672,
                          num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8, head_dim=128,
                          max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                          bos_token_id=128000, eos_token_id=128001, theta=500000.0,
                          scaling=dict(LLAMA3_ROPE, factor=8.0)),
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt")


def fail(msg, code=1):
    print(f"make_random_model.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_config(transformers, preset, layers=None):
    from make_fixtures import rope_config_kwargs
    spec = dict(PRESETS[preset])
    if layers:
        spec["num_hidden_layers"] = layers
    arch, theta, scaling = spec.pop("arch"), spec.pop("theta"), spec.pop("scaling")
    spec.update(rope_config_kwargs(transformers, theta, scaling), hidden_act="silu", initializer_range=0.02)
    if arch == "qwen2":
        spec.update(use_sliding_window=False, sliding_window=None, max_window_layers=spec["num_hidden_layers"])
        return transformers.Qwen2Config(**spec), transformers.Qwen2ForCausalLM
    return transformers.LlamaConfig(**spec), transformers.LlamaForCausalLM


def randomise(model, seed, device):
    """Matrices and biases N(0, 0.02^2), norm weights 1, drawn on `device` with a seeded generator."""
    import torch
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                p.fill_(1.0)
            elif p.dim() in (1, 2):
                p.normal_(0.0, 0.02, generator=gen)
            else:
                fail(f"no rule for parameter {name} {tuple(p.shape)}")


def stored_tensor_count(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        weight_map = json.load(open(index))["weight_map"]
        return len(weight_map), sorted(set(weight_map.values()))
    from safetensors import safe_open
    with safe_open(os.path.join(folder, "model.safetensors"), "pt") as f:
        return len(list(f.keys())), ["model.safetensors"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--out", required=True, help="output folder (created; must be empty or absent)")
    ap.add_argument("--layers", type=int, help="layers instead of the preset's (same per-layer geometry)")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", help="folder whose tokenizer files are copied beside the weights")
    ap.add_argument("--device", default="cuda", help="where to build and fill the weights (default cuda)")
    ap.add_argument("--max-shard-size", default="5GB", help="save_pretrained shard size (default 5GB)")
    args = ap.parse_args()
    if os.path.isdir(args.out) and os.listdir(args.out):
        fail(f"--out {args.out} exists and is not empty", 2)
    if args.layers is not None and args.layers < 1:
        fail(f"--layers {args.layers}: at least 1", 2)
    if args.tokenizer and not os.path.isfile(os.path.join(args.tokenizer, "tokenizer.json")):
        fail(f"--tokenizer {args.tokenizer} has no tokenizer.json", 2)
    try:
        import safetensors  # noqa: F401
        import torch
        import transformers
    except ImportError as e:
        fail(f"missing Python package: {e.name}")
    if args.device == "cuda" and not torch.cuda.is_available():
        fail("no CUDA device (use --device cpu, slow for the 8B preset)")
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[args.dtype]

    t0 = time.time()
    config, model_cls = build_config(transformers, args.preset, args.layers)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)                  # parameters are created in the target dtype ...
    try:
        with torch.device(args.device):             # ... directly on the device
            model = model_cls(config)
    finally:
        torch.set_default_dtype(default_dtype)
    randomise(model, args.seed, args.device)
    params = sum(p.numel() for p in model.parameters())
    log(f"{args.preset}: {params / 1e9:.3f}B parameters built on {args.device} in {time.time() - t0:.1f}s")
    model = model.to("cpu")
    model.save_pretrained(args.out, max_shard_size=args.max_shard_size)
    count, files = stored_tensor_count(args.out)
    expected = len(model.state_dict()) - (1 if config.tie_word_embeddings else 0)
    if count != expected:
        fail(f"{args.out}: {count} tensors stored, expected {expected}")
    if args.tokenizer:
        for name in TOKENIZER_FILES:
            if os.path.isfile(os.path.join(args.tokenizer, name)):
                shutil.copy(os.path.join(args.tokenizer, name), os.path.join(args.out, name))
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    log(f"wrote {args.out}: {len(files)} weight file(s), {count} tensors, {size / 1e9:.2f} GB, "
        f"{time.time() - t0:.1f}s in total")


if __name__ == "__main__":
    main()
