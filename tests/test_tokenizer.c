/* test_tokenizer.c — the tokenizer on real vocabularies (../shared/tokenizers) against Hugging Face.
 *
 *  - conformance: the 47 llama.cpp vector texts give exactly the ids of vectors/{llama3,qwen3,llama2}.hf.out
 *    (Hugging Face tokenizers 0.23, add_special_tokens=False); decode(encode(x)) == x; a token-by-token
 *    streaming decode equals the whole decode (with and without special tokens);
 *  - tests/fixtures/tokenizer/hf_vectors.jsonl (made by scripts/gen_tokenizer_vectors.mjs with the
 *    same library): more scripts, code, emoji, whitespace runs and random mixtures, for the three
 *    tokenizers and two Metaspace layouts derived here from Llama 2's file, ids and decoded text;
 *  - special tokens, BOS/EOS, lookups, streaming details and bad input.
 * Without the shared folder the test says why and exits 77 (skipped). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "specscope.h"

#define SKIPPED 77

static const char *shared(void) { return SHARED_DIR "/tokenizers"; }

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) break;
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static ss_tokenizer *load(const char *dir) {
    ss_tokenizer *tok = NULL;
    ss_error err;
    ss_status st = ss_tokenizer_load(dir, &tok, &err);
    CHECK_MSG(st == SS_OK, "%s: %s", dir, err.msg);
    return tok;
}

/* Streams ids one at a time through a streaming decoder; the concatenated pieces, malloc'd. */
static char *stream_decode(const ss_tokenizer *tok, const int *ids, int n, bool skip_special) {
    ss_stream_decoder *d = ss_stream_decoder_new(tok, skip_special);
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    out[0] = 0;
    for (int i = 0; i <= n; i++) {
        const char *piece = i < n ? ss_stream_decoder_push(d, ids[i]) : ss_stream_decoder_flush(d);
        size_t k = strlen(piece);
        if (len + k + 1 > cap) {
            cap = 2 * (len + k + 1);
            out = realloc(out, cap);
        }
        memcpy(out + len, piece, k + 1);
        len += k;
    }
    ss_stream_decoder_free(d);
    return out;
}

static char *decode(const ss_tokenizer *tok, const int *ids, int n, bool skip_special) {
    char *text = NULL;
    ss_error err;
    ss_status st = ss_tokenizer_decode(tok, ids, n, skip_special, &text, &err);
    CHECK_MSG(st == SS_OK, "decode: %s", err.msg);
    return text;
}

/* Whole and streaming decodes agree, skipping special tokens or not; returns the whole decode. */
static char *decode_both_ways(const ss_tokenizer *tok, const ss_ids *ids, const char *what) {
    for (int skip = 1; skip >= 0; skip--) {
        char *whole = decode(tok, ids->ids, ids->n, skip);
        char *streamed = stream_decode(tok, ids->ids, ids->n, skip);
        CHECK_MSG(whole && strcmp(whole, streamed) == 0, "%s: streaming decode (skip_special %d) '%s' != '%s'", what,
                  skip, streamed, whole ? whole : "(null)");
        free(streamed);
        if (!skip) return whole;
        free(whole);
    }
    return NULL;
}

static bool same_ids(const ss_ids *got, const int *want, int n) {
    return got->n == n && (n == 0 || memcmp(got->ids, want, (size_t)n * sizeof *want) == 0);
}

/* ---------------------------------------------------------------- llama.cpp's vector texts */

static int split_texts(char *buf, char **texts, int max) {
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    int n = 0;
    char *p = buf;
    for (char *q; n < max && (q = strstr(p, SEP)); p = q + sizeof SEP - 1) {
        *q = 0;
        texts[n++] = p;
    }
    if (n < max) texts[n++] = p;
    return n;
}

