/* tokenizer_pretok.c — tokenizer.json pre-tokenizers: Sequence, Split, ByteLevel, Metaspace, and the
 * ones that are Splits in disguise (Digits, Whitespace, WhitespaceSplit, Punctuation).
 *
 * A Split runs the file's regex (PCRE2, UTF + UCP, JIT) over each piece and cuts it into matches and
 * the text between them, then applies the delimiter behaviour exactly as Hugging Face's
 * NormalizedString::split does (Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous;
 * invert swaps matches and the rest). Empty pieces are dropped. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is set. */
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/* Rust's char::is_whitespace, for WhitespaceSplit. */
static const char WHITESPACE_CLASS[] =
    "[\\t\\n\\x{0B}\\x{0C}\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]+";
/* The Whitespace pre-tokenizer's \w+|[^\w\s]+, spelled out with the Rust regex crate's \w (which it
 * uses, unlike Split): Alphabetic, marks, decimal digits, connector punctuation, joiners. */
#define RUST_WORD "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
static const char WHITESPACE_WORDS[] = "[" RUST_WORD "]+|[^" RUST_WORD "\\s]+";
/* Rust's char::is_ascii_punctuation || unicode punctuation, one character per match. */
static const char PUNCTUATION_CLASS[] = "[\\p{P}!-/:-@\\[-`{-~]";

/* ---------------------------------------------------------------- the byte-level alphabet */

/* Bytes that print (33..126, 161..172, 174..255) stand for themselves; the rest, in order, for
 * U+0100 onwards: 0..32 -> U+0100..U+0120 (space is U+0120 'Ġ'), 127..160 -> U+0121..U+0142,
 * 173 -> U+0143. */
static uint32_t byte_to_cp(unsigned b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256 + b;
    if (b <= 160) return 256 + 33 + (b - 127);
    return 256 + 67; /* 173 */
}

int tk_byte_char(unsigned char b, char out[2]) {
    uint32_t cp = byte_to_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int tk_char_byte(uint32_t cp) {
    if (cp < 256) return byte_to_cp(cp) == cp ? (int)cp : -1;
    if (cp <= 256 + 32) return (int)(cp - 256);
    if (cp <= 256 + 66) return (int)(cp - 256 - 33 + 127);
    if (cp == 256 + 67) return 173;
    return -1;
}

/* ---------------------------------------------------------------- parsing */

static ss_status add_step(tk_pretokenizer *pt, const tk_pre_step *st, ss_error *err) {
    tk_pre_step *v = realloc(pt->steps, (size_t)(pt->n + 1) * sizeof *v);
    if (!v) return tk_oom(err);
    pt->steps = v;
    pt->steps[pt->n++] = *st;
    return SS_OK;
}

static ss_status parse_behavior(json_t *j, const char *file, const char *path, tk_split_behavior dflt,
                                tk_split_behavior *out, ss_error *err) {
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *s;
    if (tk_get_string(j, "behavior", file, path, false, &s, NULL, err)) return err->status;
    *out = dflt;
    if (!s) return SS_OK;
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (tk_split_behavior)i;
            return SS_OK;
        }
    char p[TK_PATH_MAX];
    tk_path(p, sizeof p, path, "behavior");
    return tk_bad(err, SS_EFORMAT, file, p,
                  "'%s' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous", s);
}

/* Metaspace: replacement, prepend_scheme (or the older add_prefix_space), split. */
static ss_status parse_metaspace(json_t *j, const char *file, const char *path, tk_pre_step *st, ss_error *err) {
    const char *rep, *scheme;
    size_t len;
    char p[TK_PATH_MAX];
    if (tk_get_string(j, "replacement", file, path, false, &rep, &len, err)) return err->status;
    if (!rep && tk_get_string(j, "str_rep", file, path, false, &rep, &len, err)) return err->status;
    uint32_t cp;
    tk_path(p, sizeof p, path, "replacement");
    if (!rep || len == 0 || len >= sizeof st->replacement || tk_utf8_next(rep, len, &cp) != (int)len)
        return tk_bad(err, SS_EFORMAT, file, p, "expected a string of one character");
    memcpy(st->replacement, rep, len + 1);
    if (tk_get_string(j, "prepend_scheme", file, path, false, &scheme, NULL, err)) return err->status;
    if (scheme) {
        tk_path(p, sizeof p, path, "prepend_scheme");
        if (strcmp(scheme, "always") == 0) st->prepend = TK_PREPEND_ALWAYS;
        else if (strcmp(scheme, "first") == 0) st->prepend = TK_PREPEND_FIRST;
        else if (strcmp(scheme, "never") == 0) st->prepend = TK_PREPEND_NEVER;
        else return tk_bad(err, SS_EFORMAT, file, p, "'%s' is not one of always, first, never", scheme);
    } else {
        bool add;
        if (tk_get_bool(j, "add_prefix_space", file, path, true, &add, err)) return err->status;
        st->prepend = add ? TK_PREPEND_ALWAYS : TK_PREPEND_NEVER;
    }
    if (tk_get_bool(j, "split", file, path, true, &st->split, err)) return err->status;
    if (st->split) {
        tk_path(p, sizeof p, path, "replacement");
        st->re = tk_regex_compile(st->replacement, len, true, file, p, err);
        if (!st->re) return err->status;
        st->behavior = TK_SPLIT_MERGED_WITH_NEXT;
    }
    return SS_OK;
}

