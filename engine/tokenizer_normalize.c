/* tokenizer_normalize.c — tokenizer.json normalizers: Sequence, Prepend, Append, Replace, NFC, Strip.
 *
 * Llama 2's layout is Sequence[Prepend("▁"), Replace(" " -> "▁")]; Qwen's is NFC. Normalizers run on
 * each piece of text between added tokens, so Prepend puts "▁" at the front of every such piece
 * (Hugging Face does the same). Others (NFKC, Lowercase, BertNormalizer, Precompiled, ...) are
 * refused with SS_EUNSUPPORTED rather than half done. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static ss_status add_step(tk_normalizer *nz, const tk_norm_step *st, ss_error *err) {
    tk_norm_step *v = realloc(nz->steps, (size_t)(nz->n + 1) * sizeof *v);
    if (!v) return tk_oom(err);
    nz->steps = v;
    nz->steps[nz->n++] = *st;
    return SS_OK;
}

static ss_status copy_text(json_t *j, const char *key, const char *file, const char *path, tk_norm_step *st,
                           ss_error *err) {
    const char *s;
    size_t len;
    if (tk_get_string(j, key, file, path, true, &s, &len, err)) return err->status;
    st->text = malloc(len + 1);
    if (!st->text) return tk_oom(err);
    memcpy(st->text, s, len + 1);
    st->text_len = len;
    return SS_OK;
}

static ss_status parse_step(json_t *j, const char *file, const char *path, tk_normalizer *nz, int depth,
                            ss_error *err) {
    const char *type;
    char p[TK_PATH_MAX];
    if (depth > 8) return tk_bad(err, SS_EFORMAT, file, path, "normalizers nested too deeply");
    if (tk_get_type(j, file, path, &type, err)) return err->status;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(j, "normalizers");
        tk_path(p, sizeof p, path, "normalizers");
        if (!json_is_array(arr)) return tk_bad(err, SS_EFORMAT, file, p, "expected an array");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char q[TK_PATH_MAX];
            tk_path_index(q, sizeof q, p, i);
            if (parse_step(json_array_get(arr, i), file, q, nz, depth + 1, err)) return err->status;
        }
        return SS_OK;
    }
    tk_norm_step st = {0};
    ss_status status = SS_OK;
    if (strcmp(type, "Prepend") == 0 || strcmp(type, "Append") == 0) {
        bool prepend = type[0] == 'P';
        st.kind = prepend ? TK_NORM_PREPEND : TK_NORM_APPEND;
        status = copy_text(j, prepend ? "prepend" : "append", file, path, &st, err);
    } else if (strcmp(type, "Replace") == 0) {
        st.kind = TK_NORM_REPLACE;
        tk_path(p, sizeof p, path, "pattern");
        st.re = tk_parse_pattern(json_object_get(j, "pattern"), file, p, err);
        status = st.re ? copy_text(j, "content", file, path, &st, err) : err->status;
    } else if (strcmp(type, "NFC") == 0) {
        st.kind = TK_NORM_NFC;
    } else if (strcmp(type, "Strip") == 0) {
        st.kind = TK_NORM_STRIP;
        status = tk_get_bool(j, "strip_left", file, path, true, &st.left, err);
        if (!status) status = tk_get_bool(j, "strip_right", file, path, true, &st.right, err);
    } else {
        tk_path(p, sizeof p, path, "type");
        return ss_fail(err, SS_EUNSUPPORTED, "%s: unsupported normalizer '%s' (%s)", file, type, p);
    }
    if (!status) status = add_step(nz, &st, err);
    if (status) {
        free(st.text);
        pcre2_code_free(st.re);
    }
    return status;
}

ss_status tk_normalizer_parse(json_t *j, const char *file, tk_normalizer *nz, ss_error *err) {
    *nz = (tk_normalizer){0};
    if (!j || json_is_null(j)) return SS_OK;
    ss_status st = parse_step(j, file, "normalizer", nz, 0, err);
    if (st) tk_normalizer_free(nz);
    return st;
}

void tk_normalizer_free(tk_normalizer *nz) {
    for (int i = 0; i < nz->n; i++) {
        free(nz->steps[i].text);
        pcre2_code_free(nz->steps[i].re);
    }
    free(nz->steps);
    *nz = (tk_normalizer){0};
}

/* Every match of re in s replaced by text. */
static ss_status replace_all(const tk_norm_step *st, const char *s, size_t n, tk_buf *out, pcre2_match_data *md,
                             ss_error *err) {
    tk_regex_iter it = {0};
    size_t start, end, done = 0;
    int rc;
    while ((rc = tk_regex_next(st->re, s, n, &it, md, &start, &end, err)) == 1) {
        if (!tk_buf_put(out, s + done, start - done) || !tk_buf_put(out, st->text, st->text_len)) return tk_oom(err);
        done = end;
    }
    if (rc < 0) return err->status;
    return tk_buf_put(out, s + done, n - done) ? SS_OK : tk_oom(err);
}

static ss_status strip(const tk_norm_step *st, const char *s, size_t n, tk_buf *out, ss_error *err) {
    size_t a = 0, b = n;
    uint32_t cp;
    int k;
    while (st->left && a < b && (k = tk_utf8_next(s + a, b - a, &cp)) > 0 && tk_is_whitespace(cp)) a += (size_t)k;
    while (st->right && b > a) {
        size_t c = b - 1;
        while (c > a && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
        if (tk_utf8_next(s + c, b - c, &cp) <= 0 || !tk_is_whitespace(cp)) break;
        b = c;
    }
    return tk_buf_put(out, s + a, b - a) ? SS_OK : tk_oom(err);
}

static ss_status apply(const tk_norm_step *st, const tk_buf *in, tk_buf *out, pcre2_match_data *md, ss_error *err) {
    bool changed;
    switch (st->kind) {
    case TK_NORM_PREPEND:
        if (in->n && !tk_buf_put(out, st->text, st->text_len)) return tk_oom(err);
        return tk_buf_put(out, in->p, in->n) ? SS_OK : tk_oom(err);
    case TK_NORM_APPEND:
        if (!tk_buf_put(out, in->p, in->n)) return tk_oom(err);
        return !in->n || tk_buf_put(out, st->text, st->text_len) ? SS_OK : tk_oom(err);
    case TK_NORM_REPLACE: return replace_all(st, in->p, in->n, out, md, err);
    case TK_NORM_NFC:
        if (!tk_nfc(in->p, in->n, out, &changed)) return tk_oom(err);
        return changed || tk_buf_put(out, in->p, in->n) ? SS_OK : tk_oom(err);
    case TK_NORM_STRIP: return strip(st, in->p, in->n, out, err);
    }
    return SS_OK;
}

ss_status tk_normalize(const tk_normalizer *nz, const char *s, size_t n, tk_buf *out, pcre2_match_data *md,
                       ss_error *err) {
    out->n = 0;
    if (!tk_buf_put(out, s, n)) return tk_oom(err);
    tk_buf tmp = {0};
    ss_status st = SS_OK;
    for (int i = 0; !st && i < nz->n; i++) {
        tmp.n = 0;
        st = apply(&nz->steps[i], out, &tmp, md, err);
        tk_buf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    tk_buf_free(&tmp);
    if (!st && !tk_buf_reserve(out, 1)) st = tk_oom(err);
    if (!st) out->p[out->n] = 0;
    return st;
}
