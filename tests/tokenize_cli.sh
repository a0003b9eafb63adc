#!/usr/bin/env bash
# tokenize_cli.sh — `specscope tokenize` end to end: the 47 llama.cpp vector texts through --jsonl give
# Hugging Face's ids (vectors/*.hf.out) for Llama 3, Qwen3 and Llama 2; plain mode, --add-special,
# --pieces; and bad input: a bad JSON line (named by its number), malformed and unsupported
# tokenizer.json files, a missing folder, invalid UTF-8 — each exit status 2 with one line on stderr.
#   usage: tests/tokenize_cli.sh PATH/TO/specscope PATH/TO/shared/tokenizers
. "$(dirname "$0")/lib.sh"
usage_check 2 "PATH/TO/specscope PATH/TO/shared/tokenizers" "$@"
prog=$1 shared=$2
need_program "$prog"
[[ -f $shared/llama3/tokenizer.json ]] || skip "$shared holds no tokenizers"
need_python3 "to write the JSON lines"
make_work tokcli

# expect_fail NAME WANT_IN_STDERR ARGS... (stdin from the caller): exit 2, one stderr line holding WANT.
expect_fail() {
    local name=$1 want=$2
    shift 2
    "$prog" tokenize "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [[ $rc -ne 2 ]]; then fail "$name: exit status $rc, expected 2 ($(head -c 300 "$work/err"))"; return; fi
    if [[ $(wc -l <"$work/err") -ne 1 ]]; then fail "$name: stderr is not one line: $(cat "$work/err")"; return; fi
    if ! grep -qF -- "$want" "$work/err"; then fail "$name: '$(cat "$work/err")' does not say '$want'"; return; fi
    if grep -q "Sanitizer" "$work/err"; then fail "$name: sanitizer report"; return; fi
    ok
}

# expect_out NAME WANT ARGS... (stdin from the caller): exit 0 and exactly WANT on stdout.
expect_out() {
    local name=$1 want=$2
    shift 2
    local got
    got=$("$prog" tokenize "$@" 2>"$work/err")
    local rc=$?
    if [[ $rc -ne 0 ]]; then fail "$name: exit status $rc ($(cat "$work/err"))"; return; fi
    if [[ $got != "$want" ]]; then fail "$name: got '$got', expected '$want'"; return; fi
    ok
}

# ---------------------------------------------------------------- usage
"$prog" tokenize --help >"$work/out" 2>&1 && grep -q "usage: specscope tokenize" "$work/out" && ok || fail "--help"
expect_fail "no folder" "give --model DIR or --tokenizer DIR" </dev/null
expect_fail "unknown option" "unknown option '--frobnicate'" --tokenizer "$shared/llama3" --frobnicate </dev/null
expect_fail "missing value" "needs a value" --tokenizer </dev/null

# ---------------------------------------------------------------- the vector texts through --jsonl
for pair in llama3:llama-bpe qwen3:qwen2 llama2:llama-spm; do
    name=${pair%%:*} vocab=${pair#*:}
    python3 - "$shared/vectors/ggml-vocab-$vocab.gguf.inp" >"$work/$name.jsonl" <<'EOF'
import json, sys
for text in open(sys.argv[1], encoding="utf-8").read().split("\n__ggml_vocab_test__\n"):
    print(json.dumps({"text": text}))
EOF
    if ! "$prog" tokenize --tokenizer "$shared/$name" --jsonl <"$work/$name.jsonl" >"$work/$name.out" 2>"$work/err"; then
        fail "$name --jsonl: $(cat "$work/err")"
        continue
    fi
    python3 - "$work/$name.out" "$shared/vectors/$name.hf.out" <<'EOF' && ok || fail "$name --jsonl: ids differ from $shared/vectors/$name.hf.out"
import json, sys
got = [json.loads(line)["ids"] for line in open(sys.argv[1])]
want = [[int(x) for x in line.split()] for line in open(sys.argv[2]).read().split("\n")[:len(got)]]
bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
if len(got) != 47 or bad:
    print(f"{len(got)} lines, texts differing: {bad[:10]}", file=sys.stderr)
    sys.exit(1)
EOF
done

# ---------------------------------------------------------------- plain mode, --add-special, --pieces
expect_out "plain llama3" "9906 1917" --tokenizer "$shared/llama3" < <(printf 'Hello world')
expect_out "plain llama2" "15043 3186" --model "$shared/llama2" < <(printf 'Hello world')
expect_out "--add-special llama2" "1 15043 3186" --tokenizer "$shared/llama2" --add-special < <(printf 'Hello world')
expect_out "trailing newline kept" "9906 198" --tokenizer "$shared/llama3" < <(printf 'Hello\n')
expect_out "--pieces" "$(printf '9906\t"Hello"\n1917\t"\xc4\xa0world"')" --tokenizer "$shared/llama3" --pieces < <(printf 'Hello world')
expect_out "--jsonl blank lines skipped" "$(printf '{"ids": [9906, 1917]}\n{"ids": []}')" --tokenizer "$shared/llama3" --jsonl < <(printf '{"text": "Hello world"}\n\n{"text": ""}\n')
expect_out "--jsonl --pieces" '{"ids": [13347], "pieces": ["Hi"]}' --tokenizer "$shared/llama3" --jsonl --pieces < <(printf '{"text": "Hi"}\n')

# ---------------------------------------------------------------- bad input
expect_fail "bad JSON line" "stdin line 2: bad JSON" --tokenizer "$shared/llama3" --jsonl < <(printf '{"text": "a"}\n{"text": oops}\n')
expect_fail "no text member" "stdin line 1: expected {\"text\": STRING}" --tokenizer "$shared/llama3" --jsonl < <(printf '{"txt": "a"}\n')
expect_fail "not an object" "stdin line 1" --tokenizer "$shared/llama3" --jsonl < <(printf '"just a string"\n')
expect_fail "invalid UTF-8" "not valid UTF-8" --tokenizer "$shared/llama3" < <(printf 'ok \377 bad')
expect_fail "missing folder" "$work/nothing/tokenizer.json: cannot open" --tokenizer "$work/nothing" </dev/null

mkdir -p "$work/merges" "$work/wordpiece" "$work/syntax"
printf '{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b",17]}}' >"$work/merges/tokenizer.json"
expect_fail "bad merge" "$work/merges/tokenizer.json: model.merges[1]: expected a string or a pair of strings" --tokenizer "$work/merges" </dev/null
printf '{"model":{"type":"WordPiece","vocab":{"a":0},"unk_token":"a"}}' >"$work/wordpiece/tokenizer.json"
expect_fail "WordPiece" "unsupported tokenizer model 'WordPiece' (model.type)" --tokenizer "$work/wordpiece" </dev/null
printf '{"model":\n{"type":\n' >"$work/syntax/tokenizer.json"
expect_fail "JSON syntax" "$work/syntax/tokenizer.json: line 3" --tokenizer "$work/syntax" </dev/null

finish
