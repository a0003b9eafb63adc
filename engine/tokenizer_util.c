/* tokenizer_util.c — the tokenizer's small shared pieces: byte buffers and string lists, JSON field
 * access with one-line errors that name the field, and PCRE2 patterns run the way Hugging Face runs
 * its Oniguruma ones. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- buffers */

bool tk_buf_reserve(tk_buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

bool tk_buf_put(tk_buf *b, const void *s, size_t n) {
    if (!tk_buf_reserve(b, n + 1)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0; /* always NUL-terminated for callers that hand the text out */
    return true;
}

void tk_buf_free(tk_buf *b) {
    free(b->p);
    *b = (tk_buf){0};
}

bool tk_list_add(tk_list *l, const char *s, size_t n, bool at_start) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        tk_span *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    size_t off = l->text.n;
    if (!tk_buf_put(&l->text, s, n)) return false;
    l->v[l->n++] = (tk_span){off, n, at_start};
    return true;
}

void tk_list_clear(tk_list *l) {
    l->n = 0;
    l->text.n = 0;
}

void tk_list_free(tk_list *l) {
    tk_buf_free(&l->text);
    free(l->v);
    *l = (tk_list){0};
}

ss_status tk_oom(ss_error *err) { return ss_fail(err, SS_ENOMEM, "out of memory in the tokenizer"); }

/* ---------------------------------------------------------------- JSON fields */

ss_status tk_bad(ss_error *err, ss_status status, const char *file, const char *path, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ss_fail(err, status, "%s: %s: %s", file, path, msg);
}

void tk_path(char *out, size_t size, const char *path, const char *key) {
    if (!path || !*path) snprintf(out, size, "%s", key);
    else snprintf(out, size, "%s.%s", path, key);
}

void tk_path_index(char *out, size_t size, const char *path, size_t i) {
    snprintf(out, size, "%s[%zu]", path, i);
}

ss_status tk_get_string(json_t *obj, const char *key, const char *file, const char *path, bool required,
                        const char **s, size_t *len, ss_error *err) {
    char p[TK_PATH_MAX];
    tk_path(p, sizeof p, path, key);
    json_t *v = json_object_get(obj, key);
    *s = NULL;
    if (len) *len = 0;
    if (!v || json_is_null(v)) {
        if (required) return tk_bad(err, SS_EFORMAT, file, p, "missing (expected a string)");
        return SS_OK;
    }
    if (!json_is_string(v)) return tk_bad(err, SS_EFORMAT, file, p, "expected a string");
    *s = json_string_value(v);
    if (len) *len = json_string_length(v);
    return SS_OK;
}

ss_status tk_get_bool(json_t *obj, const char *key, const char *file, const char *path, bool dflt, bool *out,
                      ss_error *err) {
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (!v || json_is_null(v)) return SS_OK;
    if (!json_is_boolean(v)) {
        char p[TK_PATH_MAX];
        tk_path(p, sizeof p, path, key);
        return tk_bad(err, SS_EFORMAT, file, p, "expected true or false");
    }
    *out = json_is_true(v);
    return SS_OK;
}

ss_status tk_get_int(json_t *obj, const char *key, const char *file, const char *path, long lo, long hi, long dflt,
                     long *out, ss_error *err) {
    json_t *v = json_object_get(obj, key);
    *out = dflt;
    if (!v || json_is_null(v)) return SS_OK;
    char p[TK_PATH_MAX];
    tk_path(p, sizeof p, path, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return tk_bad(err, SS_EFORMAT, file, p, "expected an integer in [%ld, %ld]", lo, hi);
    *out = (long)json_integer_value(v);
    return SS_OK;
}

ss_status tk_get_type(json_t *obj, const char *file, const char *path, const char **type, ss_error *err) {
    if (!json_is_object(obj)) return tk_bad(err, SS_EFORMAT, file, path, "expected an object");
    return tk_get_string(obj, "type", file, path, true, type, NULL, err);
}

/* ---------------------------------------------------------------- regular expressions */

/* Oniguruma's Unicode classes where PCRE2's differ: \s is White_Space (PCRE2 adds U+180E), \w is
 * Alphabetic | Mark | Decimal_Number | Connector_Punctuation, plus the Latin-1
 * superscripts and fractions Oniguruma counts (PCRE2 10.42: letters, numbers, '_'),
 * \h is a hex digit (PCRE2: horizontal space). */
static const char ONIG_SPACE[] =
    "\\t\\n\\x{0B}\\x{0C}\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
static const char ONIG_WORD[] = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
static const char ONIG_HEX[] = "0-9a-fA-F";

static const char *onig_class(char escape) {
    switch (escape) {
    case 's': case 'S': return ONIG_SPACE;
    case 'w': case 'W': return ONIG_WORD;
    case 'h': case 'H': return ONIG_HEX;
    }
    return NULL;
}

static bool put_class(tk_buf *out, const char *cls, bool negated) {
    return tk_buf_put(out, negated ? "[^" : "[", negated ? 2 : 1) && tk_buf_put(out, cls, strlen(cls)) &&
           tk_buf_put(out, "]", 1);
}

/* Rewrites \s \S \w \W \h \H into explicit classes. Inside a [...] class only the positive forms
 * can be spelled out; a negated one there stays PCRE2's. */
static bool translate_pattern(const char *p, size_t n, tk_buf *out) {
    bool in_class = false, ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            const char *cls = onig_class(e);
            bool negated = e == 'S' || e == 'W' || e == 'H';
            if (cls && !in_class) ok = put_class(out, cls, negated);
            else if (cls && !negated) ok = tk_buf_put(out, cls, strlen(cls));
            else ok = tk_buf_put(out, p + i, 2);
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            size_t k = i + 1;
            if (k < n && p[k] == '^') k++;
            if (k < n && p[k] == ']') k++; /* a ']' first in a class is a literal */
            ok = tk_buf_put(out, p + i, k - i);
            i = k - 1;
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') { /* [:alpha:] */
            const char *end = memchr(p + i + 2, ']', n - i - 2);
            size_t k = end ? (size_t)(end - p) : n - 1;
            ok = tk_buf_put(out, p + i, k - i + 1);
            i = k;
            continue;
        }
        if (in_class && c == ']') in_class = false;
        ok = tk_buf_put(out, &c, 1);
    }
    return ok;
}

