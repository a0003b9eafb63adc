/* tokenizer_decode.c — ids back to text: the decoder chain of tokenizer.json and the streaming decoder.
 *
 * Decoders work on the list of token strings, each step rewriting the list, as in Hugging Face's
 * decode_chain: ByteLevel (characters back to bytes, all tokens joined), Replace, ByteFallback (runs
 * of <0xNN> tokens become their bytes, or one U+FFFD per byte when the run is not UTF-8), Fuse
 * (join), Strip (drop up to `start` leading / `stop` trailing copies of a character from each
 * token), Metaspace (the replacement character back to a space; dropped in the first token).
 * Llama 2 is Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0)]: the Strip comes
 * after the Fuse, so only the very first space of the text goes.
 *
 * The streaming decoder keeps a short window of ids and decodes it again at each new id, the way
 * Hugging Face's DecodeStream does: the text it hands out is what the window's decode added since
 * the last time. The window begins with the tokens of the previous emission, which gives Strip and
 * Metaspace the same "first token" the whole decode sees. A trailing UTF-8 sequence that later
 * tokens may still complete is held back, so only whole characters come out. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- parsing */

static ss_status add_step(tk_decoder *dec, const tk_dec_step *st, ss_error *err) {
    tk_dec_step *v = realloc(dec->steps, (size_t)(dec->n + 1) * sizeof *v);
    if (!v) return tk_oom(err);
    dec->steps = v;
    dec->steps[dec->n++] = *st;
    return SS_OK;
}

static ss_status one_char(json_t *j, const char *key, const char *file, const char *path, char *out, size_t size,
                          uint32_t *cp, ss_error *err) {
    const char *s;
    size_t len;
    char p[TK_PATH_MAX];
    if (tk_get_string(j, key, file, path, true, &s, &len, err)) return err->status;
    tk_path(p, sizeof p, path, key);
    if (len == 0 || len >= size || tk_utf8_next(s, len, cp) != (int)len)
        return tk_bad(err, SS_EFORMAT, file, p, "expected a string of one character");
    memcpy(out, s, len + 1);
    return SS_OK;
}

static ss_status parse_metaspace(json_t *j, const char *file, const char *path, tk_dec_step *st, ss_error *err) {
    uint32_t cp;
    const char *scheme;
    if (one_char(j, "replacement", file, path, st->replacement, sizeof st->replacement, &cp, err) ||
        tk_get_string(j, "prepend_scheme", file, path, false, &scheme, NULL, err))
        return err->status;
    if (scheme) {
        st->prepend = strcmp(scheme, "never") != 0;
        return SS_OK;
    }
    return tk_get_bool(j, "add_prefix_space", file, path, true, &st->prepend, err);
}