/* A Split over a fixed pattern (Digits, Whitespace, ...). */
static ss_status builtin_split(const char *pattern, tk_split_behavior behavior, bool invert, const char *file,
                               const char *path, tk_pre_step *st, ss_error *err) {
    st->kind = TK_PRE_SPLIT;
    st->behavior = behavior;
    st->invert = invert;
    st->re = tk_regex_compile(pattern, strlen(pattern), false, file, path, err);
    return st->re ? SS_OK : err->status;
}

static ss_status parse_step(json_t *j, const char *file, const char *path, tk_pretokenizer *pt, int depth,
                            ss_error *err) {
    const char *type;
    char p[TK_PATH_MAX];
    if (depth > 8) return tk_bad(err, SS_EFORMAT, file, path, "pre-tokenizers nested too deeply");
    if (tk_get_type(j, file, path, &type, err)) return err->status;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(j, "pretokenizers");
        tk_path(p, sizeof p, path, "pretokenizers");
        if (!json_is_array(arr)) return tk_bad(err, SS_EFORMAT, file, p, "expected an array");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char q[TK_PATH_MAX];
            tk_path_index(q, sizeof q, p, i);
            if (parse_step(json_array_get(arr, i), file, q, pt, depth + 1, err)) return err->status;
        }
        return SS_OK;
    }
    tk_pre_step st = {0};
    ss_status status = SS_OK;
    bool flag;
    if (strcmp(type, "Split") == 0) {
        st.kind = TK_PRE_SPLIT;
        tk_path(p, sizeof p, path, "pattern");
        st.re = tk_parse_pattern(json_object_get(j, "pattern"), file, p, err);
        status = st.re ? parse_behavior(j, file, path, TK_SPLIT_ISOLATED, &st.behavior, err) : err->status;
        if (!status) status = tk_get_bool(j, "invert", file, path, false, &st.invert, err);
    } else if (strcmp(type, "ByteLevel") == 0) {
        st.kind = TK_PRE_BYTELEVEL;
        st.behavior = TK_SPLIT_ISOLATED;
        status = tk_get_bool(j, "add_prefix_space", file, path, true, &st.add_prefix_space, err);
        if (!status) status = tk_get_bool(j, "use_regex", file, path, true, &flag, err);
        if (!status && flag) {
            st.re = tk_regex_compile(GPT2_PATTERN, strlen(GPT2_PATTERN), false, file, path, err);
            if (!st.re) status = err->status;
        }
    } else if (strcmp(type, "Metaspace") == 0) {
        st.kind = TK_PRE_METASPACE;
        status = parse_metaspace(j, file, path, &st, err);
    } else if (strcmp(type, "Digits") == 0) {
        status = tk_get_bool(j, "individual_digits", file, path, false, &flag, err);
        if (!status) status = builtin_split(flag ? "\\p{N}" : "\\p{N}+", TK_SPLIT_ISOLATED, false, file, path, &st, err);
    } else if (strcmp(type, "Whitespace") == 0) {
        status = builtin_split(WHITESPACE_WORDS, TK_SPLIT_REMOVED, true, file, path, &st, err);
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        status = builtin_split(WHITESPACE_CLASS, TK_SPLIT_REMOVED, false, file, path, &st, err);
    } else if (strcmp(type, "Punctuation") == 0) {
        status = parse_behavior(j, file, path, TK_SPLIT_ISOLATED, &st.behavior, err);
        if (!status) status = builtin_split(PUNCTUATION_CLASS, st.behavior, false, file, path, &st, err);
    } else {
        tk_path(p, sizeof p, path, "type");
        return ss_fail(err, SS_EUNSUPPORTED, "%s: unsupported pre-tokenizer '%s' (%s)", file, type, p);
    }
    if (!status) status = add_step(pt, &st, err);
    if (status) pcre2_code_free(st.re);
    return status;
}