pcre2_code *tk_regex_compile(const char *pat, size_t len, bool literal, const char *file, const char *path,
                             ss_error *err) {
    int code;
    PCRE2_SIZE offset;
    tk_buf translated = {0};
    if (!literal) {
        if (!translate_pattern(pat, len, &translated) || !tk_buf_reserve(&translated, 1)) {
            tk_buf_free(&translated);
            tk_oom(err);
            return NULL;
        }
        pat = translated.p;
        len = translated.n;
    }
    /* PCRE2_LITERAL admits PCRE2_UTF but not PCRE2_UCP (nothing to classify in a literal). */
    uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(pat ? pat : ""), len, options, &code, &offset, NULL);
    tk_buf_free(&translated);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        (void)offset; /* an offset into the translated pattern would mislead */
        tk_bad(err, SS_EFORMAT, file, path, "the pattern does not compile: %s", (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT, pcre2_match interprets */
    return re;
}

static int match_at(const pcre2_code *re, const char *s, size_t n, size_t pos, pcre2_match_data *md) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
    /* The JIT's machine stack is small (32 KiB); the interpreter keeps its backtracking on the heap. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    return rc;
}

int tk_regex_next(const pcre2_code *re, const char *s, size_t n, tk_regex_iter *it, pcre2_match_data *md,
                  size_t *start, size_t *end, ss_error *err) {
    while (it->pos <= n) {
        int rc = match_at(re, s, n, it->pos, md);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            ss_fail(err, SS_EARG, "a tokenizer pattern failed on the input at byte %zu: %s", it->pos, (const char *)msg);
            return -1;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] == ov[1] && it->has_last && it->last_end == ov[1]) {
            /* An empty match right after the previous one: step over one character. */
            uint32_t cp;
            int k = it->pos < n ? tk_utf8_next(s + it->pos, n - it->pos, &cp) : 1;
            it->pos += k ? (size_t)k : 1;
            continue;
        }
        *start = ov[0];
        *end = ov[1];
        it->pos = it->last_end = ov[1];
        it->has_last = true;
        return 1;
    }
    return 0;
}

pcre2_code *tk_parse_pattern(json_t *pattern, const char *file, const char *path, ss_error *err) {
    char p[TK_PATH_MAX];
    const char *s;
    size_t len;
    if (!json_is_object(pattern)) {
        tk_bad(err, SS_EFORMAT, file, path, "expected {\"String\": ...} or {\"Regex\": ...}");
        return NULL;
    }
    bool literal = json_object_get(pattern, "String") != NULL;
    const char *key = literal ? "String" : "Regex";
    if (!literal && !json_object_get(pattern, "Regex")) {
        tk_bad(err, SS_EFORMAT, file, path, "expected {\"String\": ...} or {\"Regex\": ...}");
        return NULL;
    }
    if (tk_get_string(pattern, key, file, path, true, &s, &len, err)) return NULL;
    tk_path(p, sizeof p, path, key);
    return tk_regex_compile(s, len, literal, file, p, err);
}
