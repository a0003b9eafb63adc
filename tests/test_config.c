/* test_config.c — config.json parsing: the published configs of Llama-3.2-1B, Mistral-7B-v0.1,
 * Qwen2.5-0.5B and Qwen3-0.6B give their known geometry, both rope layouts (Transformers 4 and 5)
 * are read, and every broken field fails with its status and a one-line message naming it. Broken
 * variants are made by editing a valid config with jansson (set or delete one field). */
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

/* meta-llama/Llama-3.2-1B */
static const char *llama32_1b =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 128000, \"eos_token_id\": 128001, \"head_dim\": 64, \"hidden_act\": \"silu\","
    " \"hidden_size\": 2048, \"initializer_range\": 0.02, \"intermediate_size\": 8192,"
    " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"model_type\": \"llama\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 16, \"num_key_value_heads\": 8, \"pretraining_tp\": 1,"
    " \"rms_norm_eps\": 1e-05, \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0,"
    " \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},"
    " \"rope_theta\": 500000.0, \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.45.0.dev0\", \"use_cache\": true, \"vocab_size\": 128256}";

/* The same model as Transformers 5 writes it: rope_parameters, dtype, and the Instruct eos list. */
static const char *llama32_1b_v5 =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"bos_token_id\": 128000,"
    " \"dtype\": \"bfloat16\", \"eos_token_id\": [128001, 128008, 128009], \"head_dim\": 64,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 2048, \"intermediate_size\": 8192,"
    " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"model_type\": \"llama\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 16, \"num_key_value_heads\": 8,"
    " \"rms_norm_eps\": 1e-05, \"rope_parameters\": {\"factor\": 32.0, \"high_freq_factor\": 4.0,"
    " \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_theta\": 500000.0,"
    " \"rope_type\": \"llama3\"}, \"tie_word_embeddings\": true, \"transformers_version\": \"5.0.0\","
    " \"vocab_size\": 128256}";

/* mistralai/Mistral-7B-v0.1 */
static const char *mistral_7b =
    "{\"architectures\": [\"MistralForCausalLM\"], \"bos_token_id\": 1, \"eos_token_id\": 2,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02, \"intermediate_size\": 14336,"
    " \"max_position_embeddings\": 32768, \"model_type\": \"mistral\", \"num_attention_heads\": 32,"
    " \"num_hidden_layers\": 32, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0,"
    " \"sliding_window\": 4096, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.34.0.dev0\", \"use_cache\": true, \"vocab_size\": 32000}";

/* Qwen/Qwen2.5-0.5B */
static const char *qwen25_05b =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": 151643,"
    " \"eos_token_id\": 151643, \"hidden_act\": \"silu\", \"hidden_size\": 896, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 4864, \"max_position_embeddings\": 32768, \"max_window_layers\": 24,"
    " \"model_type\": \"qwen2\", \"num_attention_heads\": 14, \"num_hidden_layers\": 24,"
    " \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"sliding_window\": 32768,"
    " \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.40.1\","
    " \"use_cache\": true, \"use_mrope\": false, \"use_sliding_window\": false, \"vocab_size\": 151936}";

/* Qwen/Qwen3-0.6B: head_dim 128 although hidden_size / heads = 64. */
static const char *qwen3_06b =
    "{\"architectures\": [\"Qwen3ForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 151643, \"eos_token_id\": 151645, \"head_dim\": 128, \"hidden_act\": \"silu\","
    " \"hidden_size\": 1024, \"initializer_range\": 0.02, \"intermediate_size\": 3072,"
    " \"max_position_embeddings\": 40960, \"max_window_layers\": 28, \"model_type\": \"qwen3\","
    " \"num_attention_heads\": 16, \"num_hidden_layers\": 28, \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-06,"
    " \"rope_scaling\": null, \"rope_theta\": 1000000, \"sliding_window\": null, \"tie_word_embeddings\": true,"
    " \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.51.0\", \"use_cache\": true,"
    " \"use_sliding_window\": false, \"vocab_size\": 151936}";

/* ---------------------------------------------------------------- edits of a valid config */

