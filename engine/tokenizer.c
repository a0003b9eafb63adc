/* tokenizer.c — loading tokenizer.json (+ tokenizer_config.json) and encoding text to ids.
 *
 * Semantics are Hugging Face `tokenizers` (see tokenizer_internal.h for the pipeline). The parts live
 * in tokenizer_normalize.c, tokenizer_pretok.c, tokenizer_bpe.c, tokenizer_added.c and
 * tokenizer_decode.c; this file reads the files, wires the parts together and answers the
 * questions of specscope.h.
 *
 * BOS/EOS (add_special): the post_processor's single-sequence template (TemplateProcessing,
 * RobertaProcessing / BertProcessing, Sequence of those, ByteLevel adds nothing). When
 * tokenizer_config.json sets add_bos_token / add_eos_token, transformers rebuilds that template
 * from bos_token / eos_token, and so do we (Llama 2: BOS; Qwen: add_bos_token false, nothing).
 * Only model type BPE is supported; WordPiece, Unigram and WordLevel are refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- files */

/* flags: JSON_DECODE_INT_AS_REAL for tokenizer_config.json, whose model_max_length can be 1e30. */
static ss_status load_json(const char *path, size_t flags, json_t **out, ss_error *err) {
    json_error_t jerr;
    *out = json_load_file(path, JSON_ALLOW_NUL | flags, &jerr);
    if (*out) return SS_OK;
    if (json_error_code(&jerr) == json_error_cannot_open_file) {
        FILE *f = fopen(path, "rb");
        int e = f ? 0 : errno;
        if (f) fclose(f);
        return ss_fail(err, SS_EIO, "%s: cannot open: %s", path, e ? strerror(e) : jerr.text);
    }
    if (json_error_code(&jerr) == json_error_out_of_memory) return tk_oom(err);
    return ss_fail(err, SS_EFORMAT, "%s: line %d column %d: %s", path, jerr.line, jerr.column, jerr.text);
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---------------------------------------------------------------- the post-processor */

typedef struct {
    int prefix[8], n_prefix, suffix[8], n_suffix;
} wrap;

static ss_status wrap_add(wrap *w, bool before, int id, const char *file, const char *path, ss_error *err) {
    int *n = before ? &w->n_prefix : &w->n_suffix;
    if (*n == 8) return tk_bad(err, SS_EUNSUPPORTED, file, path, "more than 8 special tokens around a sequence");
    (before ? w->prefix : w->suffix)[(*n)++] = id;
    return SS_OK;
}

/* The ids of one entry of TemplateProcessing.special_tokens. */
static ss_status template_ids(json_t *specials, const char *name, bool before, wrap *w, const char *file,
                              const char *path, ss_error *err) {
    json_t *entry = json_object_get(specials, name);
    json_t *ids = entry ? json_object_get(entry, "ids") : NULL;
    if (!json_is_array(ids))
        return tk_bad(err, SS_EFORMAT, file, "post_processor.special_tokens", "'%s' is missing or has no ids array", name);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *id = json_array_get(ids, i);
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 30))
            return tk_bad(err, SS_EFORMAT, file, "post_processor.special_tokens", "'%s': ids must be token ids", name);
        if (wrap_add(w, before, (int)json_integer_value(id), file, path, err)) return err->status;
    }
    return SS_OK;
}

static ss_status parse_template(json_t *j, const char *file, const char *path, wrap *w, ss_error *err) {
    char p[TK_PATH_MAX];
    json_t *single = json_object_get(j, "single"), *specials = json_object_get(j, "special_tokens");
    tk_path(p, sizeof p, path, "single");
    if (!json_is_array(single)) return tk_bad(err, SS_EFORMAT, file, p, "expected an array");
    bool before = true;
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *item = json_array_get(single, i), *special = json_object_get(item, "SpecialToken");
        char q[TK_PATH_MAX];
        tk_path_index(q, sizeof q, p, i);
        if (json_object_get(item, "Sequence")) {
            before = false;
            continue;
        }
        json_t *name = special ? json_object_get(special, "id") : NULL;
        if (!json_is_string(name))
            return tk_bad(err, SS_EFORMAT, file, q, "expected {\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": ...}");
        if (template_ids(specials, json_string_value(name), before, w, file, q, err)) return err->status;
    }
    return SS_OK;
}