static void conformance(const char *name, const char *inp) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", shared(), name);
    ss_tokenizer *tok = load(path);
    snprintf(path, sizeof path, "%s/vectors/%s", shared(), inp);
    char *texts_buf = read_file(path, NULL);
    snprintf(path, sizeof path, "%s/vectors/%s.hf.out", shared(), name);
    char *ids_buf = read_file(path, NULL);
    CHECK_MSG(tok && texts_buf && ids_buf, "%s: cannot read the vectors", name);
    if (!tok || !texts_buf || !ids_buf) goto done;
    char *texts[64];
    int n = split_texts(texts_buf, texts, 64);
    CHECK_MSG(n == 47, "%s: %d texts, expected 47", inp, n);
    char *line = ids_buf;
    for (int i = 0; i < n && line; i++) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        int want[1024], n_want = 0;
        for (char *p = line, *end; n_want < 1024; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[n_want++] = (int)v;
        }
        ss_ids got = {0};
        ss_error err;
        ss_status st = ss_tokenizer_encode(tok, texts[i], strlen(texts[i]), false, &got, &err);
        CHECK_MSG(st == SS_OK && same_ids(&got, want, n_want), "%s text %d: ids differ from Hugging Face's (%d vs %d ids)", name,
                  i, got.n, n_want);
        char what[64];
        snprintf(what, sizeof what, "%s text %d", name, i);
        char *text = decode_both_ways(tok, &got, what);
        CHECK_MSG(text && strcmp(text, texts[i]) == 0, "%s: decode(encode(x)) = '%s' != x = '%s'", what, text, texts[i]);
        free(text);
        ss_ids_free(&got);
        line = next;
    }
done:
    free(texts_buf);
    free(ids_buf);
    ss_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- Hugging Face vectors of the fixture */

/* The two Metaspace layouts of scripts/gen_tokenizer_vectors.mjs, derived from Llama 2's file. */
static json_t *metaspace(const char *scheme, bool split) {
    return json_pack("{s:s, s:s, s:s, s:b}", "type", "Metaspace", "replacement", "\xE2\x96\x81", "prepend_scheme", scheme,
                     "split", split);
}

static char *derive_variant(const char *name, char *tmpdir) {
    char path[512];
    snprintf(path, sizeof path, "%s/llama2/tokenizer.json", shared());
    json_t *j = json_load_file(path, 0, NULL);
    if (!j) return NULL;
    json_object_set_new(j, "normalizer", json_null());
    if (strcmp(name, "llama2-metaspace-first") == 0) {
        json_object_set_new(j, "pre_tokenizer", metaspace("first", false));
    } else {
        json_object_set_new(j, "pre_tokenizer", metaspace("always", true));
        json_object_set_new(j, "decoder", metaspace("always", true));
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    int rc = json_dump_file(j, path, 0);
    json_decref(j);
    return rc == 0 ? tmpdir : NULL;
}

static ss_tokenizer *load_named(const char *name, char *tmpdir) {
    char path[512];
    if (strchr(name, '-')) return derive_variant(name, tmpdir) ? load(tmpdir) : NULL;
    snprintf(path, sizeof path, "%s/%s", shared(), name);
    return load(path);
}

static void hf_vectors(void) {
    char *buf = read_file(FIXTURES_DIR "/tokenizer/hf_vectors.jsonl", NULL);
    CHECK_MSG(buf, "cannot read %s", FIXTURES_DIR "/tokenizer/hf_vectors.jsonl");
    if (!buf) return;
    char tmpdir[] = "/tmp/ss_tokvec_XXXXXX";
    CHECK(mkdtemp(tmpdir) != NULL);
    char current[64] = "";
    ss_tokenizer *tok = NULL;
    int lines = 0, failures = check_failed;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *v = json_loads(line, JSON_ALLOW_NUL, NULL);
        const char *name = json_string_value(json_object_get(v, "tokenizer"));
        json_t *text = json_object_get(v, "text"), *ids = json_object_get(v, "ids");
        const char *decoded = json_string_value(json_object_get(v, "decoded"));
        CHECK_MSG(name && json_is_string(text) && json_is_array(ids) && decoded, "bad fixture line %d", lines);
        if (!name || !json_is_string(text) || !json_is_array(ids) || !decoded) {
            json_decref(v);
            continue;
        }
        if (strcmp(name, current) != 0) {
            ss_tokenizer_free(tok);
            tok = load_named(name, tmpdir);
            snprintf(current, sizeof current, "%s", name);
        }
        lines++;
        int want[4096], n_want = 0;
        for (size_t i = 0; i < json_array_size(ids) && n_want < 4096; i++) want[n_want++] = (int)json_integer_value(json_array_get(ids, i));
        ss_ids got = {0};
        ss_error err;
        if (tok && ss_tokenizer_encode(tok, json_string_value(text), json_string_length(text), false, &got, &err) == SS_OK) {
            CHECK_MSG(same_ids(&got, want, n_want), "%s: '%s': ids differ from Hugging Face's", name, json_string_value(text));
            char what[64];
            snprintf(what, sizeof what, "%s fixture line %d", name, lines);
            /* Embedded NULs cannot come back through a C string: those lines check ids only. */
            if (!memchr(json_string_value(text), 0, json_string_length(text))) {
                char *text_back = decode_both_ways(tok, &got, what);
                CHECK_MSG(text_back && strcmp(text_back, decoded) == 0, "%s: decoded '%s' != '%s'", what, text_back, decoded);
                free(text_back);
            }
        } else {
            CHECK_MSG(false, "%s: encode failed: %s", name, tok ? err.msg : "no tokenizer");
        }
        ss_ids_free(&got);
        json_decref(v);
    }
    CHECK_MSG(lines == 560, "the fixture has %d lines, expected 560", lines);
    printf("hf_vectors: %d texts, %d failures\n", lines, check_failed - failures);
    ss_tokenizer_free(tok);
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    free(buf);
}

