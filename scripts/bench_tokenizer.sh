#!/usr/bin/env bash
# bench_tokenizer.sh — tokenizer speed (reported, not asserted): the load time of each shared
# tokenizer.json (Qwen3's is 11 MB) and encode throughput in MB/s on a large English text and a CJK
# text, through `specscope tokenize --bench` (best of repeated runs, at least 1 s per measure).
#   English: the licences of /usr/share/common-licenses, concatenated 8 times (about 2.4 MB).
#   CJK:     the Simplified Chinese message catalogues of the machine (/usr/share/locale/zh_CN/*.mo,
#            read with Python's gettext, about 1.9 MB); without them, the lines of the tokenizer
#            vectors that hold CJK characters, repeated to about 2 MB.
#   usage: scripts/bench_tokenizer.sh [PATH/TO/specscope] [PATH/TO/shared/tokenizers]
# Use an optimised build (scripts/setup.sh makes build/specscope, RelWithDebInfo).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
prog=${1:-build/specscope}
shared=${2:-../shared/tokenizers}
[[ -x $prog ]] || { echo "bench_tokenizer.sh: '$prog' is not an executable (build first)" >&2; exit 2; }
[[ -f $shared/qwen3/tokenizer.json ]] || { echo "bench_tokenizer.sh: no tokenizers in '$shared'" >&2; exit 2; }
work=$(mktemp -d /tmp/ss_tokbench_XXXXXX)
trap 'rm -rf "$work"' EXIT

for _ in 1 2 3 4 5 6 7 8; do cat /usr/share/common-licenses/*; done >"$work/english.txt"
python3 - "$shared/vectors/ggml-vocab-qwen2.gguf.inp" "$work/cjk.txt" <<'EOF'
import gettext, glob, re, sys
cjk = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
texts = []
for path in sorted(glob.glob("/usr/share/locale/zh_CN/LC_MESSAGES/*.mo")):
    try:
        with open(path, "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog
    except Exception:
        continue
    texts += [v for k, v in catalog.items() if k and isinstance(v, str)]
text = "\n".join(texts)
source = "zh_CN message catalogues"
if len(text.encode()) < 100000:
    lines = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if cjk.search(l)]
    body = "\n".join(lines) + "\n"
    text = body * (2_000_000 // len(body.encode()))
    source = "CJK lines of the vectors, repeated"
open(sys.argv[2], "w", encoding="utf-8").write(text)
print(f"CJK text: {source}, {len(text.encode())} bytes, {sum(1 for c in text if cjk.match(c))} CJK characters")
EOF
echo "English text: /usr/share/common-licenses x 8, $(wc -c <"$work/english.txt") bytes"
for tok in llama3 qwen3 llama2; do
    for text in english cjk; do
        printf '%-7s %-8s ' "$tok" "$text"
        "$prog" tokenize --tokenizer "$shared/$tok" --bench <"$work/$text.txt"
    done
done
