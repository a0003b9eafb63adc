/* test_tokenizer_files.c — small tokenizer.json files written by the test.
 *
 *  - BPE rules whose outcome is worked out by hand: merge ranks decide the order, ties go to the
 *    leftmost pair, merges as "a b" strings equal merges as pairs, byte_fallback, unk_token with and
 *    without fuse_unk, ignore_merges;
 *  - added tokens: lstrip / rstrip / single_word, longest match, normalized ones;
 *  - post-processors (TemplateProcessing, RobertaProcessing, Sequence) and add_bos_token /
 *    add_eos_token of tokenizer_config.json;
 *  - malformed and unsupported files: the right status, one line, naming the file and the field. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "specscope.h"

static char dir[64];

static void write_file(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!text) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Writes tokenizer.json (and tokenizer_config.json, or removes it) and loads the folder. */
static ss_status load_text(const char *json, const char *config, ss_tokenizer **tok, ss_error *err) {
    write_file("tokenizer.json", json);
    write_file("tokenizer_config.json", config);
    return ss_tokenizer_load(dir, tok, err);
}

static ss_tokenizer *load_ok(const char *json, const char *config) {
    ss_tokenizer *tok = NULL;
    ss_error err;
    ss_status st = load_text(json, config, &tok, &err);
    CHECK_MSG(st == SS_OK, "%s", err.msg);
    return tok;
}

static void expect_ids(const ss_tokenizer *tok, const char *text, bool add_special, const int *want, int n) {
    ss_ids got = {0};
    ss_error err;
    ss_status st = tok ? ss_tokenizer_encode(tok, text, strlen(text), add_special, &got, &err) : SS_EARG;
    bool same = st == SS_OK && got.n == n && (n == 0 || memcmp(got.ids, want, (size_t)n * sizeof *want) == 0);
    CHECK_MSG(same, "'%s': got %d ids [%d %d %d ...]", text, got.n, got.n > 0 ? got.ids[0] : -1, got.n > 1 ? got.ids[1] : -1,
              got.n > 2 ? got.ids[2] : -1);
    ss_ids_free(&got);
}

#define IDS(...) (int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int))

/* A character-level BPE without pre-tokenizer: a=0 b=1 c=2 ab=3 bc=4 abc=5 aa=6 Z's bytes, unk. */
#define VOCAB "\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5,\"aa\":6,\"<unk>\":7,\"<0x5A>\":8,\"<0xC3>\":9,\"<0xA9>\":10"

static char *bpe_json(const char *merges, const char *options) {
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{" VOCAB "},\"merges\":[%s]%s%s},"
             "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}}",
             merges, options[0] ? "," : "", options);
    return buf;
}

static void merge_rules(void) {
    /* bc has the lowest rank: b+c first, then a+bc. */
    ss_tokenizer *tok = load_ok(bpe_json("[\"b\",\"c\"],[\"a\",\"b\"],[\"a\",\"bc\"]", ""), NULL);
    expect_ids(tok, "abc", false, IDS(5));
    expect_ids(tok, "cab", false, IDS(2, 3));
    expect_ids(tok, "abcab", false, IDS(5, 3));
    ss_tokenizer_free(tok);
    /* ab first now: a+b, then ab+c has no merge (only a+bc does): "abc" stays ab c. */
    tok = load_ok(bpe_json("\"a b\",\"b c\",\"a bc\"", ""), NULL);
    expect_ids(tok, "abc", false, IDS(3, 2));
    expect_ids(tok, "bcab", false, IDS(4, 3));
    ss_tokenizer_free(tok);
    /* Equal ranks: the leftmost pair goes first. */
    tok = load_ok(bpe_json("[\"a\",\"a\"]", ""), NULL);
    expect_ids(tok, "aaa", false, IDS(6, 0));
    expect_ids(tok, "aaaa", false, IDS(6, 6));
    ss_tokenizer_free(tok);
}