/* RobertaProcessing / BertProcessing: "cls": [token, id], "sep": [token, id]. */
static ss_status parse_cls_sep(json_t *j, const char *file, const char *path, wrap *w, ss_error *err) {
    static const char *keys[2] = {"cls", "sep"};
    for (int k = 0; k < 2; k++) {
        char p[TK_PATH_MAX];
        json_t *pair = json_object_get(j, keys[k]);
        tk_path(p, sizeof p, path, keys[k]);
        json_t *id = json_is_array(pair) && json_array_size(pair) == 2 ? json_array_get(pair, 1) : NULL;
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 30))
            return tk_bad(err, SS_EFORMAT, file, p, "expected [token, id]");
        if (wrap_add(w, k == 0, (int)json_integer_value(id), file, p, err)) return err->status;
    }
    return SS_OK;
}

static ss_status parse_post(json_t *j, const char *file, const char *path, wrap *w, int depth, ss_error *err) {
    const char *type;
    char p[TK_PATH_MAX];
    if (depth > 8) return tk_bad(err, SS_EFORMAT, file, path, "post-processors nested too deeply");
    if (tk_get_type(j, file, path, &type, err)) return err->status;
    if (strcmp(type, "ByteLevel") == 0) return SS_OK; /* only trims offsets */
    if (strcmp(type, "TemplateProcessing") == 0) return parse_template(j, file, path, w, err);
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0)
        return parse_cls_sep(j, file, path, w, err);
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(j, "processors");
        tk_path(p, sizeof p, path, "processors");
        if (!json_is_array(arr)) return tk_bad(err, SS_EFORMAT, file, p, "expected an array");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            /* Each processor wraps what the previous ones produced. */
            wrap inner = {0};
            char q[TK_PATH_MAX];
            tk_path_index(q, sizeof q, p, i);
            if (parse_post(json_array_get(arr, i), file, q, &inner, depth + 1, err)) return err->status;
            wrap both = {0};
            for (int k = 0; k < inner.n_prefix + w->n_prefix; k++) {
                int id = k < inner.n_prefix ? inner.prefix[k] : w->prefix[k - inner.n_prefix];
                if (wrap_add(&both, true, id, file, q, err)) return err->status;
            }
            for (int k = 0; k < w->n_suffix + inner.n_suffix; k++) {
                int id = k < w->n_suffix ? w->suffix[k] : inner.suffix[k - w->n_suffix];
                if (wrap_add(&both, false, id, file, q, err)) return err->status;
            }
            *w = both;
        }
        return SS_OK;
    }
    tk_path(p, sizeof p, path, "type");
    return ss_fail(err, SS_EUNSUPPORTED, "%s: unsupported post-processor '%s' (%s)", file, type, p);
}

/* ---------------------------------------------------------------- tokenizer_config.json */

