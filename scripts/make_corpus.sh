#!/usr/bin/env bash
# make_corpus.sh OUT_DIR — builds the English training corpus for the demo model pair.
#
# Sources are Debian packages (documentation, the KJV Bible, fortunes, the Jargon File). Each is fetched
# with `apt-get download` and unpacked with `dpkg-deb -x` into a scratch folder, so nothing is installed
# on the system. Documents are read in a fixed order (package order below, then sorted paths), markup is
# stripped (HTML with Python's HTMLParser, POD with pod2text, reStructuredText adornments with a regex),
# whitespace is normalised, paragraphs are de-duplicated corpus-wide, and the text is cut into ~4 KB
# blocks at paragraph boundaries; every 100th block goes to valid.txt (held out), the rest to train.txt.
# A line holding only <|endoftext|> closes each document (or each run of blocks of one document).
#
# Writes OUT_DIR/train.txt, OUT_DIR/valid.txt, OUT_DIR/SOURCES.txt (package, version, documents, bytes,
# plus sha256 of the outputs). Same Debian archive state -> byte-identical output.
# Needs: apt-get, dpkg-deb, python3 (stdlib only), pod2text (perl).
set -euo pipefail

usage() {
    echo "usage: make_corpus.sh OUT_DIR   (builds OUT_DIR/train.txt, valid.txt, SOURCES.txt from Debian packages)"
}