static ss_status parse_step(json_t *j, const char *file, const char *path, tk_decoder *dec, int depth, ss_error *err) {
    const char *type;
    char p[TK_PATH_MAX];
    if (depth > 8) return tk_bad(err, SS_EFORMAT, file, path, "decoders nested too deeply");
    if (tk_get_type(j, file, path, &type, err)) return err->status;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(j, "decoders");
        tk_path(p, sizeof p, path, "decoders");
        if (!json_is_array(arr)) return tk_bad(err, SS_EFORMAT, file, p, "expected an array");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char q[TK_PATH_MAX];
            tk_path_index(q, sizeof q, p, i);
            if (parse_step(json_array_get(arr, i), file, q, dec, depth + 1, err)) return err->status;
        }
        return SS_OK;
    }
    tk_dec_step st = {0};
    ss_status status = SS_OK;
    if (strcmp(type, "ByteLevel") == 0) {
        st.kind = TK_DEC_BYTELEVEL;
    } else if (strcmp(type, "ByteFallback") == 0) {
        st.kind = TK_DEC_BYTEFALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        st.kind = TK_DEC_FUSE;
    } else if (strcmp(type, "Replace") == 0) {
        const char *content;
        size_t len;
        st.kind = TK_DEC_REPLACE;
        tk_path(p, sizeof p, path, "pattern");
        st.re = tk_parse_pattern(json_object_get(j, "pattern"), file, p, err);
        status = st.re ? tk_get_string(j, "content", file, path, true, &content, &len, err) : err->status;
        if (!status && !(st.text = malloc(len + 1))) status = tk_oom(err);
        if (!status) {
            memcpy(st.text, content, len + 1);
            st.text_len = len;
        }
    } else if (strcmp(type, "Strip") == 0) {
        long start, stop;
        char ch[8];
        st.kind = TK_DEC_STRIP;
        status = one_char(j, "content", file, path, ch, sizeof ch, &st.strip_char, err);
        if (!status) status = tk_get_int(j, "start", file, path, 0, 1 << 20, 0, &start, err);
        if (!status) status = tk_get_int(j, "stop", file, path, 0, 1 << 20, 0, &stop, err);
        st.start = (int)start;
        st.stop = (int)stop;
    } else if (strcmp(type, "Metaspace") == 0) {
        st.kind = TK_DEC_METASPACE;
        status = parse_metaspace(j, file, path, &st, err);
    } else {
        tk_path(p, sizeof p, path, "type");
        return ss_fail(err, SS_EUNSUPPORTED, "%s: unsupported decoder '%s' (%s)", file, type, p);
    }
    if (!status) status = add_step(dec, &st, err);
    if (status) {
        free(st.text);
        pcre2_code_free(st.re);
    }
    return status;
}

ss_status tk_decoder_parse(json_t *j, const char *file, tk_decoder *dec, ss_error *err) {
    *dec = (tk_decoder){0};
    if (!j || json_is_null(j)) return SS_OK;
    dec->present = true;
    ss_status st = parse_step(j, file, "decoder", dec, 0, err);
    if (st) tk_decoder_free(dec);
    return st;
}

void tk_decoder_free(tk_decoder *dec) {
    for (int i = 0; i < dec->n; i++) {
        free(dec->steps[i].text);
        pcre2_code_free(dec->steps[i].re);
    }
    free(dec->steps);
    *dec = (tk_decoder){0};
}

/* ---------------------------------------------------------------- the steps */

typedef struct {
    pcre2_match_data *md;
    tk_buf tmp;
    bool final;
} dec_ctx;