/* bos_token / eos_token: a string, or an AddedToken object with "content". */
static const char *config_token(json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* chat_template: a string, or a list of {"name", "template"} of which "default" is the one. */
static const char *config_template(json_t *cfg) {
    json_t *t = json_object_get(cfg, "chat_template");
    if (json_is_string(t)) return json_string_value(t);
    size_t i;
    json_t *item;
    json_array_foreach(t, i, item) {
        json_t *name = json_object_get(item, "name"), *tmpl = json_object_get(item, "template");
        if (json_is_string(name) && strcmp(json_string_value(name), "default") == 0 && json_is_string(tmpl))
            return json_string_value(tmpl);
    }
    return NULL;
}

static ss_status set_template(ss_tokenizer *tok, const char *text, size_t len, ss_error *err) {
    tok->chat_template = malloc(len + 1);
    if (!tok->chat_template) return tk_oom(err);
    memcpy(tok->chat_template, text, len);
    tok->chat_template[len] = 0;
    return SS_OK;
}

/* A chat_template.jinja beside the files (newer transformers save it there). */
static ss_status read_template_file(ss_tokenizer *tok, const char *dir, ss_error *err) {
    char *path = join_path(dir, "chat_template.jinja");
    if (!path) return tk_oom(err);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f) return SS_OK;
    tk_buf text = {0};
    char chunk[4096];
    size_t n;
    ss_status st = SS_OK;
    while (!st && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!tk_buf_put(&text, chunk, n)) st = tk_oom(err);
    fclose(f);
    if (!st && text.n) st = set_template(tok, text.p, text.n, err);
    tk_buf_free(&text);
    return st;
}

static ss_status read_config(ss_tokenizer *tok, const char *dir, wrap *w, ss_error *err) {
    char *path = join_path(dir, "tokenizer_config.json");
    if (!path) return tk_oom(err);
    json_t *cfg = NULL;
    FILE *f = fopen(path, "rb");
    ss_status st = SS_OK;
    if (f) {
        fclose(f);
        st = load_json(path, JSON_DECODE_INT_AS_REAL, &cfg, err);
        if (!st && !json_is_object(cfg)) st = ss_fail(err, SS_EFORMAT, "%s: expected a JSON object", path);
    }
    if (!st && cfg) {
        const char *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
        const char *tmpl = config_template(cfg);
        if (bos) tok->bos_id = ss_tokenizer_token_id(tok, bos);
        if (eos) tok->eos_id = ss_tokenizer_token_id(tok, eos);
        if (tmpl) st = set_template(tok, tmpl, strlen(tmpl), err);
        json_t *add_bos = json_object_get(cfg, "add_bos_token"), *add_eos = json_object_get(cfg, "add_eos_token");
        if (json_is_boolean(add_bos) || json_is_boolean(add_eos)) {
            bool want_bos = json_is_boolean(add_bos) ? json_is_true(add_bos) : w->n_prefix > 0;
            bool want_eos = json_is_boolean(add_eos) ? json_is_true(add_eos) : w->n_suffix > 0;
            w->n_prefix = w->n_suffix = 0;
            if (want_bos && tok->bos_id >= 0) w->prefix[w->n_prefix++] = tok->bos_id;
            if (want_eos && tok->eos_id >= 0) w->suffix[w->n_suffix++] = tok->eos_id;
        }
    }
    if (!st && !tok->chat_template) st = read_template_file(tok, dir, err);
    json_decref(cfg);
    free(path);
    return st;
}

/* ---------------------------------------------------------------- loading */

static ss_status index_ids(ss_tokenizer *tok, ss_error *err) {
    tk_added_resolve_ids(&tok->added, &tok->bpe);
    int n = tok->bpe.n_ids;
    for (int i = 0; i < tok->added.n; i++)
        if (tok->added.v[i].id >= n) n = tok->added.v[i].id + 1;
    tok->vocab_size = n;
    tok->added_of_id = malloc((size_t)(n ? n : 1) * sizeof *tok->added_of_id);
    if (!tok->added_of_id) return tk_oom(err);
    memset(tok->added_of_id, 0xFF, (size_t)(n ? n : 1) * sizeof *tok->added_of_id);
    for (int i = 0; i < tok->added.n; i++) tok->added_of_id[tok->added.v[i].id] = i;
    return SS_OK;
}