if [[ $# -eq 1 && ( "$1" == "--help" || "$1" == "-h" ) ]]; then
    usage
    exit 0
fi
if [[ $# -ne 1 || "$1" == -* ]]; then
    usage >&2
    exit 2
fi
out_dir=$1

for tool in apt-get dpkg-deb python3 pod2text sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "make_corpus.sh: required tool '$tool' not found" >&2
        exit 1
    fi
done

# The order here is the order of the corpus. bible-kjv provides the program that decodes bible-kjv-text.
packages=(
    bible-kjv bible-kjv-text
    fortunes-min fortunes
    jargon-text
    gnu-standards
    debian-reference-en
    debian-handbook
    abs-guide
    perl-doc
    postgresql-doc-15
    python3.11-doc
    linux-doc-6.1
)

work=$(mktemp -d /tmp/make_corpus.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root" "$out_dir"

echo "make_corpus: downloading ${#packages[@]} packages into $work/debs"
# _apt cannot write into a root-owned mktemp folder; downloading as root is fine for unpack-only use.
if ! (cd "$work/debs" && apt-get download -q "${packages[@]}" >"$work/apt.log" 2>&1); then
    echo "make_corpus: apt-get download failed; refreshing package lists once (apt-get update)"
    apt-get update -q >>"$work/apt.log" 2>&1 || true
    if ! (cd "$work/debs" && apt-get download -q "${packages[@]}" >>"$work/apt.log" 2>&1); then
        tail -5 "$work/apt.log" >&2
        echo "make_corpus.sh: apt-get download failed (see the lines above)" >&2
        exit 1
    fi
fi

: >"$work/versions.tsv"
for pkg in "${packages[@]}"; do
    deb=$(find "$work/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort | head -n 1)
    if [[ -z "$deb" ]]; then
        echo "make_corpus.sh: no .deb downloaded for package '$pkg'" >&2
        exit 1
    fi
    mkdir -p "$work/root/$pkg"
    dpkg-deb -x "$deb" "$work/root/$pkg"
    printf '%s\t%s\n' "$pkg" "$(dpkg-deb -f "$deb" Version)" >>"$work/versions.tsv"
    echo "make_corpus: unpacked $pkg $(dpkg-deb -f "$deb" Version)"
done

LC_ALL=C.UTF-8 PYTHONHASHSEED=0 python3 - "$work/root" "$work/versions.tsv" "$out_dir" <<'PYEOF'
"""Turns the unpacked packages into train.txt / valid.txt / SOURCES.txt (see make_corpus.sh)."""
import glob
import gzip
import hashlib
import html.parser
import os
import re
import subprocess
import sys
import unicodedata

root, versions_path, out_dir = sys.argv[1:4]
EOT = "<|endoftext|>"
BLOCK_CHARS = 4096          # blocks end at the first paragraph boundary past this size
VALID_EVERY = 100           # every 100th block is held out


def fail(msg):
    print("make_corpus.sh: " + msg, file=sys.stderr)
    sys.exit(1)


def files(pkg, pattern, exclude=None):
    """Sorted files of an unpacked package matching a glob (relative to the package root)."""
    paths = sorted(glob.glob(os.path.join(root, pkg, pattern), recursive=True))
    paths = [p for p in paths if os.path.isfile(p) and not os.path.islink(p)]
    if exclude:
        paths = [p for p in paths if not re.search(exclude, p)]
    if not paths:
        fail(f"package {pkg}: no file matches {pattern}")
    return paths


def read_text(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


class HtmlText(html.parser.HTMLParser):
    """Visible text of an HTML page; block elements become paragraph breaks, <pre> keeps its layout."""
    SKIP = {"script", "style", "head", "noscript"}
    BLOCK = {"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
             "table", "pre", "blockquote", "section", "article", "header", "footer", "nav", "hr",
             "caption", "figure", "form", "body", "html"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip, self.pre = [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        if tag in self.BLOCK:
            self.parts.append("\n\n")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self.skip:
            return
        self.parts.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(path):
    parser = HtmlText()
    parser.feed(read_text(path))
    parser.close()
    # Lines outside <pre> came out with stray spaces around the breaks.
    return "\n".join(line.strip() if line.strip() == "" else line.rstrip() for line in
                     re.sub(r"\n +", "\n", "".join(parser.parts)).split("\n"))


RST_ADORNMENT = re.compile(r"^\s*([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")
RST_DROP = re.compile(r"^\.\. (SPDX-License-Identifier|_[^:]+:|include::|toctree::|only::|raw::)|^\s+:(maxdepth|numbered|glob|hidden|titlesonly|caption):")


def rst_to_text(path):
    lines = [l for l in read_text(path).split("\n") if not RST_ADORNMENT.match(l) and not RST_DROP.match(l)]
    return "\n".join(lines)


def pod_to_text(path):
    run = subprocess.run(["pod2text", "--utf8", "-w", "100", path], capture_output=True)
    if run.returncode not in (0, 1):   # 1 = POD warnings; the text is still written
        fail(f"pod2text failed on {path}: {run.stderr.decode(errors='replace').strip()[:200]}")
    return run.stdout.decode("utf-8", errors="replace")


def bible_books():
    """The KJV text, decoded by the bible program, one document per book."""
    prog = os.path.join(root, "bible-kjv", "usr/bin/bible")
    data = os.path.join(root, "bible-kjv-text", "usr/lib")
    run = subprocess.run([prog, "-l10000", "-p", data, "gen1:1-rev22:21"], capture_output=True,
                         stdin=subprocess.DEVNULL)
    if run.returncode != 0 or len(run.stdout) < 4_000_000:
        fail(f"bible-kjv: decoding failed (rc {run.returncode}, {len(run.stdout)} bytes): "
             f"{run.stderr.decode(errors='replace').strip()[:200]}")
    books, current = [], []
    for line in run.stdout.decode("utf-8", errors="replace").split("\n"):
        if re.fullmatch(r"\S.* 1", line) and current:     # "Exodus 1": a new book begins
            books.append("\n".join(current))
            current = []
        current.append(re.sub(r"^\s+(\d+) ", r"\1 ", line))
    books.append("\n".join(current))
    return [(f"book{i + 1}", b) for i, b in enumerate(books)]


def fortune_files(pkg):
    """Each fortune file (one with a .dat index, ASCII-art files left out) is a document of sayings."""
    docs = []
    for path in files(pkg, "usr/share/games/fortunes/*", exclude=r"\.(dat|u8)$|/(art|ascii-art|translate-me)$"):
        if not os.path.exists(path + ".dat"):
            continue
        sayings = re.split(r"\n%\n", read_text(path))
        docs.append((os.path.relpath(path, root), "\n\n".join(s.strip("\n") for s in sayings)))
    return docs


def each(pkg, pattern, convert, exclude=None):
    return [(os.path.relpath(p, root), convert(p)) for p in files(pkg, pattern, exclude)]


def documents(pkg):
    """(name, raw text) of every document a package contributes, in a fixed order."""
    if pkg == "bible-kjv":
        return []                                   # only the decoder program
    if pkg == "bible-kjv-text":
        return bible_books()
    if pkg in ("fortunes-min", "fortunes"):
        return fortune_files(pkg)
    if pkg == "jargon-text":
        return each(pkg, "usr/share/doc/jargon-text/jargon.txt.gz", read_text)
    if pkg == "gnu-standards":
        return each(pkg, "usr/share/doc/gnu-standards/*.text.gz", read_text)
    if pkg == "debian-reference-en":
        return each(pkg, "usr/share/debian-reference/debian-reference.en.txt.gz", read_text)
    if pkg == "debian-handbook":
        return each(pkg, "usr/share/doc/debian-handbook/html/en-US/*.html", html_to_text)
    if pkg == "abs-guide":
        return each(pkg, "usr/share/doc/abs-guide/html/*.html", html_to_text)
    if pkg == "perl-doc":
        return each(pkg, "usr/share/perl/*/pod/*.pod", pod_to_text)
    if pkg == "postgresql-doc-15":
        return each(pkg, "usr/share/doc/postgresql-doc-15/html/*.html", html_to_text)
    if pkg == "python3.11-doc":
        return each(pkg, "usr/share/doc/python3.11/html/_sources/**/*.rst.txt", rst_to_text)
    if pkg == "linux-doc-6.1":
        return each(pkg, "usr/share/doc/linux-doc-6.1/html/_sources/**/*.rst.txt", rst_to_text,
                    exclude=r"/_sources/translations/")
    fail(f"no reader for package {pkg}")


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\ufeff]")


def paragraphs(text):
    """Normalised paragraphs: NFC, no control characters, tabs expanded, no trailing spaces,
    at most one blank line between paragraphs; non-English and symbol-only paragraphs dropped."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace(EOT, "")
    lines = [CONTROL.sub("", l.expandtabs(4)).rstrip() for l in text.split("\n")]
    out = []
    for para in re.split(r"\n\s*\n", "\n".join(lines)):
        para = para.strip("\n")
        if not para.strip():
            continue
        letters = sum(c.isalpha() for c in para)
        non_ascii = sum(1 for c in para if ord(c) > 127 and c.isalpha())
        wordish = sum(c.isalnum() or c.isspace() for c in para)
        if letters == 0 or non_ascii > 0.1 * letters or wordish < 0.5 * len(para):
            continue
        out.append(para)
    return out


versions = dict(line.rstrip("\n").split("\t") for line in open(versions_path))
seen = set()
train = open(os.path.join(out_dir, "train.txt"), "w", encoding="utf-8", newline="\n")
valid = open(os.path.join(out_dir, "valid.txt"), "w", encoding="utf-8", newline="\n")
splits = {"train": [train, None], "valid": [valid, None]}   # file, (doc, block) of the open run
block_no = 0
stats = []
dropped_dupes = 0


def emit(split, doc_key, block_idx, text):
    f, run = splits[split]
    if run is not None and run != (doc_key, block_idx - 1):
        f.write(EOT + "\n")
    elif run is not None:
        f.write("\n")
    f.write(text + "\n")
    splits[split][1] = (doc_key, block_idx)


for pkg, version in versions.items():
    docs = documents(pkg)
    kept_bytes = kept_docs = 0
    for name, raw in docs:
        fresh = []
        for para in paragraphs(raw):
            h = hashlib.sha1(para.encode()).digest()
            if h in seen:
                dropped_dupes += 1
                continue
            seen.add(h)
            fresh.append(para)
        if not fresh:
            continue
        kept_docs += 1
        blocks, cur, size = [], [], 0
        for para in fresh:
            cur.append(para)
            size += len(para) + 2
            if size >= BLOCK_CHARS:
                blocks.append("\n\n".join(cur))
                cur, size = [], 0
        if cur:
            blocks.append("\n\n".join(cur))
        for i, block in enumerate(blocks):
            block_no += 1
            emit("valid" if block_no % VALID_EVERY == 0 else "train", (pkg, name), i, block)
            kept_bytes += len(block.encode()) + 2
    stats.append((pkg, version, kept_docs, kept_bytes))
    print(f"make_corpus: {pkg:22s} {version:28s} {kept_docs:6d} docs {kept_bytes / 1e6:8.2f} MB", flush=True)

for f, run in splits.values():
    if run is not None:
        f.write(EOT + "\n")
    f.close()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


with open(os.path.join(out_dir, "SOURCES.txt"), "w") as s:
    s.write("# Debian packages (bookworm) behind this corpus, built by scripts/make_corpus.sh\n")
    s.write("# package\tversion\tdocuments\tbytes (kept text, after cleaning and de-duplication)\n")
    for pkg, version, docs_n, nbytes in stats:
        s.write(f"{pkg}\t{version}\t{docs_n}\t{nbytes}\n")
    for name in ("train.txt", "valid.txt"):
        path = os.path.join(out_dir, name)
        s.write(f"# {name}\t{os.path.getsize(path)} bytes\tsha256 {sha256(path)}\n")
    s.write(f"# paragraphs dropped as duplicates: {dropped_dupes}; blocks: {block_no} "
            f"(every {VALID_EVERY}th held out in valid.txt)\n")
print(f"make_corpus: {block_no} blocks, {dropped_dupes} duplicate paragraphs dropped", flush=True)
PYEOF

total=$(( $(stat -c %s "$out_dir/train.txt") + $(stat -c %s "$out_dir/valid.txt") ))
echo "make_corpus: train.txt $(stat -c %s "$out_dir/train.txt") bytes, valid.txt $(stat -c %s "$out_dir/valid.txt") bytes"
if (( total < 50000000 )); then
    echo "make_corpus.sh: corpus is only $total bytes (< 50 MB); a source must have shrunk" >&2
    exit 1
fi