/* ---------------------------------------------------------------- special tokens and lookups */

static void encode_expect(const ss_tokenizer *tok, const char *text, bool add_special, const int *want, int n_want) {
    ss_ids got = {0};
    ss_error err;
    ss_status st = ss_tokenizer_encode(tok, text, strlen(text), add_special, &got, &err);
    CHECK_MSG(st == SS_OK && same_ids(&got, want, n_want), "'%s' (add_special %d): unexpected ids (%d of them)", text,
              add_special, got.n);
    ss_ids_free(&got);
}

static void decode_expect(const ss_tokenizer *tok, const int *ids, int n, bool skip, const char *want) {
    char *text = decode(tok, ids, n, skip);
    CHECK_MSG(text && strcmp(text, want) == 0, "decode: '%s' != '%s'", text ? text : "(null)", want);
    free(text);
}

static void llama3_specials(const ss_tokenizer *tok) {
    CHECK(ss_tokenizer_vocab_size(tok) == 128256);
    CHECK(ss_tokenizer_bos(tok) == 128000);
    CHECK(ss_tokenizer_eos(tok) == 128001);
    CHECK(ss_tokenizer_token_id(tok, "<|eot_id|>") == 128009);
    CHECK(ss_tokenizer_token_id(tok, "Hello") == 9906);
    CHECK(ss_tokenizer_token_id(tok, "no such piece") == -1);
    CHECK(strcmp(ss_tokenizer_piece(tok, 22691), "\xC4\xA0Hello") == 0); /* "ĠHello" */
    CHECK(ss_tokenizer_piece(tok, -1) == NULL && ss_tokenizer_piece(tok, 128256) == NULL);
    CHECK(ss_tokenizer_is_special(tok, 128009) && !ss_tokenizer_is_special(tok, 9906));
    /* This copy's post_processor is ByteLevel alone and its config sets no add_bos_token: nothing added. */
    encode_expect(tok, "Hello", true, (int[]){9906}, 1);
    encode_expect(tok, "<|begin_of_text|>Hello<|eot_id|>", false, (int[]){128000, 9906, 128009}, 3);
    decode_expect(tok, (int[]){128000, 9906, 128009}, 3, false, "<|begin_of_text|>Hello<|eot_id|>");
    decode_expect(tok, (int[]){128000, 9906, 128009}, 3, true, "Hello");
}