ss_status tk_pretokenizer_parse(json_t *j, const char *file, tk_pretokenizer *pt, ss_error *err) {
    *pt = (tk_pretokenizer){0};
    if (!j || json_is_null(j)) return SS_OK;
    ss_status st = parse_step(j, file, "pre_tokenizer", pt, 0, err);
    if (st) tk_pretokenizer_free(pt);
    return st;
}

void tk_pretokenizer_free(tk_pretokenizer *pt) {
    for (int i = 0; i < pt->n; i++) pcre2_code_free(pt->steps[i].re);
    free(pt->steps);
    *pt = (tk_pretokenizer){0};
}

/* ---------------------------------------------------------------- splitting */

typedef struct {
    size_t start, end;
    bool flag; /* while finding: is a match; after the behaviour: is removed */
} cut;

typedef struct {
    cut *v;
    int n, cap;
} cut_list;

static bool cut_push(cut_list *c, size_t start, size_t end, bool flag) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        cut *v = realloc(c->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = (cut){start, end, flag};
    return true;
}

/* The whole of s as alternating (match / not match) stretches, like Pattern::find_matches. */
static ss_status find_cuts(const pcre2_code *re, bool invert, const char *s, size_t n, pcre2_match_data *md,
                           cut_list *c, ss_error *err) {
    tk_regex_iter it = {0};
    size_t start, end, prev = 0;
    int rc;
    c->n = 0;
    while ((rc = tk_regex_next(re, s, n, &it, md, &start, &end, err)) == 1) {
        if (prev != start && !cut_push(c, prev, start, invert)) return tk_oom(err);
        if (!cut_push(c, start, end, !invert)) return tk_oom(err);
        prev = end;
    }
    if (rc < 0) return err->status;
    if (prev != n && !cut_push(c, prev, n, invert)) return tk_oom(err);
    return SS_OK;
}

/* Rewrites the cuts in place by the delimiter behaviour; afterwards flag means "removed". */
static void apply_behavior(cut_list *c, tk_split_behavior behavior) {
    int n = 0;
    bool prev_match = false;
    switch (behavior) {
    case TK_SPLIT_REMOVED: return; /* matches are the removed ones already */
    case TK_SPLIT_ISOLATED:
        for (int i = 0; i < c->n; i++) c->v[i].flag = false;
        return;
    case TK_SPLIT_CONTIGUOUS:
        for (int i = 0; i < c->n; i++) {
            bool m = c->v[i].flag;
            if (n > 0 && m == prev_match) c->v[n - 1].end = c->v[i].end;
            else c->v[n++] = (cut){c->v[i].start, c->v[i].end, false};
            prev_match = m;
        }
        break;
    case TK_SPLIT_MERGED_WITH_PREVIOUS:
        for (int i = 0; i < c->n; i++) {
            bool m = c->v[i].flag;
            if (m && !prev_match && n > 0) c->v[n - 1].end = c->v[i].end;
            else c->v[n++] = (cut){c->v[i].start, c->v[i].end, false};
            prev_match = m;
        }
        break;
    case TK_SPLIT_MERGED_WITH_NEXT: {
        /* Walk from the end, gluing each match onto the piece after it; then the order is restored. */
        int w = c->n;
        for (int i = c->n - 1; i >= 0; i--) {
            bool m = c->v[i].flag;
            if (m && !prev_match && w < c->n) c->v[w].start = c->v[i].start;
            else c->v[--w] = (cut){c->v[i].start, c->v[i].end, false};
            prev_match = m;
        }
        memmove(c->v, c->v + w, (size_t)(c->n - w) * sizeof *c->v);
        n = c->n - w;
        break;
    }
    }
    c->n = n;
}

static ss_status split_piece(const tk_pre_step *st, const char *s, size_t n, bool at_start, tk_list *out,
                             cut_list *c, pcre2_match_data *md, ss_error *err) {
    if (find_cuts(st->re, st->invert, s, n, md, c, err)) return err->status;
    apply_behavior(c, st->behavior);
    for (int i = 0; i < c->n; i++) {
        const cut *k = &c->v[i];
        if (k->flag || k->end == k->start) continue;
        if (!tk_list_add(out, s + k->start, k->end - k->start, at_start && k->start == 0)) return tk_oom(err);
    }
    return SS_OK;
}