/* base with one field set to value (JSON text) or, when value is NULL, deleted. key may be "a.b". */
static char *edit(const char *base, const char *key, const char *value) {
    json_t *root = json_loads(base, 0, NULL), *obj = root;
    char parent[64];
    const char *dot = strchr(key, '.');
    if (dot) {
        snprintf(parent, sizeof parent, "%.*s", (int)(dot - key), key);
        obj = json_object_get(root, parent);
        key = dot + 1;
    }
    if (value)
        json_object_set_new(obj, key, json_loads(value, JSON_DECODE_ANY, NULL));
    else
        json_object_del(obj, key);
    char *text = json_dumps(root, 0);
    json_decref(root);
    return text;
}

static ss_status parse(const char *json, ss_config *cfg, ss_error *err) {
    return ss_config_parse(json, strlen(json), "models/x/config.json", cfg, err);
}

static void test_llama(void) {
    ss_config c;
    ss_error err = {0};
    CHECK_MSG(parse(llama32_1b, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.arch == SS_ARCH_LLAMA && strcmp(c.arch_name, "llama") == 0);
    CHECK(c.vocab_size == 128256 && c.hidden == 2048 && c.intermediate == 8192 && c.n_layers == 16);
    CHECK(c.n_heads == 32 && c.n_kv_heads == 8 && c.head_dim == 64 && c.max_position == 131072);
    CHECK(c.rms_eps == 1e-5f && c.rope_theta == 500000.0f);
    CHECK(c.rope_type == SS_ROPE_LLAMA3 && c.rope_factor == 32.0f && c.rope_low_freq_factor == 1.0f &&
          c.rope_high_freq_factor == 4.0f && c.rope_original_max_position == 8192);
    CHECK(c.tie_embeddings && !c.qkv_bias && !c.qk_norm);
    CHECK(c.bos_id == 128000 && c.n_eos == 1 && c.eos_ids[0] == 128001 && c.dtype == SS_BF16);

    ss_config v5;
    CHECK_MSG(parse(llama32_1b_v5, &v5, &err) == SS_OK, "%s", err.msg);
    CHECK(v5.rope_type == SS_ROPE_LLAMA3 && v5.rope_theta == 500000.0f && v5.rope_factor == 32.0f &&
          v5.rope_low_freq_factor == 1.0f && v5.rope_high_freq_factor == 4.0f &&
          v5.rope_original_max_position == 8192);
    CHECK(v5.n_eos == 3 && v5.eos_ids[0] == 128001 && v5.eos_ids[1] == 128008 && v5.eos_ids[2] == 128009);
    CHECK(v5.dtype == SS_BF16 && v5.hidden == 2048 && v5.head_dim == 64);
}

static void test_mistral(void) {
    ss_config c;
    ss_error err = {0};
    CHECK_MSG(parse(mistral_7b, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.arch == SS_ARCH_MISTRAL && strcmp(c.arch_name, "mistral") == 0);
    CHECK(c.vocab_size == 32000 && c.hidden == 4096 && c.intermediate == 14336 && c.n_layers == 32);
    CHECK(c.n_heads == 32 && c.n_kv_heads == 8 && c.head_dim == 128 && c.max_position == 32768);
    CHECK(c.rms_eps == 1e-5f && c.rope_theta == 10000.0f && c.rope_type == SS_ROPE_DEFAULT);
    CHECK(!c.tie_embeddings && !c.qkv_bias && !c.qk_norm);
    CHECK(c.bos_id == 1 && c.n_eos == 1 && c.eos_ids[0] == 2);
}

static void test_qwen2(void) {
    ss_config c;
    ss_error err = {0};
    CHECK_MSG(parse(qwen25_05b, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.arch == SS_ARCH_QWEN2 && strcmp(c.arch_name, "qwen2") == 0);
    CHECK(c.vocab_size == 151936 && c.hidden == 896 && c.intermediate == 4864 && c.n_layers == 24);
    CHECK(c.n_heads == 14 && c.n_kv_heads == 2 && c.head_dim == 64 && c.max_position == 32768);
    CHECK(c.rms_eps == 1e-6f && c.rope_theta == 1000000.0f && c.rope_type == SS_ROPE_DEFAULT);
    CHECK(c.tie_embeddings && c.qkv_bias && !c.qk_norm);
    CHECK(c.bos_id == 151643 && c.n_eos == 1 && c.eos_ids[0] == 151643);

    /* qwen2's q/k/v biases come with the architecture: an attention_bias field changes nothing */
    char *with_field = edit(qwen25_05b, "attention_bias", "true");
    CHECK_MSG(parse(with_field, &c, &err) == SS_OK && c.qkv_bias, "%s", err.msg);
    free(with_field);
}

static void test_qwen3(void) {
    ss_config c;
    ss_error err = {0};
    CHECK_MSG(parse(qwen3_06b, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.arch == SS_ARCH_QWEN3 && strcmp(c.arch_name, "qwen3") == 0);
    CHECK(c.vocab_size == 151936 && c.hidden == 1024 && c.intermediate == 3072 && c.n_layers == 28);
    CHECK(c.n_heads == 16 && c.n_kv_heads == 8 && c.head_dim == 128 && c.max_position == 40960);
    CHECK(c.rms_eps == 1e-6f && c.rope_theta == 1000000.0f && c.rope_type == SS_ROPE_DEFAULT);
    CHECK(c.tie_embeddings && !c.qkv_bias && c.qk_norm);
    CHECK(c.bos_id == 151643 && c.n_eos == 1 && c.eos_ids[0] == 151645);
}

static void test_defaults(void) {
    ss_config c;
    ss_error err = {0};
    /* no num_key_value_heads, head_dim null, no rope_theta, no tie, bos null, no eos, no dtype */
    char *t1 = edit(mistral_7b, "num_key_value_heads", NULL), *t2 = edit(t1, "head_dim", "null"),
         *t3 = edit(t2, "rope_theta", NULL), *t4 = edit(t3, "tie_word_embeddings", NULL),
         *t5 = edit(t4, "bos_token_id", "null"), *t6 = edit(t5, "eos_token_id", NULL), *t7 = edit(t6, "torch_dtype", NULL);
    CHECK_MSG(parse(t7, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.n_kv_heads == 32 && c.head_dim == 128 && c.rope_theta == 10000.0f && !c.tie_embeddings);
    CHECK(c.bos_id == -1 && c.n_eos == 0 && c.dtype == SS_F32);
    free(t1), free(t2), free(t3), free(t4), free(t5), free(t6), free(t7);

    /* older rope_scaling spelling: "type", linear */
    char *lin = edit(mistral_7b, "rope_scaling", "{\"type\": \"linear\", \"factor\": 4.0}");
    CHECK_MSG(parse(lin, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.rope_type == SS_ROPE_LINEAR && c.rope_factor == 4.0f);
    free(lin);
    /* Transformers 5 default rope: rope_parameters only */
    char *p1 = edit(qwen3_06b, "rope_theta", NULL),
         *p2 = edit(p1, "rope_parameters", "{\"rope_theta\": 1000000.0, \"rope_type\": \"default\"}");
    CHECK_MSG(parse(p2, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.rope_type == SS_ROPE_DEFAULT && c.rope_theta == 1000000.0f && c.rope_factor == 1.0f);
    free(p1), free(p2);
}

typedef struct {
    const char *base;
    const char *key;
    const char *value; /* NULL: delete the field */
    ss_status status;
    const char *culprit;
} bad_edit;

static const bad_edit *bad_edits(size_t *n) {
    static const bad_edit cases[] = {
        /* missing */
        {NULL, "model_type", NULL, SS_EFORMAT, "missing field 'model_type'"},
        {NULL, "vocab_size", NULL, SS_EFORMAT, "missing field 'vocab_size'"},
        {NULL, "hidden_size", NULL, SS_EFORMAT, "missing field 'hidden_size'"},
        {NULL, "intermediate_size", NULL, SS_EFORMAT, "missing field 'intermediate_size'"},
        {NULL, "num_hidden_layers", NULL, SS_EFORMAT, "missing field 'num_hidden_layers'"},
        {NULL, "num_attention_heads", NULL, SS_EFORMAT, "missing field 'num_attention_heads'"},
        {NULL, "max_position_embeddings", NULL, SS_EFORMAT, "missing field 'max_position_embeddings'"},
        {NULL, "rms_norm_eps", NULL, SS_EFORMAT, "missing field 'rms_norm_eps'"},
        {NULL, "rope_scaling.low_freq_factor", NULL, SS_EFORMAT, "missing field 'rope_scaling.low_freq_factor'"},
        {NULL, "rope_scaling.original_max_position_embeddings", NULL, SS_EFORMAT,
         "rope_scaling.original_max_position_embeddings"},
        /* mistyped */
        {NULL, "model_type", "7", SS_EFORMAT, "field 'model_type' must be a string"},
        {NULL, "hidden_size", "\"2048\"", SS_EFORMAT, "field 'hidden_size' must be an integer, not a string"},
        {NULL, "num_hidden_layers", "16.5", SS_EFORMAT, "field 'num_hidden_layers' must be an integer"},
        {NULL, "num_key_value_heads", "[8]", SS_EFORMAT, "field 'num_key_value_heads'"},
        {NULL, "rms_norm_eps", "\"1e-5\"", SS_EFORMAT, "field 'rms_norm_eps' must be a number"},
        {NULL, "rope_theta", "true", SS_EFORMAT, "field 'rope_theta'"},
        {NULL, "tie_word_embeddings", "\"yes\"", SS_EFORMAT, "field 'tie_word_embeddings'"},
        {NULL, "rope_scaling", "5", SS_EFORMAT, "field 'rope_scaling' must be an object"},
        {NULL, "rope_scaling.factor", "\"32\"", SS_EFORMAT, "field 'rope_scaling.factor'"},
        {NULL, "bos_token_id", "\"<s>\"", SS_EFORMAT, "field 'bos_token_id'"},
        {NULL, "eos_token_id", "[128001, \"x\"]", SS_EFORMAT, "field 'eos_token_id'"},
        {NULL, "torch_dtype", "16", SS_EFORMAT, "field 'torch_dtype'"},
        {NULL, "attention_bias", "\"no\"", SS_EFORMAT, "field 'attention_bias'"},
        /* non-positive or out of range */
        {NULL, "hidden_size", "0", SS_EFORMAT, "field 'hidden_size' is 0"},
        {NULL, "num_attention_heads", "-32", SS_EFORMAT, "field 'num_attention_heads' is -32"},
        {NULL, "vocab_size", "4294967296", SS_EFORMAT, "field 'vocab_size'"},
        {NULL, "head_dim", "0", SS_EFORMAT, "field 'head_dim'"},
        {NULL, "rms_norm_eps", "0", SS_EFORMAT, "field 'rms_norm_eps'"},
        {NULL, "rms_norm_eps", "1e-60", SS_EFORMAT, "field 'rms_norm_eps'"}, /* 0 as a float */
        {NULL, "rope_theta", "1e60", SS_EFORMAT, "field 'rope_theta'"},       /* inf as a float */
        {NULL, "rope_theta", "-1.0", SS_EFORMAT, "field 'rope_theta'"},
        {NULL, "rope_scaling.factor", "0.0", SS_EFORMAT, "field 'rope_scaling.factor'"},
        {NULL, "bos_token_id", "-1", SS_EFORMAT, "field 'bos_token_id'"},
        {NULL, "eos_token_id", "128256", SS_EFORMAT, "field 'eos_token_id'"},
        {NULL, "eos_token_id", "[1, 2, 3, 4, 5, 6, 7, 8, 9]", SS_EUNSUPPORTED, "field 'eos_token_id'"},
        /* inconsistent */
        {NULL, "num_key_value_heads", "5", SS_EFORMAT, "num_key_value_heads (5)"},
        {NULL, "num_key_value_heads", "64", SS_EFORMAT, "num_key_value_heads (64)"},
        {NULL, "head_dim", "63", SS_EFORMAT, "head_dim"},
        {NULL, "rope_scaling.high_freq_factor", "1.0", SS_EFORMAT, "rope_scaling.high_freq_factor"},
        {"qwen2", "hidden_size", "900", SS_EFORMAT, "hidden_size (900) is not a multiple of num_attention_heads (14)"},
        /* unsupported */
        {NULL, "model_type", "\"gpt2\"", SS_EUNSUPPORTED,
         "unknown architecture 'gpt2' (model_type); supported: llama, mistral, qwen2, qwen3"},
        {NULL, "attention_bias", "true", SS_EUNSUPPORTED, "attention_bias"},
        {NULL, "mlp_bias", "true", SS_EUNSUPPORTED, "mlp_bias"},
        {"qwen3", "attention_bias", "true", SS_EUNSUPPORTED, "qwen3 with attention_bias=true"},
        {NULL, "hidden_act", "\"gelu\"", SS_EUNSUPPORTED, "hidden_act 'gelu'"},
        {NULL, "rope_scaling.rope_type", "\"yarn\"", SS_EUNSUPPORTED, "field 'rope_scaling.rope_type' is 'yarn'"},
        {NULL, "torch_dtype", "\"float64\"", SS_EUNSUPPORTED, "field 'torch_dtype' is 'float64'"},
        {"v5", "rope_parameters.rope_type", "\"dynamic\"", SS_EUNSUPPORTED, "field 'rope_parameters.rope_type'"},
        {"v5", "rope_parameters.rope_theta", "\"big\"", SS_EFORMAT, "field 'rope_parameters.rope_theta'"},
        {"v5", "rope_parameters", "[]", SS_EFORMAT, "field 'rope_parameters'"},
        {"v5", "dtype", "\"int8\"", SS_EUNSUPPORTED, "field 'dtype' is 'int8'"},
    };
    *n = sizeof cases / sizeof cases[0];
    return cases;
}

/* One line naming the culprit and the file; cfg untouched. */
static void check_fails(const char *json, const char *what, ss_status want, const char *culprit) {
    ss_config c;
    memset(&c, 0x5a, sizeof c);
    ss_error err = {0};
    ss_status st = parse(json, &c, &err);
    CHECK_MSG(st == want, "%s: status %s, want %s (%s)", what, ss_status_name(st), ss_status_name(want), err.msg);
    CHECK_MSG(strstr(err.msg, culprit) != NULL, "%s: message '%s' does not name '%s'", what, err.msg, culprit);
    CHECK_MSG(strstr(err.msg, "models/x/config.json") == err.msg, "%s: message '%s' does not start with the file",
              what, err.msg);
    CHECK_MSG(strchr(err.msg, '\n') == NULL, "%s: message is not one line", what);
    CHECK_MSG(c.vocab_size == 0x5a5a5a5a && c.hidden == 0x5a5a5a5a, "%s: config written on failure", what);
}

static void test_bad_fields(void) {
    size_t n;
    const bad_edit *cases = bad_edits(&n);
    for (size_t i = 0; i < n; i++) {
        const char *b = cases[i].base;
        const char *base = !b ? llama32_1b
                           : strcmp(b, "qwen2") == 0 ? qwen25_05b
                           : strcmp(b, "qwen3") == 0 ? qwen3_06b
                                                     : llama32_1b_v5;
        char *text = edit(base, cases[i].key, cases[i].value);
        char what[128];
        snprintf(what, sizeof what, "%s = %s", cases[i].key, cases[i].value ? cases[i].value : "(deleted)");
        check_fails(text, what, cases[i].status, cases[i].culprit);
        free(text);
    }
}

static void test_bad_json(void) {
    check_fails("{\"model_type\": \"llama\",\n  \"hidden_size\": 2048,,\n}", "malformed", SS_EFORMAT,
                "invalid JSON at line 2, column");
    check_fails("", "empty", SS_EFORMAT, "invalid JSON at line");
    check_fails("[1, 2]", "array", SS_EFORMAT, "not a JSON object");
    check_fails("{\"model_type\": \"llama\", \"model_type\": \"qwen2\"}", "duplicate key", SS_EFORMAT, "model_type");
}

static void test_load_file(void) {
    ss_config c;
    ss_error err = {0};
    CHECK(ss_config_load("/nonexistent/specscope/dir/config.json", &c, &err) == SS_EIO);
    CHECK_MSG(strcmp(err.msg, "config.json not found in /nonexistent/specscope/dir") == 0, "%s", err.msg);

    char dir[] = "/tmp/ss_config_XXXXXX", path[PATH_MAX];
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(qwen3_06b, f);
    fclose(f);
    CHECK_MSG(ss_config_load(path, &c, &err) == SS_OK, "%s", err.msg);
    CHECK(c.arch == SS_ARCH_QWEN3 && c.head_dim == 128);
    f = fopen(path, "w");
    fputs("{\"model_type\": \"gpt2\", \"vocab_size\": 50257}", f);
    fclose(f);
    CHECK(ss_config_load(path, &c, &err) == SS_EUNSUPPORTED);
    CHECK_MSG(strstr(err.msg, path) == err.msg && strstr(err.msg, "'gpt2'"), "%s", err.msg);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    test_llama();
    test_mistral();
    test_qwen2();
    test_qwen3();
    test_defaults();
    test_bad_fields();
    test_bad_json();
    test_load_file();
    return check_done();
}