static void qwen3_specials(const ss_tokenizer *tok) {
    CHECK(ss_tokenizer_vocab_size(tok) == 151669);
    CHECK(ss_tokenizer_bos(tok) == -1);
    CHECK(ss_tokenizer_eos(tok) == 151645); /* <|im_end|> per tokenizer_config.json */
    encode_expect(tok, "Hello", true, (int[]){9707}, 1);
    /* NFC: "e" + combining acute is encoded as the composed "é". */
    ss_ids a = {0}, b = {0};
    ss_error err;
    CHECK(ss_tokenizer_encode(tok, "caf\x65\xCC\x81", 6, false, &a, &err) == SS_OK);
    CHECK(ss_tokenizer_encode(tok, "caf\xC3\xA9", 5, false, &b, &err) == SS_OK);
    CHECK(a.n == b.n && a.n > 0 && memcmp(a.ids, b.ids, (size_t)a.n * sizeof *a.ids) == 0);
    ss_ids_free(&a);
    ss_ids_free(&b);
}

static void llama2_specials(const ss_tokenizer *tok) {
    CHECK(ss_tokenizer_vocab_size(tok) == 32000);
    CHECK(ss_tokenizer_bos(tok) == 1 && ss_tokenizer_eos(tok) == 2);
    encode_expect(tok, "Hello world", true, (int[]){1, 15043, 3186}, 3);
    encode_expect(tok, "Hello world", false, (int[]){15043, 3186}, 2);
    /* After an added token Prepend adds "▁" again (Hugging Face's layout does the same). */
    encode_expect(tok, "<s>Hello", false, (int[]){1, 15043}, 2);
    encode_expect(tok, "", true, (int[]){1}, 1);
}

/* A long text made of copies of one line encodes to the copies of the line's ids: the pre-tokens
 * split the same way at each copy. One copy has too few words for the word cache, the long text
 * has plenty, so this holds the cached path to the uncached one. */
static void repeated_text(const ss_tokenizer *tok, const char *name) {
    static const char LINE[] = "Hello, world! \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 "
                               "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\xA6\x99 x += 1;  y\n";
    enum { COPIES = 300 };
    size_t line_len = strlen(LINE);
    char *text = malloc(line_len * COPIES + 1);
    for (int i = 0; i < COPIES; i++) memcpy(text + i * line_len, LINE, line_len);
    ss_ids one = {0}, all = {0};
    ss_error err;
    CHECK(ss_tokenizer_encode(tok, LINE, line_len, false, &one, &err) == SS_OK);
    CHECK(ss_tokenizer_encode(tok, text, line_len * COPIES, false, &all, &err) == SS_OK);
    bool same = one.n > 0 && all.n == one.n * COPIES;
    for (int i = 0; same && i < all.n; i++) same = all.ids[i] == one.ids[i % one.n];
    CHECK_MSG(same, "%s: %d copies of a line give %d ids, not %d copies of its %d", name, COPIES, all.n, COPIES, one.n);
    free(text);
    ss_ids_free(&one);
    ss_ids_free(&all);
}

/* ---------------------------------------------------------------- streaming */

static void stream_expect(ss_stream_decoder *d, int id, const char *want) {
    const char *got = ss_stream_decoder_push(d, id);
    CHECK_MSG(strcmp(got, want) == 0, "push %d gave '%s', expected '%s'", id, got, want);
}