static ss_status step_replace(const tk_dec_step *st, const tk_list *in, tk_list *out, dec_ctx *c, ss_error *err) {
    for (int i = 0; i < in->n; i++) {
        const char *s = tk_list_str(in, i);
        size_t n = in->v[i].len, start, end, done = 0;
        tk_regex_iter it = {0};
        int rc;
        c->tmp.n = 0;
        while ((rc = tk_regex_next(st->re, s, n, &it, c->md, &start, &end, err)) == 1) {
            if (!tk_buf_put(&c->tmp, s + done, start - done) || !tk_buf_put(&c->tmp, st->text, st->text_len))
                return tk_oom(err);
            done = end;
        }
        if (rc < 0) return err->status;
        if (!tk_buf_put(&c->tmp, s + done, n - done) || !tk_list_add(out, c->tmp.p, c->tmp.n, false)) return tk_oom(err);
    }
    return SS_OK;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xNN>" -> NN, else -1. */
static int fallback_byte(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* A finished run of byte tokens: its text when it is UTF-8, else one U+FFFD per byte. The run
 * that ends the list while streaming may still grow: it stays raw. */
static ss_status flush_bytes(tk_buf *bytes, bool last, dec_ctx *c, tk_list *out, ss_error *err) {
    if (bytes->n == 0) return SS_OK;
    bool ok = true;
    if ((last && !c->final) || tk_utf8_invalid_at(bytes->p, bytes->n) == bytes->n) {
        ok = tk_list_add(out, bytes->p, bytes->n, false);
    } else {
        for (size_t k = 0; ok && k < bytes->n; k++) ok = tk_list_add(out, "\xEF\xBF\xBD", 3, false);
    }
    bytes->n = 0;
    return ok ? SS_OK : tk_oom(err);
}

static ss_status step_byte_fallback(const tk_list *in, tk_list *out, dec_ctx *c, ss_error *err) {
    c->tmp.n = 0;
    for (int i = 0; i < in->n; i++) {
        int b = fallback_byte(tk_list_str(in, i), in->v[i].len);
        if (b >= 0) {
            unsigned char byte = (unsigned char)b;
            if (!tk_buf_put(&c->tmp, &byte, 1)) return tk_oom(err);
            continue;
        }
        if (flush_bytes(&c->tmp, false, c, out, err)) return err->status;
        if (!tk_list_add(out, tk_list_str(in, i), in->v[i].len, false)) return tk_oom(err);
    }
    return flush_bytes(&c->tmp, true, c, out, err);
}

static ss_status step_fuse(const tk_list *in, tk_list *out, ss_error *err) {
    if (!tk_list_add(out, in->text.p ? in->text.p : "", 0, false)) return tk_oom(err);
    for (int i = 0; i < in->n; i++)
        if (!tk_buf_put(&out->text, tk_list_str(in, i), in->v[i].len)) return tk_oom(err);
    out->v[0].len = out->text.n;
    return SS_OK;
}

static ss_status step_strip(const tk_dec_step *st, const tk_list *in, tk_list *out, ss_error *err) {
    for (int i = 0; i < in->n; i++) {
        const char *s = tk_list_str(in, i);
        size_t a = 0, b = in->v[i].len;
        uint32_t cp;
        int k;
        for (int j = 0; j < st->start && a < b && (k = tk_utf8_next(s + a, b - a, &cp)) > 0 && cp == st->strip_char; j++)
            a += (size_t)k;
        for (int j = 0; j < st->stop && b > a; j++) {
            size_t c = b - 1;
            while (c > a && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
            if (tk_utf8_next(s + c, b - c, &cp) <= 0 || cp != st->strip_char) break;
            b = c;
        }
        if (!tk_list_add(out, s + a, b - a, false)) return tk_oom(err);
    }
    return SS_OK;
}

/* Each token's characters back to bytes (a token with a character outside the byte alphabet
 * keeps its own bytes), joined, then repaired into UTF-8. */
static ss_status step_byte_level(const tk_list *in, tk_list *out, dec_ctx *c, ss_error *err) {
    c->tmp.n = 0;
    for (int i = 0; i < in->n; i++) {
        const char *s = tk_list_str(in, i);
        size_t n = in->v[i].len, mark = c->tmp.n;
        uint32_t cp;
        int k, b = 0;
        for (size_t j = 0; j < n && b >= 0; j += (size_t)k) {
            k = tk_utf8_next(s + j, n - j, &cp);
            b = k > 0 ? tk_char_byte(cp) : -1;
            unsigned char byte = (unsigned char)b;
            if (b >= 0 && !tk_buf_put(&c->tmp, &byte, 1)) return tk_oom(err);
        }
        if (b < 0) {
            c->tmp.n = mark;
            if (!tk_buf_put(&c->tmp, s, n)) return tk_oom(err);
        }
    }
    size_t pending;
    if (!tk_list_add(out, "", 0, false) ||
        !tk_utf8_lossy(&out->text, c->tmp.p ? c->tmp.p : "", c->tmp.n, c->final, &pending))
        return tk_oom(err);
    out->v[0].len = out->text.n;
    return SS_OK;
}

static ss_status step_metaspace(const tk_dec_step *st, const tk_list *in, tk_list *out, dec_ctx *c, ss_error *err) {
    size_t rlen = strlen(st->replacement);
    for (int i = 0; i < in->n; i++) {
        const char *s = tk_list_str(in, i);
        size_t n = in->v[i].len;
        c->tmp.n = 0;
        for (size_t j = 0; j < n;) {
            if (j + rlen <= n && memcmp(s + j, st->replacement, rlen) == 0) {
                if ((i > 0 || !st->prepend) && !tk_buf_put(&c->tmp, " ", 1)) return tk_oom(err);
                j += rlen;
            } else {
                if (!tk_buf_put(&c->tmp, s + j, 1)) return tk_oom(err);
                j++;
            }
        }
        if (!tk_list_add(out, c->tmp.p ? c->tmp.p : "", c->tmp.n, false)) return tk_oom(err);
    }
    return SS_OK;
}

static ss_status run_step(const tk_dec_step *st, const tk_list *in, tk_list *out, dec_ctx *c, ss_error *err) {
    switch (st->kind) {
    case TK_DEC_BYTELEVEL: return step_byte_level(in, out, c, err);
    case TK_DEC_REPLACE: return step_replace(st, in, out, c, err);
    case TK_DEC_BYTEFALLBACK: return step_byte_fallback(in, out, c, err);
    case TK_DEC_FUSE: return step_fuse(in, out, err);
    case TK_DEC_STRIP: return step_strip(st, in, out, err);
    case TK_DEC_METASPACE: return step_metaspace(st, in, out, c, err);
    }
    return SS_OK;
}

/* ---------------------------------------------------------------- whole decode */

static const char *token_string(const ss_tokenizer *tok, int id, size_t *len) {
    int a = tok->added_of_id[id];
    if (a >= 0) {
        *len = tok->added.v[a].len;
        return tok->added.v[a].content;
    }
    return tk_bpe_piece(&tok->bpe, id, len);
}

static ss_status collect_tokens(const ss_tokenizer *tok, const int *ids, int n, bool skip_special, tk_list *out,
                                ss_error *err) {
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size)
            return ss_fail(err, SS_EARG, "token id %d (at %d) is outside the vocabulary [0, %d)", ids[i], i,
                           tok->vocab_size);
        if (skip_special && ss_tokenizer_is_special(tok, ids[i])) continue;
        size_t len;
        const char *s = token_string(tok, ids[i], &len);
        if (s && !tk_list_add(out, s, len, false)) return tk_oom(err); /* an id without a string decodes to nothing */
    }
    return SS_OK;
}

ss_status tk_decode(const ss_tokenizer *tok, const int *ids, int n, bool skip_special, bool final, tk_buf *out,
                    size_t *pending, ss_error *err) {
    tk_list a = {0}, b = {0};
    dec_ctx c = {.final = final, .md = pcre2_match_data_create(1, NULL)};
    ss_status st = c.md ? collect_tokens(tok, ids, n, skip_special, &a, err) : tk_oom(err);
    for (int s = 0; !st && s < tok->decoder.n; s++) {
        tk_list_clear(&b);
        st = run_step(&tok->decoder.steps[s], &a, &b, &c, err);
        tk_list swap = a;
        a = b;
        b = swap;
    }
    /* Without a decoder the tokens are joined with spaces. */
    const char *sep = tok->decoder.present ? "" : " ";
    c.tmp.n = 0;
    for (int i = 0; !st && i < a.n; i++)
        if ((i > 0 && !tk_buf_put(&c.tmp, sep, strlen(sep))) || !tk_buf_put(&c.tmp, tk_list_str(&a, i), a.v[i].len))
            st = tk_oom(err);
    out->n = 0;
    if (!st && !tk_utf8_lossy(out, c.tmp.p ? c.tmp.p : "", c.tmp.n, final, pending)) st = tk_oom(err);
    if (!st && !tk_buf_reserve(out, 1)) st = tk_oom(err);
    if (!st) out->p[out->n] = 0;
    tk_list_free(&a);
    tk_list_free(&b);
    tk_buf_free(&c.tmp);
    pcre2_match_data_free(c.md);
    return st;
}

ss_status ss_tokenizer_decode(const ss_tokenizer *tok, const int *ids, int n, bool skip_special, char **out,
                              ss_error *err) {
    ss_error local;
    if (!err) err = &local;
    *out = NULL;
    if (n < 0 || (n > 0 && !ids)) return ss_fail(err, SS_EARG, "decode: bad id list (n = %d)", n);
    tk_buf text = {0};
    size_t pending;
    ss_status st = tk_decode(tok, ids, n, skip_special, true, &text, &pending, err);
    if (st) {
        tk_buf_free(&text);
        return st;
    }
    *out = text.p;
    return SS_OK;
}

/* ---------------------------------------------------------------- streaming */

struct ss_stream_decoder {
    const ss_tokenizer *tok;
    bool skip_special;
    ss_ids window;    /* the ids decoded together at each push */
    int prefix_index; /* window[prefix_index..]: the ids since the last emission */
    tk_buf prefix;    /* the text of the window already handed out */
    tk_buf text, out;
};

ss_stream_decoder *ss_stream_decoder_new(const ss_tokenizer *tok, bool skip_special) {
    ss_stream_decoder *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->tok = tok;
    d->skip_special = skip_special;
    return d;
}

void ss_stream_decoder_free(ss_stream_decoder *d) {
    if (!d) return;
    ss_ids_free(&d->window);
    tk_buf_free(&d->prefix);
    tk_buf_free(&d->text);
    tk_buf_free(&d->out);
    free(d);
}

/* Length of the common prefix of the text and the emitted prefix, on a character boundary. */
static size_t agreed_length(const tk_buf *a, const tk_buf *b) {
    size_t n = a->n < b->n ? a->n : b->n, i = 0;
    while (i < n && a->p[i] == b->p[i]) i++;
    if (i == b->n) return i;
    while (i > 0 && ((unsigned char)a->p[i] & 0xC0) == 0x80) i--;
    return i;
}

/* Sets out to text[from..upto]; "" when out of memory (the stream cannot report errors). */
static const char *hand_out(ss_stream_decoder *d, size_t from, size_t upto) {
    d->out.n = 0;
    if (upto > from && !tk_buf_put(&d->out, d->text.p + from, upto - from)) d->out.n = 0;
    if (!tk_buf_reserve(&d->out, 1)) return "";
    d->out.p[d->out.n] = 0;
    return d->out.p;
}

const char *ss_stream_decoder_push(ss_stream_decoder *d, int id) {
    ss_error err;
    size_t pending;
    if (id < 0 || id >= d->tok->vocab_size || ss_ids_push(&d->window, id, &err)) return "";
    if (tk_decode(d->tok, d->window.ids, d->window.n, d->skip_special, false, &d->text, &pending, &err)) {
        d->window.n--;
        return "";
    }
    size_t settled = d->text.n - pending, from = agreed_length(&d->text, &d->prefix);
    if (settled <= d->prefix.n) return hand_out(d, 0, 0);
    const char *piece = hand_out(d, from, settled);
    if (pending == 0) { /* drop what came before the previous emission; this one's ids stay as context */
        int keep = d->window.n - d->prefix_index;
        memmove(d->window.ids, d->window.ids + d->prefix_index, (size_t)keep * sizeof *d->window.ids);
        d->window.n = keep;
        d->prefix_index = keep;
        if (tk_decode(d->tok, d->window.ids, d->window.n, d->skip_special, false, &d->text, &pending, &err)) {
            d->text.n = 0;
            pending = 0;
        }
        settled = d->text.n - pending;
    }
    d->prefix.n = 0;
    if (!tk_buf_put(&d->prefix, d->text.p, settled)) d->prefix.n = 0;
    return piece;
}

const char *ss_stream_decoder_flush(ss_stream_decoder *d) {
    ss_error err;
    size_t pending;
    const char *piece = "";
    if (d->window.n && !tk_decode(d->tok, d->window.ids, d->window.n, d->skip_special, true, &d->text, &pending, &err))
        piece = hand_out(d, agreed_length(&d->text, &d->prefix), d->text.n);
    d->window.n = 0;
    d->prefix_index = 0;
    d->prefix.n = 0;
    return piece;
}
