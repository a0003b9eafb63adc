#!/usr/bin/env python3
"""make_random_lora.py — a random-weight PEFT LoRA adapter for a checkpoint, for benchmarks.

  scripts/make_random_lora.py --base DIR --out DIR [--r 16] [--alpha 32] [--modules all|q_proj,v_proj,...]
                              [--rslora] [--seed 1]

Writes what PEFT's save_pretrained writes (adapter_config.json, adapter_model.safetensors) in the
base's dtype, with A and B both drawn at random (make_lora_fixtures.py's randomise: PEFT's own init
leaves B zero, and an adapter that changes nothing is not what a benchmark should run). The base is
loaded on the CPU; needs torch, transformers and peft (the GPU machine has them). Exit 0 ok, 2 usage.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_lora_fixtures import ALL, randomise  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="the checkpoint folder the adapter is for")
    ap.add_argument("--out", required=True)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--modules", default="all", help="all, or a comma-separated list of projections")
    ap.add_argument("--rslora", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    modules = ALL if args.modules == "all" else args.modules.split(",")
    if any(m not in ALL for m in modules):
        print(f"make_random_lora.py: --modules: each of {','.join(ALL)}", file=sys.stderr)
        sys.exit(2)
    import peft
    import torch
    import transformers
    base = transformers.AutoModelForCausalLM.from_pretrained(args.base, dtype="auto")
    cfg = peft.LoraConfig(r=args.r, lora_alpha=args.alpha, use_rslora=args.rslora, target_modules=modules,
                          lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, cfg, autocast_adapter_dtype=False)
    randomise(model, torch.Generator().manual_seed(args.seed))
    model.save_pretrained(args.out)
    print(f"{args.out}: r {args.r}, alpha {args.alpha}, {len(modules)} modules x {base.config.num_hidden_layers} layers")


if __name__ == "__main__":
    main()
