#!/usr/bin/env python3
"""train_demo_lora.py — a small trained LoRA adapter for the demo target: the King James Bible.

Trains a PEFT LoRA adapter (r 8, alpha 16, all seven projections) on the KJV documents of the demo
corpus (scripts/make_corpus.sh: the documents whose lines are mostly numbered verses) with the
Stable-LoRA rule of DESIGN.md: before each optimiser step, while |A|_F >= (numel(A) / numel(B)) |B|_F,
A <- (1 - lambda) A; once the inequality flips, that module stops shrinking for good. With the
adapter on, the demo target turns any prompt towards scripture, which the unadapted draft then
guesses less often: what `scripts/sweep_lora_scale.lua` and the interface's lora pane show.

Writes:
  OUT/adapter_config.json, OUT/adapter_model.safetensors   the adapter (bf16), PEFT's format (an
                      existing OUT/README.md is kept over the template card PEFT writes)
  OUT/training.json   the run: command, seed, steps, held-out losses with and without the adapter
                      (KJV and the rest of the corpus), and every module's |A|, |B| and whether it
                      still shrinks at a few steps (the norms a person watches, DESIGN.md)
  FIXTURE/reference.json, FIXTURE/logits_*.f32   PEFT's float32 logits of the stored adapter on the
                      stored target at scale 1 and 0.5 and float64 norms (make_lora_fixtures.py's
                      format, with "adapter" pointing at OUT), which tests/test_lora.c checks

Needs torch, transformers, peft, safetensors, tokenizers (the GPU machine has them); trains on CUDA
when present. Deterministic for a seed on one machine. Exit 0 ok, 1 failure, 2 usage.
"""
import argparse
import json
import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_lora_fixtures  # noqa: E402  (the reference writer and its checks)

MODULES = make_lora_fixtures.ALL
VERSE = re.compile(r"^\d+ ")
EOT = "<|endoftext|>\n"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def is_scripture(text):
    """A KJV document or block: most of its lines are numbered verses."""
    lines = [line for line in text.split("\n") if line.strip()]
    return len(lines) >= 3 and sum(bool(VERSE.match(line)) for line in lines) >= 0.5 * len(lines)


def split_corpus(corpus):
    with open(os.path.join(corpus, "train.txt"), encoding="utf-8") as f:
        train = [d for d in f.read().split(EOT) if is_scripture(d)]
    with open(os.path.join(corpus, "valid.txt"), encoding="utf-8") as f:
        blocks = [b for b in f.read().split(EOT) if b.strip()]
    return train, [b for b in blocks if is_scripture(b)], [b for b in blocks if not is_scripture(b)]


def encode(tokenizer, texts):
    ids = []
    for t in texts:
        ids.extend(tokenizer.encode(t).ids)
        ids.append(0)  # <|endoftext|>
    return ids


def lora_pairs(model):
    return [(name, m.lora_A["default"].weight, m.lora_B["default"].weight)
            for name, m in make_lora_fixtures.lora_layers(model)]


def module_key(name):
    """'base_model.model.model.layers.3.self_attn.q_proj' -> (3, 'q_proj')."""
    parts = name.split(".")
    i = parts.index("layers")
    return int(parts[i + 1]), parts[i + 3]


class StableLora:
    """Stable-LoRA's shrinking of A, per module, until its inequality first flips."""

    def __init__(self, model, lam):
        self.pairs = lora_pairs(model)
        self.lam = lam
        self.stopped = {name: None for name, _, _ in self.pairs}  # the step it stopped at

    def before_step(self, step, torch):
        with torch.no_grad():
            for name, a, b in self.pairs:
                if self.stopped[name] is not None:
                    continue
                if a.norm() >= (a.numel() / b.numel()) * b.norm():
                    a.mul_(1.0 - self.lam)
                else:
                    self.stopped[name] = step

    def snapshot(self, step):
        rows = []
        for name, a, b in self.pairs:
            layer, module = module_key(name)
            rows.append(dict(layer=layer, module=module, a=round(a.norm().item(), 6), b=round(b.norm().item(), 6),
                             shrinking=self.stopped[name] is None))
        return dict(step=step, modules=rows)


