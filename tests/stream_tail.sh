#!/usr/bin/env bash
# stream_tail.sh SPECSCOPE MODEL — the streamed pieces add up to the result's text: `generate` prints
# the pieces as they come, `generate --json` the text decoded whole. Sampled runs of the demo model
# on a non-ASCII prompt stop inside a multi-byte character for some (seed, length) pairs (seed 4 at
# 1 token, seed 6 at 4 and 8 when written); the last piece must then carry the repaired bytes too.
. "$(dirname "$0")/lib.sh"
usage_check 2 "PATH/TO/specscope PATH/TO/models/demo/target" "$@"
prog=$1 model=$2
need_program "$prog"
need_python3 "to read the JSON"
prompt="Ölçüm — “quoted” © é"
cut=0
for seed in 4 6; do
    for n in 1 2 3 4 5 6 7 8 9 10; do
        streamed=$("$prog" generate --model "$model" --backend cpu -p "$prompt" -n $n --temp 1.2 --seed $seed 2>/dev/null)
        whole=$("$prog" generate --model "$model" --backend cpu -p "$prompt" -n $n --temp 1.2 --seed $seed --json \
                2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"], end="")')
        [[ $whole == *$'\xef\xbf\xbd' ]] && cut=$((cut + 1)) # ends in U+FFFD: stopped inside a character
        if [[ $streamed == "$whole" ]]; then ok; else fail "seed $seed, $n tokens: streamed '$streamed', text '$whole'"; fi
    done
done
echo "$cut runs stopped inside a character"
# The check means something only if some run did stop inside a character.
finish && ((cut > 0))