static ss_status parse_tokenizer(ss_tokenizer *tok, json_t *root, wrap *w, ss_error *err) {
    const char *file = tok->file;
    if (!json_is_object(root)) return ss_fail(err, SS_EFORMAT, "%s: expected a JSON object", file);
    json_t *model = json_object_get(root, "model");
    if (!model) return tk_bad(err, SS_EFORMAT, file, "model", "missing");
    json_t *post = json_object_get(root, "post_processor");
    if (tk_bpe_parse(model, file, &tok->bpe, err) ||
        tk_normalizer_parse(json_object_get(root, "normalizer"), file, &tok->normalizer, err) ||
        tk_pretokenizer_parse(json_object_get(root, "pre_tokenizer"), file, &tok->pretokenizer, err) ||
        tk_decoder_parse(json_object_get(root, "decoder"), file, &tok->decoder, err) ||
        tk_added_parse(json_object_get(root, "added_tokens"), file, &tok->added, err) ||
        tk_added_build(&tok->added, &tok->normalizer, file, err) || index_ids(tok, err) ||
        (post && !json_is_null(post) && parse_post(post, file, "post_processor", w, 0, err)))
        return err->status;
    for (int i = 0; i < w->n_prefix + w->n_suffix; i++) {
        int id = i < w->n_prefix ? w->prefix[i] : w->suffix[i - w->n_prefix];
        if (id >= tok->vocab_size)
            return tk_bad(err, SS_EFORMAT, file, "post_processor", "token id %d is outside the vocabulary [0, %d)", id,
                          tok->vocab_size);
    }
    return SS_OK;
}

ss_status ss_tokenizer_load(const char *dir, ss_tokenizer **out, ss_error *err) {
    ss_error local;
    if (!err) err = &local;
    *out = NULL;
    if (!dir) return ss_fail(err, SS_EARG, "no tokenizer folder given");
    ss_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return tk_oom(err);
    tok->bos_id = tok->eos_id = -1;
    json_t *root = NULL;
    wrap w = {0};
    ss_status st = (tok->file = join_path(dir, "tokenizer.json")) ? SS_OK : tk_oom(err);
    if (!st) st = load_json(tok->file, 0, &root, err);
    if (!st) st = parse_tokenizer(tok, root, &w, err);
    json_decref(root); /* everything kept was copied */
    if (!st) {
        /* Without tokenizer_config.json, BOS is what the template puts first. */
        if (w.n_prefix > 0) tok->bos_id = w.prefix[0];
        st = read_config(tok, dir, &w, err);
    }
    if (st) {
        ss_tokenizer_free(tok);
        return st;
    }
    memcpy(tok->prefix, w.prefix, sizeof w.prefix);
    memcpy(tok->suffix, w.suffix, sizeof w.suffix);
    tok->n_prefix = w.n_prefix;
    tok->n_suffix = w.n_suffix;
    *out = tok;
    return SS_OK;
}

void ss_tokenizer_free(ss_tokenizer *tok) {
    if (!tok) return;
    tk_normalizer_free(&tok->normalizer);
    tk_pretokenizer_free(&tok->pretokenizer);
    tk_bpe_free(&tok->bpe);
    tk_added_free(&tok->added);
    tk_decoder_free(&tok->decoder);
    free(tok->added_of_id);
    free(tok->chat_template);
    free(tok->file);
    free(tok);
}

/* ---------------------------------------------------------------- encoding */

typedef struct {
    const ss_tokenizer *tok;
    ss_ids *out;
    tk_buf norm;
    tk_list pieces, tmp;
    tk_bpe_work bpe;
    pcre2_match_data *md;
} encoder;

/* Text between added tokens, normalized: pre-tokenize, then BPE each piece. */
static ss_status encode_normalized(void *ud, const char *s, size_t n, int token, bool at_start, ss_error *err) {
    encoder *e = ud;
    if (token >= 0) return ss_ids_push(e->out, token, err);
    if (n == 0) return SS_OK;
    tk_list_clear(&e->pieces);
    if (!tk_list_add(&e->pieces, s, n, at_start)) return tk_oom(err);
    if (tk_pretokenize(&e->tok->pretokenizer, &e->pieces, &e->tmp, e->md, err)) return err->status;
    for (int i = 0; i < e->pieces.n; i++)
        if (tk_bpe_encode_word(&e->tok->bpe, tk_list_str(&e->pieces, i), e->pieces.v[i].len, &e->bpe, e->out, err))
            return err->status;
    return SS_OK;
}