static void unknowns(void) {
    /* byte_fallback: Z (0x5A) and é (C3 A9) become their <0xNN> tokens; Q has no byte token: unk. */
    ss_tokenizer *tok = load_ok(bpe_json("", "\"byte_fallback\":true,\"unk_token\":\"<unk>\""), NULL);
    expect_ids(tok, "aZ\xC3\xA9", false, IDS(0, 8, 9, 10));
    expect_ids(tok, "aQQb", false, IDS(0, 7, 7, 1));
    char *text = NULL;
    ss_error err;
    CHECK(ss_tokenizer_decode(tok, IDS(0, 8, 9, 10), false, &text, &err) == SS_OK && strcmp(text, "aZ\xC3\xA9") == 0);
    free(text);
    CHECK(ss_tokenizer_decode(tok, IDS(9, 0), false, &text, &err) == SS_OK && strcmp(text, "\xEF\xBF\xBD" "a") == 0);
    free(text); /* a lone lead byte is not UTF-8: one U+FFFD per byte of the run */
    ss_tokenizer_free(tok);
    tok = load_ok(bpe_json("", "\"unk_token\":\"<unk>\",\"fuse_unk\":true"), NULL);
    expect_ids(tok, "aQQZb", false, IDS(0, 7, 1));
    ss_tokenizer_free(tok);
    tok = load_ok(bpe_json("", ""), NULL); /* no unk_token: unknown characters vanish */
    expect_ids(tok, "aQb", false, IDS(0, 1));
    ss_tokenizer_free(tok);
}

static void ignore_merges(void) {
    ss_tokenizer *tok = load_ok(bpe_json("", "\"ignore_merges\":true"), NULL);
    expect_ids(tok, "abc", false, IDS(5)); /* the word is in the vocabulary: one token */
    ss_tokenizer_free(tok);
    tok = load_ok(bpe_json("", "\"ignore_merges\":false"), NULL);
    expect_ids(tok, "abc", false, IDS(0, 1, 2));
    ss_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- added tokens */

/* No pre-tokenizer, so spaces reach the model as " " tokens unless an added token strips them. */
static const char *added_json(const char *added, const char *normalizer) {
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"normalizer\":%s,"
             "\"model\":{\"type\":\"BPE\",\"vocab\":{\"x\":0,\"y\":1,\"w\":2,\"<t>\":3,\"<tt>\":4,\"-\":5,\" \":6},\"merges\":[]},"
             "\"added_tokens\":[%s]}",
             normalizer, added);
    return buf;
}

#define ADDED(id, content, flags) \
    "{\"id\":" #id ",\"content\":\"" content "\",\"special\":true,\"normalized\":false" flags "}"
#define REPLACE_DASH "{\"type\":\"Replace\",\"pattern\":{\"String\":\"-\"},\"content\":\"ww\"}"

static void added_tokens(void) {
    ss_tokenizer *tok = load_ok(added_json(ADDED(3, "<t>", ",\"lstrip\":true,\"rstrip\":true") "," ADDED(4, "<tt>", ""), "null"), NULL);
    expect_ids(tok, "x  <t>  y", false, IDS(0, 3, 1)); /* the spaces around <t> are swallowed */
    expect_ids(tok, "x <tt> y", false, IDS(0, 6, 4, 6, 1));
    expect_ids(tok, "<tt>y<t>", false, IDS(4, 1, 3)); /* longest match */
    ss_tokenizer_free(tok);
    tok = load_ok(added_json(ADDED(7, "ww", ",\"single_word\":true"), "null"), NULL);
    expect_ids(tok, "x ww-y", false, IDS(0, 6, 7, 5, 1)); /* "-" and " " are not word characters */
    expect_ids(tok, "xww", false, IDS(0, 2, 2));          /* glued to x: not the added token */
    expect_ids(tok, "ww\xC3\xA9", false, IDS(2, 2));       /* glued to a letter: é is not in the vocabulary */
    ss_tokenizer_free(tok);
    /* normalized: matched in the normalized text, where "-" has become "ww"; else in the raw text. */
    tok = load_ok(added_json("{\"id\":7,\"content\":\"ww\",\"special\":false,\"normalized\":true}", REPLACE_DASH), NULL);
    expect_ids(tok, "x-y", false, IDS(0, 7, 1));
    CHECK(tok && !ss_tokenizer_is_special(tok, 7));
    ss_tokenizer_free(tok);
    tok = load_ok(added_json(ADDED(7, "ww", ""), REPLACE_DASH), NULL);
    expect_ids(tok, "x-y", false, IDS(0, 2, 2, 1));
    expect_ids(tok, "xwwy", false, IDS(0, 7, 1));
    CHECK(tok && ss_tokenizer_is_special(tok, 7));
    ss_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- post-processors */

static const char *post_json(const char *post) {
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"x\":0,\"<s>\":1,\"</s>\":2,\"<cls>\":3},\"merges\":[]},"
             "\"added_tokens\":[" ADDED(1, "<s>", "") "," ADDED(2, "</s>", "") "," ADDED(3, "<cls>", "") "],"
             "\"post_processor\":%s}",
             post);
    return buf;
}

#define TEMPLATE                                                                                                        \
    "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"                   \
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],\"pair\":[],"       \
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]},\"</s>\":{\"id\":\"</s>\",\"ids\":[2]," \
    "\"tokens\":[\"</s>\"]}}}"

