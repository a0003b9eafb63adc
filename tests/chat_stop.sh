#!/usr/bin/env bash
# chat_stop.sh — a chat generation from token ids stops at the chat format's end-of-turn token:
# `generate --prompt-ids IDS --chat` on the demo target, given a tokenizer.json that also names one of
# the tokens plain greedy decoding emits as <|im_end|> (and another as <|im_start|>, so the chat
# format is ChatML), ends right after that token; without --chat it runs on.
#   usage: tests/chat_stop.sh PATH/TO/specscope PATH/TO/models/demo/target
. "$(dirname "$0")/lib.sh"
usage_check 2 "PATH/TO/specscope PATH/TO/models/demo/target" "$@"
prog=$1 model=$2
need_program "$prog"
[[ -f $model/config.json ]] || skip "no model at $model"
need_python3 "to edit the tokenizer and read the JSON"
make_work chatstop
ids="464 3290 286"
tokens() { # FOLDER [--chat]: the generated ids, space-separated
    "$prog" generate --model "$1" --backend cpu --prompt-ids "$ids" -n 12 --temp 0 --json ${2:-} 2>/dev/null |
        python3 -c 'import json,sys; print(" ".join(map(str, json.load(sys.stdin)["tokens"])))'
}
plain=$(tokens "$model")
read -r -a p <<<"$plain"
((${#p[@]} == 12)) || { echo "FAIL: plain greedy gave '$plain', want 12 tokens"; exit 1; }
chatml_copy "$model" "$work/chatml" "${p[3]}" "${p[@]}"
want=$(through_first "${p[3]}" "${p[@]}")
got=$(tokens "$work/chatml" --chat)
if [[ $got == "$want" ]]; then ok; else fail "--chat: got '$got', want '$want' (stop at ${p[3]})"; fi
got=$(tokens "$work/chatml")
if [[ $got == "$plain" ]]; then ok; else fail "without --chat: got '$got', want '$plain'"; fi
finish
