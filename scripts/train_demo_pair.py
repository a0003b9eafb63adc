#!/usr/bin/env python3
"""train_demo_pair.py — trains the bundled demo pair (a ~16M target and a ~3M draft) on one GPU.

  train_demo_pair.py --corpus DIR --out models/demo [--minutes 7.5] [--seed 0] [--seq-len 512]

DIR holds train.txt and valid.txt from scripts/make_corpus.sh. In one run, within --minutes of
wall-clock time in total:
  1. trains a byte-level BPE tokenizer (HF tokenizers; vocab 8192; GPT-2 style ByteLevel pre-tokenizer
     and decoder; <|endoftext|> is BOS, EOS and the document separator);
  2. encodes the corpus into one token stream (EOS after each document);
  3. trains the target, a LlamaForCausalLM (hidden 384, 8 layers, 6 heads, 2 KV heads, MLP 1024,
     tied embeddings, RoPE theta 10000, 1024 positions), then the draft (hidden 192, 4 layers, 3 heads,
     1 KV head, MLP 512, tied). bf16 autocast, AdamW, warm-up then cosine decay, windows of --seq-len
     tokens in a seeded order (a fresh permutation and offset each epoch). The step count is fixed
     after timing the first steps so the schedule fits the time share; an epoch cap stops short runs
     from over-fitting; the weights of the epoch with the best held-out loss are kept. The draft is
     distilled from the target (loss = 0.5 cross-entropy + 0.5 KL to the target's distribution) unless
     --no-distill;
  4. saves both in bf16 with save_pretrained into OUT/target and OUT/draft, with tokenizer.json and
     tokenizer_config.json in each;
  5. reloads them with transformers and writes OUT/eval.json: held-out loss / perplexity / top-1 of
     each model, greedy agreement (share of held-out positions where argmax(draft) == argmax(target)),
     sample continuations, step counts, timings, versions and the exact command.
Exit 0 ok, 1 failure, 2 usage. Progress goes to stdout, flushed line by line.
"""
import argparse
import json
import math
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_demo_pair as ev  # noqa: E402  (same folder)

VOCAB = 8192
MAX_POSITIONS = 1024
SIZE_LIMIT = 40 * 1000 * 1000
TARGET = dict(hidden_size=384, num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=2,
              intermediate_size=1024)
DRAFT = dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=3, num_key_value_heads=1,
             intermediate_size=512)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------
# Tokenizer