def held_out_loss(model, ids, seq, torch, device):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(ids) - seq, seq):
            x = torch.tensor([ids[i:i + seq + 1]], device=device)
            out = model(x[:, :-1], labels=x[:, :-1])
            total += out.loss.item() * (seq - 1)
            count += seq - 1
    model.train()
    return total / max(count, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/demo/target")
    ap.add_argument("--corpus", required=True, help="make_corpus.sh's output folder (train.txt, valid.txt)")
    ap.add_argument("--out", default="models/demo/lora-kjv")
    ap.add_argument("--fixture", default="tests/fixtures/lora/demo-kjv")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--stable-lambda", type=float, default=5e-4, help="Stable-LoRA's shrink factor (DESIGN.md)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    try:
        import peft
        import tokenizers
        import torch
        import transformers
    except ImportError as e:
        print(f"train_demo_lora.py: {e}", file=sys.stderr)
        sys.exit(2)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, {device}")

    train_docs, kjv_valid, other_valid = split_corpus(args.corpus)
    tok = tokenizers.Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    train_ids = encode(tok, train_docs)
    kjv_ids, other_ids = encode(tok, kjv_valid), encode(tok, other_valid)
    log(f"KJV: {len(train_docs)} training documents, {len(train_ids)} tokens; held out: {len(kjv_ids)} KJV "
        f"and {len(other_ids)} other tokens")
    if len(train_ids) < args.batch * (args.seq + 1) or not kjv_ids or not other_ids:
        print("train_demo_lora.py: too little KJV text in the corpus", file=sys.stderr)
        sys.exit(1)

    base = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).to(device)
    cfg = peft.LoraConfig(r=args.r, lora_alpha=args.alpha, target_modules=MODULES, lora_dropout=0.0, bias="none",
                          task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, cfg)
    model.train()
    with model.disable_adapter():
        before = dict(kjv=held_out_loss(model, kjv_ids, args.seq, torch, device),
                      other=held_out_loss(model, other_ids, args.seq, torch, device))
    log(f"held-out loss without the adapter: KJV {before['kjv']:.4f}, other {before['other']:.4f}")

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    stable = StableLora(model, args.stable_lambda)
    data = torch.tensor(train_ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(args.seed)
    snapshots = [stable.snapshot(0)]
    marks = {args.steps // 8, args.steps // 4, args.steps // 2, args.steps}
    t0 = time.time()
    for step in range(1, args.steps + 1):
        starts = torch.randint(0, len(data) - args.seq - 1, (args.batch,), generator=gen)
        x = torch.stack([data[s:s + args.seq + 1] for s in starts.tolist()]).to(device)
        loss = model(x[:, :-1], labels=x[:, :-1]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        stable.before_step(step, torch)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == 1:
            shrinking = sum(v is None for v in stable.stopped.values())
            log(f"step {step}/{args.steps} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"modules still shrinking A: {shrinking}/{len(stable.stopped)} ({time.time() - t0:.0f}s)")
        if step in marks:
            snapshots.append(stable.snapshot(step))
    after = dict(kjv=held_out_loss(model, kjv_ids, args.seq, torch, device),
                 other=held_out_loss(model, other_ids, args.seq, torch, device))
    log(f"held-out loss with the adapter: KJV {after['kjv']:.4f}, other {after['other']:.4f}")

    model = model.to("cpu")
    for _, a, b in lora_pairs(model):
        a.data = a.data.to(torch.bfloat16)
        b.data = b.data.to(torch.bfloat16)
    card = os.path.join(args.out, "README.md")  # PEFT writes a template card; the folder's own stays
    kept = open(card, encoding="utf-8").read() if os.path.exists(card) else None
    model.save_pretrained(args.out)
    if kept is not None:
        with open(card, "w", encoding="utf-8") as f:
            f.write(kept)
    run = dict(command=" ".join(sys.argv), seed=args.seed, steps=args.steps, batch=args.batch, seq=args.seq, r=args.r,
               alpha=args.alpha, lr=args.lr, stable_lora_lambda=args.stable_lambda, device=device,
               training_documents=len(train_docs), training_tokens=len(train_ids),
               held_out_tokens=dict(kjv=len(kjv_ids), other=len(other_ids)),
               held_out_loss=dict(without_adapter=before, with_adapter=after),
               stopped_shrinking_at={f"{k[0]}.{k[1]}": v for k, v in
                                     ((module_key(n), s) for n, s in stable.stopped.items())},
               norms=snapshots, torch=torch.__version__, transformers=transformers.__version__,
               peft=peft.__version__, seconds=round(time.time() - t0, 1))
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(run, f, indent=1)
        f.write("\n")
    ids = tok.encode("In the beginning was the kernel, and the kernel").ids
    make_lora_fixtures.write_reference(transformers, peft, torch, args.model, args.out, args.fixture, ids,
                                       min_move=0.1)
    log(f"wrote {args.out} and {args.fixture}")


if __name__ == "__main__":
    main()
