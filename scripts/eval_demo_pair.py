#!/usr/bin/env python3
"""eval_demo_pair.py — held-out loss, perplexity and greedy agreement of the demo model pair.

  eval_demo_pair.py --models models/demo --corpus DIR [--seq-len 512] [--json FILE]

Reads MODELS/target and MODELS/draft with transformers (the stored bf16 weights, computed in float32),
tokenizes DIR/valid.txt with MODELS/target/tokenizer.json, cuts it into windows of --seq-len tokens and
reports for each model the mean next-token loss, perplexity and top-1 accuracy, and for the pair the
greedy agreement: the share of held-out positions where argmax(draft) == argmax(target). It also writes
greedy continuations of a few fixed prompts. train_demo_pair.py imports the same functions.

Corpus format (scripts/make_corpus.sh): plain text where a line holding only <|endoftext|> ends a document.
Exit 0 ok, 1 failure, 2 usage.
"""
import argparse
import json
import math
import os
import re
import sys
import time

EOT = "<|endoftext|>"
SAMPLE_PROMPTS = ["The history of", "In the beginning", "To configure the kernel,", "def main():"]


def fail(msg):
    print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def log(msg):
    print(msg, flush=True)


def read_documents(path):
    """The documents of a corpus file, in file order."""
    if not os.path.isfile(path):
        fail(f"corpus file {path} not found")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    docs = [d.strip("\n") for d in re.split(r"^<\|endoftext\|>\n", text, flags=re.M)]
    docs = [d for d in docs if d]
    if not docs:
        fail(f"corpus file {path} holds no document")
    return docs


def encode_documents(tokenizer, docs, eos_id, chunk=4096):
    """One token stream: each document's ids followed by EOS. Returns a torch int64 tensor."""
    import torch
    ids = []
    for start in range(0, len(docs), chunk):
        for enc in tokenizer.encode_batch(docs[start:start + chunk], add_special_tokens=False):
            ids.extend(enc.ids)
            ids.append(eos_id)
    return torch.tensor(ids, dtype=torch.int64)


def windows(tokens, seq_len, offset=0):
    """Non-overlapping (input, label) windows of seq_len tokens starting at `offset`."""
    usable = tokens[offset:]
    n = (len(usable) - 1) // seq_len
    if n < 1:
        fail(f"only {len(usable)} tokens: not one window of {seq_len}")
    x = usable[:n * seq_len].view(n, seq_len)
    y = usable[1:n * seq_len + 1].view(n, seq_len)
    return x, y


def load_model(folder, device):
    """A saved model, computed in float32 from its stored weights."""
    import torch
    import transformers
    if not os.path.isfile(os.path.join(folder, "config.json")):
        fail(f"{folder}/config.json not found")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    return model.float().to(device).eval()


def evaluate_pair(target, draft, tokens, seq_len, device, batch=32):
    """Loss / perplexity / top-1 of each model and their greedy agreement over all held-out windows."""
    import torch
    import torch.nn.functional as F
    x_all, y_all = windows(tokens, seq_len)
    sums = {"target": [0.0, 0], "draft": [0.0, 0]}
    agree = total = 0
    with torch.no_grad():
        for start in range(0, len(x_all), batch):
            x = x_all[start:start + batch].to(device)
            y = y_all[start:start + batch].to(device).reshape(-1)
            argmax = {}
            for name, model in (("target", target), ("draft", draft)):
                logits = model(input_ids=x, use_cache=False).logits.float()
                logits = logits.reshape(-1, logits.shape[-1])
                sums[name][0] += F.cross_entropy(logits, y, reduction="sum").item()
                argmax[name] = logits.argmax(-1)
                sums[name][1] += (argmax[name] == y).sum().item()
            agree += (argmax["target"] == argmax["draft"]).sum().item()
            total += y.numel()
    out = {"positions": total, "seq_len": seq_len, "greedy_agreement": agree / total}
    for name, (loss_sum, correct) in sums.items():
        loss = loss_sum / total
        perplexity = math.exp(loss) if loss < 700 else float("inf")
        out[name] = {"loss": loss, "perplexity": perplexity, "top1_accuracy": correct / total}
    return out


def greedy_text(model, tokenizer, prompt, new_tokens, device):
    """Greedy continuation (full forward each step: slow but cache-free and plain)."""
    import torch
    ids = tokenizer.encode(prompt, add_special_tokens=False).ids
    prompt_len = len(ids)
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits
            ids.append(int(logits[0, -1].argmax()))
    return tokenizer.decode(ids[prompt_len:], skip_special_tokens=False)


def samples(target, draft, tokenizer, device, new_tokens=40):
    return [{"prompt": p, "target": greedy_text(target, tokenizer, p, new_tokens, device),
             "draft": greedy_text(draft, tokenizer, p, new_tokens, device)} for p in SAMPLE_PROMPTS]


def hf_tokenizer_matches(folder, tokenizer):
    """Whether transformers' AutoTokenizer reads the folder and encodes like the tokenizer.json itself."""
    import transformers
    text = "In the beginning, the kernel's scheduler (see Documentation/) ran  twice.\n"
    try:
        hf = transformers.AutoTokenizer.from_pretrained(folder)
        return hf(text, add_special_tokens=False)["input_ids"] == tokenizer.encode(text, add_special_tokens=False).ids
    except Exception as e:            # reported, not fatal: the engine reads tokenizer.json itself
        log(f"note: transformers could not use the tokenizer in {folder}: {e}")
        return False


def evaluate_folder(models_dir, corpus_dir, seq_len, device):
    """Everything eval.json reports about a saved pair."""
    import tokenizers
    t0 = time.time()
    tok_path = os.path.join(models_dir, "target", "tokenizer.json")
    if not os.path.isfile(tok_path):
        fail(f"{tok_path} not found")
    tokenizer = tokenizers.Tokenizer.from_file(tok_path)
    eos_id = tokenizer.token_to_id(EOT)
    if eos_id is None:
        fail(f"{tok_path} has no {EOT} token")
    valid = encode_documents(tokenizer, read_documents(os.path.join(corpus_dir, "valid.txt")), eos_id)
    target = load_model(os.path.join(models_dir, "target"), device)
    draft = load_model(os.path.join(models_dir, "draft"), device)
    result = evaluate_pair(target, draft, valid, seq_len, device)
    result["samples"] = samples(target, draft, tokenizer, device)
    result["hf_tokenizer_matches"] = hf_tokenizer_matches(os.path.join(models_dir, "target"), tokenizer)
    result["eval_seconds"] = round(time.time() - t0, 1)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True, help="folder holding target/ and draft/")
    ap.add_argument("--corpus", required=True, help="folder holding valid.txt")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--json", help="also write the result to this file")
    args = ap.parse_args()
    try:
        import tokenizers  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        fail(f"missing Python package: {e.name}")
    if args.device == "cuda" and not torch.cuda.is_available():
        fail("no CUDA device (use --device cpu)")
    result = evaluate_folder(args.models, args.corpus, args.seq_len, args.device)
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    log(text)


if __name__ == "__main__":
    main()