/* Raw text between non-normalized added tokens: normalize, then look for the normalized ones. */
static ss_status encode_raw(void *ud, const char *s, size_t n, int token, bool at_start, ss_error *err) {
    encoder *e = ud;
    if (token >= 0) return ss_ids_push(e->out, token, err);
    if (n == 0) return SS_OK;
    if (tk_normalize(&e->tok->normalizer, s, n, &e->norm, e->md, err)) return err->status;
    return tk_added_split(&e->tok->added, true, e->norm.p, e->norm.n, at_start, e->md, encode_normalized, e, err);
}

ss_status ss_tokenizer_encode(const ss_tokenizer *tok, const char *text, size_t len, bool add_special, ss_ids *out,
                              ss_error *err) {
    ss_error local;
    if (!err) err = &local;
    if (!text && len) return ss_fail(err, SS_EARG, "encode: no text");
    size_t bad = tk_utf8_invalid_at(text, len);
    if (bad < len) return ss_fail(err, SS_EARG, "the text is not valid UTF-8 (byte %zu)", bad);
    int start = out->n;
    encoder e = {.tok = tok, .out = out, .md = pcre2_match_data_create(1, NULL)};
    ss_status st = e.md ? SS_OK : tk_oom(err);
    for (int i = 0; !st && add_special && i < tok->n_prefix; i++) st = ss_ids_push(out, tok->prefix[i], err);
    if (!st) st = tk_added_split(&tok->added, false, text ? text : "", len, true, e.md, encode_raw, &e, err);
    for (int i = 0; !st && add_special && i < tok->n_suffix; i++) st = ss_ids_push(out, tok->suffix[i], err);
    if (st) out->n = start; /* nothing half done */
    tk_buf_free(&e.norm);
    tk_list_free(&e.pieces);
    tk_list_free(&e.tmp);
    tk_bpe_work_free(&e.bpe);
    pcre2_match_data_free(e.md);
    return st;
}

/* ---------------------------------------------------------------- questions */

int ss_tokenizer_vocab_size(const ss_tokenizer *tok) { return tok->vocab_size; }

const char *ss_tokenizer_piece(const ss_tokenizer *tok, int id) {
    if (id < 0 || id >= tok->vocab_size) return NULL;
    if (tok->added_of_id[id] >= 0) return tok->added.v[tok->added_of_id[id]].content;
    return tk_bpe_piece(&tok->bpe, id, NULL);
}

int ss_tokenizer_token_id(const ss_tokenizer *tok, const char *piece) {
    if (!piece) return -1;
    size_t n = strlen(piece);
    int a = tk_added_find(&tok->added, piece, n);
    return a >= 0 ? tok->added.v[a].id : tk_bpe_lookup(&tok->bpe, piece, n);
}

bool ss_tokenizer_is_special(const ss_tokenizer *tok, int id) {
    return id >= 0 && id < tok->vocab_size && tok->added_of_id[id] >= 0 && tok->added.v[tok->added_of_id[id]].special;
}

int ss_tokenizer_bos(const ss_tokenizer *tok) { return tok->bos_id; }
int ss_tokenizer_eos(const ss_tokenizer *tok) { return tok->eos_id; }

const char *tk_chat_template(const ss_tokenizer *tok) { return tok->chat_template; }

char *tk_special_prefix_text(const ss_tokenizer *tok) {
    tk_buf text = {0};
    if (!tk_buf_put(&text, "", 0)) return NULL;
    for (int i = 0; i < tok->n_prefix; i++) {
        const char *p = ss_tokenizer_piece(tok, tok->prefix[i]);
        if (p && !tk_buf_put(&text, p, strlen(p))) {
            tk_buf_free(&text);
            return NULL;
        }
    }
    return text.p;
}
