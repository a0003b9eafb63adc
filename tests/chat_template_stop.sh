#!/usr/bin/env bash
# chat_template_stop.sh — a Lua chat generation whose prompt spec.chat_template renders stops at the
# chat format's end-of-turn token, like one from the model's own format (chat_stop.sh): on a copy of
# the demo target whose tokenizer.json names one of the tokens greedy decoding emits as <|im_end|>
# (and another as <|im_start|>, so the format is ChatML), the tokens end right after its first
# emission; on the model itself they run on.
#   usage: tests/chat_template_stop.sh PATH/TO/specscope PATH/TO/models/demo/target PATH/TO/chat_template_tokens.lua
. "$(dirname "$0")/lib.sh"
usage_check 3 "PATH/TO/specscope PATH/TO/models/demo/target PATH/TO/chat_template_tokens.lua" "$@"
prog=$1 model=$2 script=$3
need_program "$prog"
[[ -f $model/config.json ]] || skip "no model at $model"
need_python3 "to edit the tokenizer"
make_work chattemplate
plain=$("$prog" run "$script" "$model" 2>/dev/null)
read -r -a p <<<"$plain"
((${#p[@]} == 12)) || { echo "FAIL: the template's generation on $model gave '$plain', want 12 tokens"; exit 1; }
chatml_copy "$model" "$work/chatml" "${p[3]}" "${p[@]}"
want=$(through_first "${p[3]}" "${p[@]}")
got=$("$prog" run "$script" "$work/chatml" 2>/dev/null)
if [[ $got == "$want" ]]; then ok; else fail "templated chat: got '$got', want '$want' (stop at ${p[3]})"; fi
finish