static void post_processors(void) {
    ss_tokenizer *tok = load_ok(post_json(TEMPLATE), NULL);
    expect_ids(tok, "x", true, IDS(1, 0, 2));
    expect_ids(tok, "x", false, IDS(0));
    CHECK(tok && ss_tokenizer_bos(tok) == 1); /* without a config, BOS is what the template puts first */
    ss_tokenizer_free(tok);
    tok = load_ok(post_json("{\"type\":\"RobertaProcessing\",\"cls\":[\"<cls>\",3],\"sep\":[\"</s>\",2]}"), NULL);
    expect_ids(tok, "x", true, IDS(3, 0, 2));
    ss_tokenizer_free(tok);
    tok = load_ok(post_json("{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"}," TEMPLATE
                            ",{\"type\":\"RobertaProcessing\",\"cls\":[\"<cls>\",3],\"sep\":[\"</s>\",2]}]}"),
                  NULL);
    expect_ids(tok, "x", true, IDS(3, 1, 0, 2, 2)); /* each processor wraps what the ones before made */
    ss_tokenizer_free(tok);
    /* tokenizer_config.json's add_bos_token / add_eos_token rebuild the template as transformers does. */
    tok = load_ok(post_json(TEMPLATE), "{\"bos_token\":\"<s>\",\"eos_token\":{\"content\":\"</s>\"},\"add_eos_token\":false,"
                                       "\"model_max_length\":1000000000000000019884624838656}");
    expect_ids(tok, "x", true, IDS(1, 0));
    CHECK(tok && ss_tokenizer_eos(tok) == 2);
    ss_tokenizer_free(tok);
    tok = load_ok(post_json("null"), "{\"bos_token\":\"<s>\",\"add_bos_token\":true}");
    expect_ids(tok, "x", true, IDS(1, 0));
    ss_tokenizer_free(tok);
}

/* ---------------------------------------------------------------- malformed and unsupported files */

typedef struct {
    const char *json, *config;
    ss_status status;
    const char *expect; /* must appear in the message */
} bad_case;

#define MODEL(extra) "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[[\"a\",\"b\"]]}" extra "}"