/* ---------------------------------------------------------------- the byte-level and metaspace rewrites */

/* Scratch reused across pieces by tk_pretokenize. */
typedef struct {
    cut_list cuts;
    tk_buf text, mapped;
    tk_list pieces;
} scratch;

static ss_status add_mapped(const char *s, size_t n, bool at_start, tk_list *out, tk_buf *mapped, ss_error *err) {
    const unsigned char *p = (const unsigned char *)s;
    mapped->n = 0;
    if (!tk_buf_reserve(mapped, 2 * n + 1)) return tk_oom(err);
    for (size_t k = 0; k < n; k++) mapped->n += (size_t)tk_byte_char(p[k], mapped->p + mapped->n);
    return tk_list_add(out, mapped->p, mapped->n, at_start) ? SS_OK : tk_oom(err);
}

static ss_status byte_level(const tk_pre_step *st, const char *s, size_t n, bool at_start, tk_list *out,
                            scratch *w, pcre2_match_data *md, ss_error *err) {
    if (st->add_prefix_space && (n == 0 || s[0] != ' ')) {
        w->text.n = 0;
        if (!tk_buf_put(&w->text, " ", 1) || !tk_buf_put(&w->text, s, n)) return tk_oom(err);
        s = w->text.p;
        n = w->text.n;
    }
    if (!st->re) return add_mapped(s, n, at_start, out, &w->mapped, err);
    tk_list_clear(&w->pieces);
    if (split_piece(st, s, n, at_start, &w->pieces, &w->cuts, md, err)) return err->status;
    for (int i = 0; i < w->pieces.n; i++)
        if (add_mapped(tk_list_str(&w->pieces, i), w->pieces.v[i].len, w->pieces.v[i].at_start, out, &w->mapped, err))
            return err->status;
    return SS_OK;
}

static ss_status metaspace(const tk_pre_step *st, const char *s, size_t n, bool at_start, tk_list *out, scratch *w,
                           pcre2_match_data *md, ss_error *err) {
    size_t rlen = strlen(st->replacement);
    tk_buf *tmp = &w->text;
    tmp->n = 0;
    bool starts = n >= rlen && memcmp(s, st->replacement, rlen) == 0;
    bool prepend = st->prepend == TK_PREPEND_ALWAYS || (st->prepend == TK_PREPEND_FIRST && at_start);
    /* A piece that starts with a space will start with the replacement once it is replaced. */
    if (prepend && !starts && !(n > 0 && s[0] == ' ') && !tk_buf_put(tmp, st->replacement, rlen)) return tk_oom(err);
    for (size_t i = 0; i < n; i++) {
        bool ok = s[i] == ' ' ? tk_buf_put(tmp, st->replacement, rlen) : tk_buf_put(tmp, s + i, 1);
        if (!ok) return tk_oom(err);
    }
    if (!st->split) return tk_list_add(out, tmp->p, tmp->n, at_start) ? SS_OK : tk_oom(err);
    return split_piece(st, tmp->p, tmp->n, at_start, out, &w->cuts, md, err);
}

ss_status tk_pretokenize(const tk_pretokenizer *pt, tk_list *io, tk_list *tmp, pcre2_match_data *md, ss_error *err) {
    scratch w = {0};
    ss_status status = SS_OK;
    for (int s = 0; !status && s < pt->n; s++) {
        const tk_pre_step *st = &pt->steps[s];
        tk_list_clear(tmp);
        for (int i = 0; !status && i < io->n; i++) {
            const char *p = tk_list_str(io, i);
            size_t n = io->v[i].len;
            bool at_start = io->v[i].at_start;
            switch (st->kind) {
            case TK_PRE_SPLIT: status = split_piece(st, p, n, at_start, tmp, &w.cuts, md, err); break;
            case TK_PRE_BYTELEVEL: status = byte_level(st, p, n, at_start, tmp, &w, md, err); break;
            case TK_PRE_METASPACE: status = metaspace(st, p, n, at_start, tmp, &w, md, err); break;
            }
        }
        tk_list swap = *io;
        *io = *tmp;
        *tmp = swap;
    }
    free(w.cuts.v);
    tk_buf_free(&w.text);
    tk_buf_free(&w.mapped);
    tk_list_free(&w.pieces);
    return status;
}