def train_tokenizer(train_docs, sample_every):
    """Byte-level BPE like GPT-2's, trained on every `sample_every`-th training document."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, special_tokens=[ev.EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    sample = train_docs[::sample_every]
    tok.train_from_iterator(sample, trainer=trainer, length=len(sample))
    if tok.get_vocab_size() != VOCAB:
        ev.fail(f"tokenizer came out with {tok.get_vocab_size()} tokens, not {VOCAB}")
    if tok.token_to_id(ev.EOT) != 0:
        ev.fail(f"{ev.EOT} is id {tok.token_to_id(ev.EOT)}, expected 0")
    probe = "Tokenizers round-trip: naïve café, tabs\tand  spaces.\n"
    if tok.decode(tok.encode(probe).ids) != probe:
        ev.fail("the trained tokenizer does not round-trip text")
    return tok


def write_tokenizer(tok, folder):
    tok.save(os.path.join(folder, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": ev.EOT, "eos_token": ev.EOT, "unk_token": None, "pad_token": None,
        "add_bos_token": False, "add_eos_token": False,
        "model_max_length": MAX_POSITIONS, "clean_up_tokenization_spaces": False,
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")


# ---------------------------------------------------------------------------------------------------
# Models and training

def build_model(transformers, geometry, eos_id, seed):
    import torch
    from make_fixtures import rope_config_kwargs
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, max_position_embeddings=MAX_POSITIONS, rms_norm_eps=1e-5, hidden_act="silu",
        tie_word_embeddings=True, bos_token_id=eos_id, eos_token_id=eos_id, initializer_range=0.02,
        **geometry, **rope_config_kwargs(transformers, 10000.0, None))
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(config)


def lr_at(step, total, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model, lr, device):
    import torch
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **extra)


def valid_loss(model, valid_x, valid_y, device, batch=32):
    import torch
    import torch.nn.functional as F
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
        for s in range(0, len(valid_x), batch):
            x, y = valid_x[s:s + batch].to(device), valid_y[s:s + batch].to(device)
            logits = model(input_ids=x, use_cache=False).logits.float()
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    model.train()
    return total / count


def train_model(name, model, train_tokens, valid_xy, args, deadline, peak_lr, teacher=None):
    """Trains until the planned step count (fitted to `deadline` after timing the first steps) or the
    epoch cap; keeps the weights of the epoch with the best held-out loss. Returns a stats dict."""
    import torch
    import torch.nn.functional as F
    device, seq, batch = args.device, args.seq_len, args.batch
    model.to(device).train()
    opt = make_optimizer(model, peak_lr, device)
    gen = torch.Generator().manual_seed(args.seed + (1 if teacher is not None else 0))
    tokens = train_tokens.to(device)
    steps_per_epoch = ((len(tokens) - seq - 1) // seq) // batch
    if steps_per_epoch < 1:
        ev.fail(f"{name}: corpus too small for one batch of {batch} x {seq} tokens")
    cap_steps = steps_per_epoch * args.max_epochs
    warmup = min(200, max(10, cap_steps // 20))
    planned = None                     # fixed once the first steps are timed
    probe_from, probe_to = 5, 25
    best = (float("inf"), None, 0.0)   # held-out loss, weights, epoch
    history, step, epoch, t_start, t_probe = [], 0, 0, time.time(), None
    arange = torch.arange(seq + 1, device=device)
    autocast = dict(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda")
    log(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, {len(tokens) / 1e6:.2f}M tokens, "
        f"{steps_per_epoch} steps/epoch of {batch}x{seq}, cap {args.max_epochs} epochs, peak lr {peak_lr}")
    finished = False
    while not finished:
        offset = int(torch.randint(0, seq, (1,), generator=gen))
        n_windows = (len(tokens) - offset - 1) // seq
        order = torch.randperm(n_windows, generator=gen)[:steps_per_epoch * batch].view(steps_per_epoch, batch)
        for b in range(steps_per_epoch):
            if step == probe_to:
                per_step = (time.time() - t_probe) / (probe_to - probe_from)
                fit = int((deadline - time.time()) / (per_step * 1.04)) + step  # 4% for held-out checks
                planned = max(step + 1, min(cap_steps, fit))
                log(f"{name}: {per_step * 1000:.1f} ms/step, {batch * seq / per_step / 1e6:.2f}M tok/s; "
                    f"planning {planned} steps ({planned / steps_per_epoch:.1f} epochs)")
            total = planned or cap_steps
            if step >= total:
                finished = True
                break
            if time.time() > deadline + 20:
                log(f"{name}: 20 s past its time share at step {step}; stopping here")
                finished = True
                break
            starts = order[b].to(device) * seq + offset
            chunk = tokens[starts[:, None] + arange]
            x, y = chunk[:, :-1], chunk[:, 1:]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, peak_lr, warmup)
            with torch.autocast(**autocast):
                logits = model(input_ids=x, use_cache=False).logits
            logits = logits.float().reshape(-1, logits.shape[-1])
            ce = F.cross_entropy(logits, y.reshape(-1))
            loss = ce
            if teacher is not None:
                with torch.no_grad(), torch.autocast(**autocast):
                    t_logits = teacher(input_ids=x, use_cache=False).logits
                t_logp = F.log_softmax(t_logits.float().reshape(-1, t_logits.shape[-1]), -1)
                kl = F.kl_div(F.log_softmax(logits, -1), t_logp, log_target=True, reduction="batchmean")
                loss = 0.5 * ce + 0.5 * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step in (probe_from, probe_to) or step % 100 == 0 or step == 1:
                value = ce.item()              # also waits for the GPU, so the probe times are real
                if step == probe_from:
                    t_probe = time.time()
                if not math.isfinite(value):
                    ev.fail(f"{name}: loss became {value} at step {step}")
                if step % 100 == 0 or step == 1:
                    extra = f" (with distillation {loss.item():.4f})" if teacher is not None else ""
                    log(f"{name}: step {step}/{total} epoch {epoch} loss {value:.4f}{extra} "
                        f"lr {opt.param_groups[0]['lr']:.2e} {time.time() - t_start:.0f}s")
        else:
            epoch += 1
        if not history or history[-1]["step"] != step:
            v = valid_loss(model, *valid_xy, device)
            at = round(step / steps_per_epoch, 2)
            history.append({"epoch": at, "step": step, "valid_loss": round(v, 4)})
            log(f"{name}: epoch {at} (step {step}) held-out loss {v:.4f}")
            if v < best[0]:
                best = (v, {k: t.detach().clone() for k, t in model.state_dict().items()}, at)
    if best[1] is not None:
        model.load_state_dict(best[1])
    return {"steps": step, "planned_steps": planned, "epochs": round(step / steps_per_epoch, 2),
            "best_epoch": best[2], "tokens_seen": step * batch * seq, "train_seconds": round(time.time() - t_start, 1),
            "peak_lr": peak_lr, "batch": batch, "seq_len": seq, "distilled": teacher is not None,
            "valid_history": history}


def save_model(model, tok, folder):
    import torch
    os.makedirs(folder, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(folder)
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        ev.fail(f"{folder}: save_pretrained wrote no model.safetensors ({sorted(os.listdir(folder))})")
    write_tokenizer(tok, folder)


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="folder with train.txt and valid.txt")
    ap.add_argument("--out", required=True, help="output folder (e.g. models/demo)")
    ap.add_argument("--minutes", type=float, default=7.5, help="wall-clock budget for the whole run (default 7.5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seq-len", type=int, default=512, help="training window (default 512)")
    ap.add_argument("--batch", type=int, default=128, help="windows per step (default 128)")
    ap.add_argument("--max-epochs", type=int, default=10, help="epoch cap per model (default 10)")
    ap.add_argument("--target-share", type=float, default=0.68,
                    help="share of the training time given to the target (default 0.68)")
    ap.add_argument("--no-distill", action="store_true", help="train the draft on the text alone")
    ap.add_argument("--tokenizer-sample", type=int, default=2,
                    help="train the tokenizer on every Nth training document (default 2)")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (slow; for smoke tests)")
    args = ap.parse_args()
    t0 = time.time()
    budget = args.minutes * 60
    if not 0.1 < args.target_share < 0.95 or args.seq_len < 16 or args.seq_len > MAX_POSITIONS or args.batch < 1:
        ap.error("--target-share must be in (0.1, 0.95), --seq-len in [16, 1024], --batch >= 1")
    try:
        import tokenizers
        import torch
        import transformers
    except ImportError as e:
        ev.fail(f"missing Python package: {e.name}")
    if args.device == "cuda" and not torch.cuda.is_available():
        ev.fail("no CUDA device (use --device cpu for a smoke test)")
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    os.makedirs(args.out, exist_ok=True)
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
        f"device {torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}")

    train_docs = ev.read_documents(os.path.join(args.corpus, "train.txt"))
    valid_docs = ev.read_documents(os.path.join(args.corpus, "valid.txt"))
    log(f"corpus: {len(train_docs)} train documents, {len(valid_docs)} held-out")
    tok = train_tokenizer(train_docs, args.tokenizer_sample)
    eos = tok.token_to_id(ev.EOT)
    log(f"tokenizer: {tok.get_vocab_size()} tokens ({time.time() - t0:.0f}s)")
    train_tokens = ev.encode_documents(tok, train_docs, eos)
    valid_tokens = ev.encode_documents(tok, valid_docs, eos)
    train_bytes = sum(len(d.encode()) for d in train_docs)
    log(f"encoded: {len(train_tokens) / 1e6:.2f}M train tokens ({train_bytes / len(train_tokens):.2f} bytes/token), "
        f"{len(valid_tokens) / 1e3:.0f}k held-out ({time.time() - t0:.0f}s)")
    valid_xy = ev.windows(valid_tokens, args.seq_len)

    reserve = 45.0                                   # saving, reloading, evaluating, samples
    train_time = budget - (time.time() - t0) - reserve
    if train_time < 60:
        ev.fail(f"only {train_time:.0f}s left for training; raise --minutes")
    target = build_model(transformers, TARGET, eos, args.seed)
    t_stats = train_model("target", target, train_tokens, valid_xy, args,
                          time.time() + train_time * args.target_share, peak_lr=2e-3)
    draft = build_model(transformers, DRAFT, eos, args.seed + 1)
    teacher = None if args.no_distill else target.eval()
    d_stats = train_model("draft", draft, train_tokens, valid_xy, args,
                          t0 + budget - reserve, peak_lr=3e-3, teacher=teacher)

    save_model(target, tok, os.path.join(args.out, "target"))
    save_model(draft, tok, os.path.join(args.out, "draft"))
    del target, draft, teacher
    log("saved; evaluating the stored models with transformers")
    result = ev.evaluate_folder(args.out, args.corpus, args.seq_len, args.device)
    size = folder_bytes(args.out)
    report = {
        "command": "python3 " + " ".join(shlex.quote(a) for a in sys.argv),
        "seed": args.seed,
        "corpus": {"train_documents": len(train_docs), "valid_documents": len(valid_docs),
                   "train_bytes": train_bytes, "train_tokens": len(train_tokens),
                   "valid_tokens": len(valid_tokens), "bytes_per_token": round(train_bytes / len(train_tokens), 3)},
        "tokenizer": {"type": "byte-level BPE", "vocab": VOCAB, "special": [ev.EOT]},
        "target_config": dict(TARGET, vocab_size=VOCAB, tie_word_embeddings=True),
        "draft_config": dict(DRAFT, vocab_size=VOCAB, tie_word_embeddings=True),
        "target_training": t_stats, "draft_training": d_stats,
        "eval": result,
        "output_bytes": size,
        "total_seconds": round(time.time() - t0, 1),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
    }
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    log(f"target: held-out loss {result['target']['loss']:.4f} (ppl {result['target']['perplexity']:.2f}, "
        f"top-1 {result['target']['top1_accuracy']:.3f})")
    log(f"draft:  held-out loss {result['draft']['loss']:.4f} (ppl {result['draft']['perplexity']:.2f}, "
        f"top-1 {result['draft']['top1_accuracy']:.3f})")
    log(f"greedy agreement {result['greedy_agreement']:.4f} over {result['positions']} positions")
    for s in result["samples"]:
        log(f"sample {s['prompt']!r}\n  target: {s['target']!r}\n  draft:  {s['draft']!r}")
    log(f"wrote {args.out} ({size / 1e6:.2f} MB) in {time.time() - t0:.0f}s")
    if size > SIZE_LIMIT:
        ev.fail(f"{args.out} is {size} bytes, over the {SIZE_LIMIT} byte budget")


if __name__ == "__main__":
    main()