static const bad_case BAD[] = {
    {"{\"model\": ", NULL, SS_EFORMAT, "tokenizer.json: line 1"},
    {"[1, 2]", NULL, SS_EFORMAT, "tokenizer.json: expected a JSON object"},
    {"{}", NULL, SS_EFORMAT, "tokenizer.json: model: missing"},
    {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", NULL, SS_EUNSUPPORTED,
     "tokenizer.json: unsupported tokenizer model 'WordPiece' (model.type)"},
    {"{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", NULL, SS_EUNSUPPORTED, "unsupported tokenizer model 'Unigram' (model.type)"},
    {"{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}}}", NULL, SS_EUNSUPPORTED, "unsupported tokenizer model 'WordLevel' (model.type)"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":[],\"merges\":[]}}", NULL, SS_EFORMAT, "model.vocab: expected an object"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"zero\"},\"merges\":[]}}", NULL, SS_EFORMAT, "model.vocab[\"a\"]: expected a token id"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", NULL, SS_EFORMAT, "model.vocab[\"a\"]"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[[\"a\",\"b\"],17]}}", NULL, SS_EFORMAT,
     "tokenizer.json: model.merges[1]: expected a string or a pair of strings"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[[\"a\"]]}}", NULL, SS_EFORMAT,
     "model.merges[0]: expected a string or a pair of strings"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b c\"]}}", NULL, SS_EFORMAT,
     "model.merges[0]: expected \"left right\" with exactly one space"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[[\"a\",\"zz\"]]}}", NULL, SS_EFORMAT,
     "model.merges[0]: 'zz' is not in model.vocab"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[[\"a\",\"b\"]]}}", NULL, SS_EFORMAT,
     "model.merges[0]: the merged token 'ab' is not in model.vocab"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":{}}}", NULL, SS_EFORMAT, "model.merges: expected an array"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"unk_token\":\"<unk>\"}}", NULL, SS_EFORMAT,
     "model.unk_token: '<unk>' is not in model.vocab"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"byte_fallback\":\"yes\"}}", NULL, SS_EFORMAT,
     "model.byte_fallback: expected true or false"},
    {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"dropout\":0.1}}", NULL, SS_EUNSUPPORTED, "model.dropout"},
    {MODEL(",\"normalizer\":{\"type\":\"NFKC\"}"), NULL, SS_EUNSUPPORTED, "unsupported normalizer 'NFKC' (normalizer.type)"},
    {MODEL(",\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(\"},\"content\":\"\"}]}"),
     NULL, SS_EFORMAT, "normalizer.normalizers[1].pattern.Regex: the pattern does not compile"},
    {MODEL(",\"normalizer\":{\"type\":\"Prepend\"}"), NULL, SS_EFORMAT, "normalizer.prepend: missing"},
    {MODEL(",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[a-\"},\"behavior\":\"Isolated\"}"), NULL, SS_EFORMAT,
     "pre_tokenizer.pattern.Regex: the pattern does not compile"},
    {MODEL(",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"a\"},\"behavior\":\"Sideways\"}"), NULL, SS_EFORMAT,
     "pre_tokenizer.behavior: 'Sideways' is not one of"},
    {MODEL(",\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":\"a\"}"), NULL, SS_EFORMAT, "pre_tokenizer.pattern: expected {\"String\""},
    {MODEL(",\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},{\"kind\":\"Split\"}]}"), NULL,
     SS_EFORMAT, "pre_tokenizer.pretokenizers[1].type: missing"},
    {MODEL(",\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}"), NULL, SS_EFORMAT,
     "pre_tokenizer.replacement: expected a string of one character"},
    {MODEL(",\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"}"), NULL, SS_EUNSUPPORTED,
     "unsupported pre-tokenizer 'BertPreTokenizer' (pre_tokenizer.type)"},
    {MODEL(",\"decoder\":{\"type\":\"CTC\"}"), NULL, SS_EUNSUPPORTED, "unsupported decoder 'CTC' (decoder.type)"},
    {MODEL(",\"decoder\":{\"type\":\"Strip\",\"content\":\" \",\"start\":-1}"), NULL, SS_EFORMAT, "decoder.start: expected an integer"},
    {MODEL(",\"added_tokens\":[{\"id\":3,\"content\":\"<x>\"},{\"id\":4}]"), NULL, SS_EFORMAT, "added_tokens[1].content: missing"},
    {MODEL(",\"added_tokens\":[{\"id\":\"3\",\"content\":\"<x>\"}]"), NULL, SS_EFORMAT, "added_tokens[0].id: expected an integer"},
    {MODEL(",\"added_tokens\":[{\"id\":3,\"content\":\"\"}]"), NULL, SS_EFORMAT, "added_tokens[0].content: an added token cannot be empty"},
    {MODEL(",\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}}],\"special_tokens\":{}}"),
     NULL, SS_EFORMAT, "post_processor.special_tokens: '<s>' is missing"},
    {MODEL(",\"post_processor\":{\"type\":\"BertProcessing\",\"cls\":[\"x\"],\"sep\":[\"y\",1]}"), NULL, SS_EFORMAT,
     "post_processor.cls: expected [token, id]"},
    {MODEL(",\"post_processor\":{\"type\":\"Mystery\"}"), NULL, SS_EUNSUPPORTED, "unsupported post-processor 'Mystery' (post_processor.type)"},
    {MODEL(""), "{\"bos_token\": ", SS_EFORMAT, "tokenizer_config.json: line 1"},
    {MODEL(""), "[]", SS_EFORMAT, "tokenizer_config.json: expected a JSON object"},
};

static void malformed(void) {
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        ss_tokenizer *tok = NULL;
        ss_error err = {0};
        ss_status st = load_text(BAD[i].json, BAD[i].config, &tok, &err);
        CHECK_MSG(st == BAD[i].status && tok == NULL, "case %zu: status %d (%s), expected %d", i, (int)st, err.msg,
                  (int)BAD[i].status);
        CHECK_MSG(strstr(err.msg, BAD[i].expect) != NULL, "case %zu: '%s' does not say '%s'", i, err.msg, BAD[i].expect);
        CHECK_MSG(strstr(err.msg, dir) != NULL && !strchr(err.msg, '\n'), "case %zu: '%s' is not one line naming the file", i, err.msg);
        ss_tokenizer_free(tok);
    }
    /* A folder without tokenizer.json. */
    ss_tokenizer *tok = NULL;
    ss_error err;
    ss_status st = ss_tokenizer_load("/nonexistent/folder", &tok, &err);
    CHECK_MSG(st == SS_EIO && tok == NULL && strstr(err.msg, "/nonexistent/folder/tokenizer.json"), "%s", err.msg);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ss_tokfiles_XXXXXX");
    if (!mkdtemp(dir)) {
        printf("cannot make a temporary folder\n");
        return 1;
    }
    merge_rules();
    unknowns();
    ignore_merges();
    added_tokens();
    post_processors();
    malformed();
    write_file("tokenizer.json", NULL);
    write_file("tokenizer_config.json", NULL);
    rmdir(dir);
    return check_done();
}
