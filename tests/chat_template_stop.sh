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
ln -s "$(realpath "$model")/config.json" "$(realpath "$model")/model.safetensors" "$work/"
python3 - "$model/tokenizer.json" "$work/tokenizer.json" "${p[3]}" "${p[@]}" <<'PY'
import json, sys
src, dst, end, emitted = sys.argv[1], sys.argv[2], int(sys.argv[3]), set(map(int, sys.argv[4:]))
t = json.load(open(src))
start = next(i for i in range(len(t["model"]["vocab"]) - 1, 0, -1) if i not in emitted)
for content, i in (("<|im_start|>", start), ("<|im_end|>", end)):
    t["added_tokens"].append({"id": i, "content": content, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True})
json.dump(t, open(dst, "w"))
PY
first=0 # the tokens up to the first emission of the end-of-turn token
while [[ ${p[first]} != "${p[3]}" ]]; do first=$((first + 1)); done
want="${p[*]:0:first+1}"
got=$("$prog" run "$script" "$work" 2>/dev/null)
if [[ $got == "$want" ]]; then ok; else fail "templated chat: got '$got', want '$want' (stop at ${p[3]})"; fi
finish