static void streaming(const ss_tokenizer *llama3, const ss_tokenizer *llama2) {
    /* 🦙 is F0 9F A6 99: Llama 3 spells it 9468 ("\xF0\x9F"), 99, 247; nothing shows until it is whole. */
    ss_stream_decoder *d = ss_stream_decoder_new(llama3, false);
    stream_expect(d, 9906, "Hello");
    stream_expect(d, 11410, " "); /* " " + the first two bytes of 🦙: only the space is whole */
    stream_expect(d, 99, "");
    stream_expect(d, 247, "\xF0\x9F\xA6\x99");
    ss_stream_decoder_free(d);

    d = ss_stream_decoder_new(llama3, false);
    stream_expect(d, 9468, "");
    stream_expect(d, 99, "");
    stream_expect(d, 247, "\xF0\x9F\xA6\x99");
    stream_expect(d, 9468, "");
    const char *rest = ss_stream_decoder_flush(d); /* an unfinished character comes out repaired */
    CHECK_MSG(strcmp(rest, "\xEF\xBF\xBD") == 0, "flush gave '%s'", rest);
    ss_stream_decoder_free(d);

    /* Llama 2: "▁" then the byte-fallback tokens <0xF0> <0x9F> <0xA6> <0x99>; Strip eats the first space. */
    d = ss_stream_decoder_new(llama2, true);
    stream_expect(d, 1, ""); /* <s>, skipped */
    stream_expect(d, 15043, "Hello");
    stream_expect(d, 29871, " ");
    stream_expect(d, 243, "");
    stream_expect(d, 162, "");
    stream_expect(d, 169, "");
    stream_expect(d, 156, "\xF0\x9F\xA6\x99");
    stream_expect(d, 3186, " world");
    CHECK(strcmp(ss_stream_decoder_flush(d), "") == 0);
    stream_expect(d, 15043, "Hello"); /* after a flush a new stream begins: its first space goes again */
    ss_stream_decoder_free(d);
}

/* ---------------------------------------------------------------- bad input */

static void bad_input(const ss_tokenizer *tok) {
    ss_ids ids = {0};
    ss_error err;
    CHECK(ss_ids_push(&ids, 42, &err) == SS_OK);
    ss_status st = ss_tokenizer_encode(tok, "ok \xFF bad", 8, false, &ids, &err);
    CHECK_MSG(st == SS_EARG && strstr(err.msg, "UTF-8") && !strchr(err.msg, '\n'), "%s", err.msg);
    CHECK(ids.n == 1 && ids.ids[0] == 42); /* nothing appended */
    st = ss_tokenizer_encode(tok, "a\xE4\xBD", 3, false, &ids, &err); /* a truncated character */
    CHECK(st == SS_EARG);
    char *text = NULL;
    st = ss_tokenizer_decode(tok, (int[]){1, 999999}, 2, false, &text, &err);
    CHECK_MSG(st == SS_EARG && text == NULL && strstr(err.msg, "999999"), "%s", err.msg);
    ss_stream_decoder *d = ss_stream_decoder_new(tok, false);
    CHECK(strcmp(ss_stream_decoder_push(d, -5), "") == 0);
    ss_stream_decoder_free(d);
    ss_ids_free(&ids);
}

int main(void) {
    char probe[512];
    snprintf(probe, sizeof probe, "%s/llama3/tokenizer.json", shared());
    if (access(probe, R_OK) != 0) {
        printf("SKIPPED: %s is missing (the shared tokenizers)\n", probe);
        return SKIPPED;
    }
    conformance("llama3", "ggml-vocab-llama-bpe.gguf.inp");
    conformance("qwen3", "ggml-vocab-qwen2.gguf.inp");
    conformance("llama2", "ggml-vocab-llama-spm.gguf.inp");
    hf_vectors();

    char dir[512];
    snprintf(dir, sizeof dir, "%s/llama3", shared());
    ss_tokenizer *llama3 = load(dir);
    snprintf(dir, sizeof dir, "%s/qwen3", shared());
    ss_tokenizer *qwen3 = load(dir);
    snprintf(dir, sizeof dir, "%s/llama2", shared());
    ss_tokenizer *llama2 = load(dir);
    if (llama3 && qwen3 && llama2) {
        llama3_specials(llama3);
        qwen3_specials(qwen3);
        repeated_text(llama3, "llama3");
        repeated_text(qwen3, "qwen3");
        llama2_specials(llama2);
        streaming(llama3, llama2);
        bad_input(llama3);
    }
    ss_tokenizer_free(llama3);
    ss_tokenizer_free(qwen3);
    ss_tokenizer_free(llama2);
    return check_done();
}
