/* test_lora.c — PEFT LoRA adapters (engine/lora.c) against transformers + peft.
 *
 * tests/fixtures/lora/NAME/ (scripts/make_lora_fixtures.py) holds an adapter on one of the test
 * checkpoints and PEFT's logits at scale 1 and 0.5, and the norms computed in float64. On the CPU:
 * the logits at both scales, the norms, that an adapter switched off or unloaded gives the base
 * model's logits bit for bit, that two adapters add up, and that every malformed adapter is refused
 * with a message naming the culprit and leaves the model as it was.
 *
 * With the argument "cuda" (label gpu): the same adapters on the CUDA backend against the CPU
 * backend, a whole prompt and then one position at a time (the decode path: GEMVs and CUDA graphs),
 * and a scale change between two decode steps must reach the next graph replay. Without a device it
 * prints "SKIPPED: no CUDA device" and exits 77. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "backend.h"
#include "specscope.h"

#define SKIP 77
#define LORA_DIR FIXTURES_DIR "/lora"

/* demo-kjv is the trained adapter bundled with the demo pair (models/demo/lora-kjv; its fixture
 * folder holds only the reference and names the adapter's folder). */
static const char *const ADAPTERS[] = {"llama-all", "qwen3-qv-rslora", "llama3rope-mlp", "demo-r4", "demo-kjv"};

typedef struct {
    char dir[1024], base[2100], adapter[2100]; /* the adapter: dir, or reference.json's "adapter" from dir */
    json_t *ref;
    int *ids, n, vocab;
    bool f32; /* the base checkpoint is float32 (the device rounds it to bf16: check_cuda) */
} fixture;

static float *read_floats(const char *path, size_t count) {
    FILE *f = fopen(path, "rb");
    float *v = f ? malloc(count * sizeof *v) : NULL;
    if (v && fread(v, sizeof *v, count, f) != count) free(v), v = NULL;
    if (f) fclose(f);
    return v;
}

static bool open_fixture(const char *name, fixture *fx) {
    memset(fx, 0, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "%s/%s", LORA_DIR, name);
    char path[1100];
    snprintf(path, sizeof path, "%s/reference.json", fx->dir);
    json_error_t jerr;
    fx->ref = json_load_file(path, 0, &jerr);
    CHECK_MSG(fx->ref != NULL, "%s: %s", path, jerr.text);
    if (!fx->ref) return false;
    const char *base = json_string_value(json_object_get(fx->ref, "base"));
    snprintf(fx->base, sizeof fx->base, "%s/%s", fx->dir, base ? base : "");
    const char *adapter = json_string_value(json_object_get(fx->ref, "adapter"));
    snprintf(fx->adapter, sizeof fx->adapter, "%s%s%s", fx->dir, adapter ? "/" : "", adapter ? adapter : "");
    fx->f32 = base && strstr(base, "-f32");
    const json_t *ids = json_object_get(fx->ref, "ids");
    fx->n = (int)json_array_size(ids);
    fx->ids = malloc((size_t)fx->n * sizeof *fx->ids);
    for (int i = 0; i < fx->n; i++) fx->ids[i] = (int)json_integer_value(json_array_get(ids, (size_t)i));
    fx->vocab = (int)json_integer_value(json_object_get(fx->ref, "vocab"));
    return fx->n > 0 && fx->vocab > 0;
}

static void close_fixture(fixture *fx) {
    json_decref(fx->ref);
    free(fx->ids);
}

static ss_model *load_model(const char *dir, ss_backend_kind backend) {
    ss_model_opts o = {.dir = dir, .backend = backend, .max_context = 64, .quiet = true};
    ss_model *m = NULL;
    ss_error err = {0};
    CHECK_MSG(ss_model_load(&o, &m, &err) == SS_OK, "%s: %s", dir, err.msg);
    return m;
}

/* Every position's logits of the fixture's ids ([n, vocab], malloc'd), NULL on failure. */
static float *prompt_logits(ss_model *m, const fixture *fx) {
    float *out = malloc((size_t)fx->n * fx->vocab * sizeof *out);
    int pos[64];
    for (int i = 0; i < fx->n; i++) pos[i] = i;
    ss_error err = {0};
    ss_status st = ss_model_forward(m, fx->ids, pos, fx->n, out, false, &err);
    CHECK_MSG(st == SS_OK, "forward: %s", err.msg);
    if (st != SS_OK) free(out), out = NULL;
    return out;
}

/* max |a - b| over max |b| */
static double rel_error(const float *a, const float *b, size_t count) {
    double diff = 0, scale = 1e-6;
    for (size_t i = 0; i < count; i++) diff = fmax(diff, fabs(a[i] - b[i])), scale = fmax(scale, fabs(b[i]));
    return diff / scale;
}

/* ---------------------------------------------------------------- CPU against PEFT */

/* The fixture's cases (scale 1, 0.5) against PEFT's logits, the adapter applied as the model is set
 * (unmerged or merged). */
static void check_cases(ss_model *m, ss_lora *a, const fixture *fx, const float *base, const char *how) {
    const size_t count = (size_t)fx->n * fx->vocab;
    /* The CPU computes PEFT's float32 function of the stored weights, bf16 or not: every fixture's
     * error is at most 2.5e-6 (test output). */
    const double tol = 1e-4;
    const json_t *cases = json_object_get(fx->ref, "cases");
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *cs = json_array_get(cases, c);
        const double scale = json_number_value(json_object_get(cs, "scale"));
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", fx->dir, json_string_value(json_object_get(cs, "logits")));
        float *want = read_floats(path, count);
        CHECK_MSG(want != NULL, "%s: %s is not %d x %d float32", fx->dir, path, fx->n, fx->vocab);
        ss_lora_set_scale(a, (float)scale);
        float *got = prompt_logits(m, fx);
        if (want && got) {
            const double e = rel_error(got, want, count), moved = rel_error(base, want, count);
            printf("%s %s, scale %g: relative logit error %.3g (tolerance %g); the adapter moves them by %.3g\n",
                   fx->dir + strlen(LORA_DIR) + 1, how, scale, e, tol, moved);
            CHECK_MSG(e <= tol, "%s %s scale %g: relative error %g", fx->dir, how, scale, e);
            CHECK_MSG(moved > 10 * tol, "%s scale %g: the adapter barely changes the logits (%g)", fx->dir, scale, moved);
        }
        free(want);
        free(got);
    }
    ss_lora_set_scale(a, 1.0f);
}

/* The model's logits equal base bit for bit. */
static void check_base(ss_model *m, const fixture *fx, const float *base, const char *what) {
    float *got = prompt_logits(m, fx);
    CHECK_MSG(got && !memcmp(got, base, (size_t)fx->n * fx->vocab * sizeof *got), "%s: %s, logits differ", fx->dir, what);
    free(got);
}

static void check_against_peft(const char *name) {
    fixture fx;
    if (!open_fixture(name, &fx)) return close_fixture(&fx);
    ss_model *m = load_model(fx.base, SS_BACKEND_CPU);
    if (!m) return close_fixture(&fx);
    float *base = prompt_logits(m, &fx);
    ss_lora *a = NULL;
    ss_error err = {0};
    CHECK_MSG(ss_lora_load(m, fx.adapter, 1.0f, &a, &err) == SS_OK, "%s: %s", name, err.msg);
    if (a && base) {
        check_cases(m, a, &fx, base, "unmerged");
        /* Merged: the same function from folded weights (a scale change refolds them). */
        CHECK_MSG(ss_model_lora_merge(m, true, &err) == SS_OK && ss_model_lora_merged(m), "%s: merge: %s", name, err.msg);
        check_cases(m, a, &fx, base, "merged");
        ss_lora_set_enabled(a, false); /* merged with nothing on: the checkpoint's weights again */
        check_base(m, &fx, base, "merged and switched off");
        ss_lora_set_enabled(a, true);
        CHECK(ss_model_lora_merge(m, false, &err) == SS_OK && !ss_model_lora_merged(m));
        /* Off, then unloaded: the base model's logits, bit for bit (no op is issued for it). */
        ss_lora_set_enabled(a, false);
        check_base(m, &fx, base, "switched off");
        ss_lora_set_enabled(a, true);
        ss_lora_unload(a);
        CHECK(ss_model_lora_count(m) == 0);
        check_base(m, &fx, base, "unloaded");
    }
    free(base);
    ss_model_free(m);
    close_fixture(&fx);
}

/* in / out of a projection (numel(A) / numel(B) for any rank), from the model's geometry. */
static double in_over_out(const ss_config *c, const char *module) {
    const double h = c->hidden, q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    if (!strcmp(module, "q_proj")) return h / q;
    if (!strcmp(module, "k_proj") || !strcmp(module, "v_proj")) return h / kv;
    if (!strcmp(module, "o_proj")) return q / h;
    if (!strcmp(module, "down_proj")) return c->intermediate / h;
    return h / c->intermediate; /* gate_proj, up_proj */
}

static void check_norms(const char *name) {
    fixture fx;
    if (!open_fixture(name, &fx)) return close_fixture(&fx);
    ss_model *m = load_model(fx.base, SS_BACKEND_CPU);
    ss_lora *a = NULL;
    ss_error err = {0};
    const ss_lora_norm *rows = NULL;
    int n = 0;
    if (m) CHECK_MSG(ss_lora_load(m, fx.adapter, 1.0f, &a, &err) == SS_OK, "%s: %s", name, err.msg);
    if (a) CHECK_MSG(ss_lora_norms(a, &rows, &n, &err) == SS_OK, "%s: %s", name, err.msg);
    const json_t *want = json_object_get(fx.ref, "norms");
    CHECK_MSG(rows && n == (int)json_array_size(want), "%s: %d norm rows, reference %zu", name, n, json_array_size(want));
    for (int i = 0; rows && i < n && i < (int)json_array_size(want); i++) {
        const json_t *w = json_array_get(want, (size_t)i);
        CHECK(rows[i].layer == json_integer_value(json_object_get(w, "layer")));
        CHECK(!strcmp(rows[i].module, json_string_value(json_object_get(w, "module"))));
        CHECK_NEAR(rows[i].a, json_number_value(json_object_get(w, "a")), 1e-9);
        CHECK_NEAR(rows[i].b, json_number_value(json_object_get(w, "b")), 1e-9);
        CHECK_NEAR(rows[i].ba, json_number_value(json_object_get(w, "ba")), 1e-9);
        CHECK_NEAR(rows[i].rel, json_number_value(json_object_get(w, "rel")), 1e-9);
        const double a = json_number_value(json_object_get(w, "a")), b = json_number_value(json_object_get(w, "b"));
        CHECK_NEAR(rows[i].stable, a / (in_over_out(ss_model_config(m), rows[i].module) * b), 1e-9);
    }
    CHECK_NEAR(a ? ss_lora_scaling(a) : 0, json_number_value(json_object_get(fx.ref, "scaling")), 1e-12);
    if (a && rows) { /* the live scale multiplies |s B A| and the ratio, not |A| or |B| */
        const double ba = rows[0].ba, an = rows[0].a;
        ss_lora_set_scale(a, -0.5f);
        CHECK(ss_lora_norms(a, &rows, &n, &err) == SS_OK);
        CHECK_NEAR(rows[0].ba, 0.5 * ba, 1e-12);
        CHECK_NEAR(rows[0].a, an, 1e-12);
    }
    printf("%s: %d norm rows against the float64 reference\n", name, n);
    ss_model_free(m);
    close_fixture(&fx);
}

/* Stable-LoRA's test against the run that trained the demo adapter (scripts/train_demo_lora.py, in
 * torch): the modules whose A was still shrinking at its last step are exactly those whose stored
 * factors give stable >= 1 here (36 of 56; the nearest on either side are 0.997 and 1.042). */
static void check_stable_lora(void) {
    static const char dir[] = SOURCE_DIR "/models/demo/lora-kjv";
    json_error_t jerr;
    json_t *run = json_load_file(SOURCE_DIR "/models/demo/lora-kjv/training.json", 0, &jerr);
    CHECK_MSG(run != NULL, "training.json: %s", jerr.text);
    const json_t *snaps = json_object_get(run, "norms"), *last = json_array_get(snaps, json_array_size(snaps) - 1);
    const json_t *mods = json_object_get(last, "modules");
    ss_model *m = run ? load_model(SOURCE_DIR "/models/demo/target", SS_BACKEND_CPU) : NULL;
    ss_lora *a = NULL;
    ss_error err = {0};
    const ss_lora_norm *rows = NULL;
    int n = 0, shrinking = 0;
    if (m) CHECK_MSG(ss_lora_load(m, dir, 1.0f, &a, &err) == SS_OK, "lora-kjv: %s", err.msg);
    if (a) CHECK_MSG(ss_lora_norms(a, &rows, &n, &err) == SS_OK, "lora-kjv: %s", err.msg);
    CHECK_MSG(rows && n == (int)json_array_size(mods), "lora-kjv: %d rows, the run has %zu", n, json_array_size(mods));
    for (int i = 0; rows && i < n && i < (int)json_array_size(mods); i++) {
        const json_t *w = json_array_get(mods, (size_t)i);
        const bool want = json_is_true(json_object_get(w, "shrinking"));
        CHECK(rows[i].layer == json_integer_value(json_object_get(w, "layer")) &&
              !strcmp(rows[i].module, json_string_value(json_object_get(w, "module"))));
        CHECK_MSG((rows[i].stable >= 1) == want, "lora-kjv layer %d %s: stable %g, the run says %s", rows[i].layer,
                  rows[i].module, rows[i].stable, want ? "shrinking" : "stopped");
        shrinking += want;
    }
    printf("lora-kjv: Stable-LoRA's test agrees with its training run on %d modules (%d still shrinking)\n", n,
           shrinking);
    ss_model_free(m);
    json_decref(run);
}

/* Two adapters on one model add their updates: the llama adapter at 0.5 twice equals it at 1. */
static void check_two_adapters(void) {
    fixture fx;
    if (!open_fixture("llama-all", &fx)) return close_fixture(&fx);
    ss_model *m = load_model(fx.base, SS_BACKEND_CPU);
    ss_lora *a = NULL, *b = NULL;
    ss_error err = {0};
    if (m) CHECK(ss_lora_load(m, fx.adapter, 0.5f, &a, &err) == SS_OK && ss_lora_load(m, fx.adapter, 0.5f, &b, &err) == SS_OK);
    CHECK(ss_model_lora_count(m) == 2 && ss_model_lora(m, 0) == a && ss_model_lora(m, 1) == b && !ss_model_lora(m, 2));
    char path[1200];
    snprintf(path, sizeof path, "%s/logits_1.f32", fx.dir);
    float *want = read_floats(path, (size_t)fx.n * fx.vocab), *got = a && b ? prompt_logits(m, &fx) : NULL;
    if (want && got) {
        const double e = rel_error(got, want, (size_t)fx.n * fx.vocab);
        printf("two adapters at 0.5: relative logit error %.3g against one at 1\n", e);
        CHECK_MSG(e <= 1e-4, "two adapters at 0.5 against one at 1: %g", e);
    }
    free(got);
    /* Merged, both fold into the same weights; unloading one while merged refolds the other alone. */
    CHECK_MSG(a && b && ss_model_lora_merge(m, true, &err) == SS_OK, "merge: %s", err.msg);
    got = a && b ? prompt_logits(m, &fx) : NULL;
    if (want && got) {
        const double e = rel_error(got, want, (size_t)fx.n * fx.vocab);
        printf("two adapters at 0.5, merged: relative logit error %.3g against one at 1\n", e);
        CHECK_MSG(e <= 1e-4, "two adapters at 0.5, merged: %g", e);
    }
    free(got);
    free(want);
    if (a && b) {
        ss_lora_unload(b);
        snprintf(path, sizeof path, "%s/logits_0.5.f32", fx.dir);
        want = read_floats(path, (size_t)fx.n * fx.vocab), got = prompt_logits(m, &fx);
        const double e = want && got ? rel_error(got, want, (size_t)fx.n * fx.vocab) : 1;
        printf("one of them unloaded while merged: relative logit error %.3g against one at 0.5\n", e);
        CHECK_MSG(e <= 1e-4, "one unloaded while merged: %g", e);
        free(want);
        free(got);
    }
    ss_model_free(m); /* frees both */
    close_fixture(&fx);
}

/* ---------------------------------------------------------------- bad adapters */

static char scratch[256];

static void write_file(const char *name, const void *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    FILE *f = fopen(path, "wb");
    if (f) fwrite(data, 1, len, f), fclose(f);
}

static void *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*len ? *len : 1);
    if (buf && fread(buf, 1, *len, f) != *len) free(buf), buf = NULL;
    fclose(f);
    return buf;
}

/* The adapter in `src` copied into scratch with its config replaced (NULL: kept) and its tensor
 * file truncated to `keep` bytes (0: whole). */
static void make_adapter(const char *src, const char *config, size_t keep) {
    char path[1100];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s/adapter_model.safetensors", LORA_DIR, src);
    void *st = slurp(path, &len);
    write_file("adapter_model.safetensors", st, keep && keep < len ? keep : len);
    free(st);
    snprintf(path, sizeof path, "%s/%s/adapter_config.json", LORA_DIR, src);
    void *cfg = config ? NULL : slurp(path, &len);
    write_file("adapter_config.json", config ? config : cfg, config ? strlen(config) : len);
    free(cfg);
}

/* A minimal safetensors file of F32 tensors: names and shapes, data all 0.5. */
static void write_tensors(int count, const char *const *names, const int (*shapes)[2]) {
    char header[4096] = "{";
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        size_t bytes = (size_t)shapes[i][0] * shapes[i][1] * 4;
        snprintf(header + strlen(header), sizeof header - strlen(header),
                 "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}", i ? "," : "", names[i],
                 shapes[i][0], shapes[i][1], off, off + bytes);
        off += bytes;
    }
    strcat(header, "}");
    while (strlen(header) % 8) strcat(header, " "); /* the data starts 8-byte aligned, as the format pads it */
    size_t hl = strlen(header);
    unsigned char *file = malloc(8 + hl + off);
    for (int b = 0; b < 8; b++) file[b] = (unsigned char)((uint64_t)hl >> (8 * b));
    memcpy(file + 8, header, hl);
    float half = 0.5f;
    for (size_t i = 0; i < off / 4; i++) memcpy(file + 8 + hl + 4 * i, &half, 4);
    write_file("adapter_model.safetensors", file, 8 + hl + off);
    free(file);
}

static void expect_refused(ss_model *m, const float *base, const fixture *fx, ss_status want, const char *needle,
                           const char *what) {
    ss_lora *a = (ss_lora *)1;
    ss_error err = {0};
    ss_status st = ss_lora_load(m, scratch, 1.0f, &a, &err);
    printf("refused (%s): %s\n", what, err.msg);
    CHECK_MSG(st == want && a == NULL, "%s: status %s (want %s)", what, ss_status_name(st), ss_status_name(want));
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle);
    CHECK_MSG(strchr(err.msg, '\n') == NULL, "%s: message is not one line", what);
    CHECK(ss_model_lora_count(m) == 0);
    float *after = prompt_logits(m, fx);
    CHECK_MSG(after && !memcmp(after, base, (size_t)fx->n * fx->vocab * sizeof *after), "%s: the model changed", what);
    free(after);
}

static void check_bad_adapters(void) {
    fixture fx;
    if (!open_fixture("llama-all", &fx)) return close_fixture(&fx);
    snprintf(scratch, sizeof scratch, "/tmp/specscope-test-lora-XXXXXX");
    if (!mkdtemp(scratch)) {
        CHECK_MSG(false, "mkdtemp failed");
        return close_fixture(&fx);
    }
    ss_model *m = load_model(fx.base, SS_BACKEND_CPU);
    float *base = m ? prompt_logits(m, &fx) : NULL;
    if (!base) goto done;
    const char *good = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}";

    expect_refused(m, base, &fx, SS_EIO, "adapter_config.json: not found", "no config");
    /* Configs that lie or ask for what is not computed, beside the fixture's tensors. */
    static const struct {
        const char *config, *needle, *what;
        ss_status status;
    } configs[] = {
        {"{\"r\": 4, \"lora_alpha\": ", "invalid JSON", "truncated config", SS_EFORMAT},
        {"{\"lora_alpha\": 8}", "'r' is missing", "no rank", SS_EFORMAT},
        {"{\"r\": 4, \"lora_alpha\": \"8\"}", "'lora_alpha' is not a finite number", "alpha a string", SS_EFORMAT},
        {"{\"peft_type\": \"IA3\", \"r\": 4, \"lora_alpha\": 8}", "peft_type is IA3", "not LoRA", SS_EUNSUPPORTED},
        {"{\"r\": 4, \"lora_alpha\": 8, \"use_dora\": true}", "'use_dora'", "DoRA", SS_EUNSUPPORTED},
        {"{\"r\": 4, \"lora_alpha\": 8, \"rank_pattern\": {\"q_proj\": 8}}", "'rank_pattern'", "per-module ranks",
         SS_EUNSUPPORTED},
        {"{\"r\": 4, \"lora_alpha\": 8, \"bias\": \"all\"}", "'bias'", "LoRA biases", SS_EUNSUPPORTED},
        {"{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 8}", "expected [8, 64] (r, in)", "rank lies", SS_EFORMAT},
    };
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        make_adapter("llama-all", configs[i].config, 0);
        expect_refused(m, base, &fx, configs[i].status, configs[i].needle, configs[i].what);
    }
    make_adapter("llama-all", good, 5000);
    expect_refused(m, base, &fx, SS_EFORMAT, "adapter_model.safetensors", "truncated tensors");
    char bad_dir[300];
    snprintf(bad_dir, sizeof bad_dir, "%s/adapter_model.safetensors", scratch);
    unlink(bad_dir);
    expect_refused(m, base, &fx, SS_EIO, "adapter_model.safetensors: not found", "no tensors");
    write_file("adapter_config.json", good, strlen(good));
    /* A q_proj of 128 outputs (another model's: this one's has 64). */
    const char *names0[] = {"base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
                            "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"};
    const int shapes0[][2] = {{4, 64}, {128, 4}};
    write_tensors(2, names0, shapes0);
    expect_refused(m, base, &fx, SS_EFORMAT, "expected [64, 4] (out, r)", "another model's adapter");

    const char *names1[] = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"};
    const int shapes1[][2] = {{4, 64}};
    write_tensors(1, names1, shapes1);
    expect_refused(m, base, &fx, SS_EFORMAT, "has lora_A but no lora_B", "half a pair");
    const char *names2[] = {"base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight",
                            "base_model.model.model.layers.2.self_attn.q_proj.lora_B.weight"};
    const int shapes2[][2] = {{4, 64}, {64, 4}};
    write_tensors(2, names2, shapes2);
    expect_refused(m, base, &fx, SS_EFORMAT, "is for layer 2; the model has 2 layers", "layer out of range");
    const char *names3[] = {"base_model.model.lm_head.lora_A.weight"};
    const int shapes3[][2] = {{4, 64}};
    write_tensors(1, names3, shapes3);
    expect_refused(m, base, &fx, SS_EUNSUPPORTED, "lm_head.lora_A.weight' is not a LoRA factor", "lm_head");
    write_tensors(0, NULL, NULL);
    expect_refused(m, base, &fx, SS_EFORMAT, "no LoRA factors", "empty");
done:
    free(base);
    ss_model_free(m);
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", scratch);
    unlink(path);
    snprintf(path, sizeof path, "%s/adapter_config.json", scratch);
    unlink(path);
    rmdir(scratch);
    close_fixture(&fx);
}

/* ---------------------------------------------------------------- CUDA against the CPU */

/* One position at a time from the start (decode steps: GEMVs, graphs), the last one's logits. */
static bool decode_all(ss_model *m, const fixture *fx, float *last) {
    ss_error err = {0};
    for (int i = 0; i < fx->n; i++)
        if (ss_model_forward(m, &fx->ids[i], &i, 1, last, true, &err) != SS_OK) {
            CHECK_MSG(false, "decode: %s", err.msg);
            return false;
        }
    return true;
}

static void check_cuda(const char *name) {
    fixture fx;
    if (!open_fixture(name, &fx)) return close_fixture(&fx);
    ss_model *cpu = load_model(fx.base, SS_BACKEND_CPU), *gpu = load_model(fx.base, SS_BACKEND_CUDA);
    ss_lora *ac = NULL, *ag = NULL;
    ss_error err = {0};
    if (cpu && gpu)
        CHECK_MSG(ss_lora_load(cpu, fx.adapter, 1.0f, &ac, &err) == SS_OK && ss_lora_load(gpu, fx.adapter, 1.0f, &ag, &err) == SS_OK,
                  "%s: %s", name, err.msg);
    /* The device rounds weights and factors to bf16 on upload (an f32 base loses more: test_gpu_model
     * allows 4e-2 there for the base model alone) and a prompt runs through cuBLASLt on bf16
     * activations; these adapters double the weights' norm (|s BA| / |W0| up to 1.5). Whether the
     * adapter is applied at all is checked apart: the device must be far closer to the CPU with the
     * adapter than to the CPU without it. */
    const double tol = fx.f32 ? 6e-2 : 3e-2;
    const size_t count = (size_t)fx.n * fx.vocab;
    float *plain = NULL;
    if (ac) {
        ss_lora_set_enabled(ac, false);
        plain = prompt_logits(cpu, &fx);
        ss_lora_set_enabled(ac, true);
    }
    for (int k = 0; ac && ag && k < 4; k++) {
        const float scale = k % 2 ? 0.5f : 1.0f; /* a changed scale must reach the graphs */
        const bool merged = k >= 2;              /* then the adapters folded into the weights */
        const char *how = merged ? "merged" : "unmerged";
        ss_lora_set_scale(ac, scale), ss_lora_set_scale(ag, scale);
        CHECK_MSG(ss_model_lora_merge(cpu, merged, &err) == SS_OK && ss_model_lora_merge(gpu, merged, &err) == SS_OK,
                  "%s: merge: %s", name, err.msg);
        float *want = prompt_logits(cpu, &fx), *got = prompt_logits(gpu, &fx);
        float *dw = malloc((size_t)fx.vocab * sizeof *dw), *dg = malloc((size_t)fx.vocab * sizeof *dg);
        if (want && got && plain) {
            const double e = rel_error(got, want, count), away = rel_error(got, plain, count);
            printf("%s on CUDA, %s, scale %g, prompt: relative logit error %.3g against the CPU (tolerance %g), %.3g "
                   "from the CPU without the adapter\n",
                   name, how, scale, e, tol, away);
            CHECK_MSG(e <= tol, "%s scale %g prompt: %g", name, scale, e);
            CHECK_MSG(e < 0.25 * away, "%s scale %g prompt: %g from the adapter's logits, %g from the base's", name,
                      scale, e, away);
        }
        for (int rep = 0; rep < 3 && decode_all(cpu, &fx, dw) && decode_all(gpu, &fx, dg); rep++) {
            const double e = rel_error(dg, dw, (size_t)fx.vocab);
            if (rep == 2) printf("%s on CUDA, %s, scale %g, decode steps: relative error %.3g\n", name, how, scale, e);
            CHECK_MSG(e <= tol, "%s scale %g decode (replay %d): %g", name, scale, rep, e);
        }
        free(want), free(got), free(dw), free(dg);
    }
    free(plain);
    ss_model_free(cpu);
    ss_model_free(gpu);
    close_fixture(&fx);
}

int main(int argc, char **argv) {
    struct stat st;
    if (stat(LORA_DIR, &st) != 0) {
        printf("SKIPPED: no %s (scripts/make_lora_fixtures.py makes it)\n", LORA_DIR);
        return SKIP;
    }
    if (argc > 1 && !strcmp(argv[1], "cuda")) {
        char why[256];
        if (!ss_backend_cuda_available(why, sizeof why)) {
            printf("SKIPPED: no CUDA device (%s)\n", why);
            return SKIP;
        }
        for (size_t i = 0; i < sizeof ADAPTERS / sizeof *ADAPTERS; i++) check_cuda(ADAPTERS[i]);
        return check_done();
    }
    for (size_t i = 0; i < sizeof ADAPTERS / sizeof *ADAPTERS; i++) {
        check_against_peft(ADAPTERS[i]);
        check_norms(ADAPTERS[i]);
    }
    check_stable_lora();
    check_two_adapters();
    check_bad_adapters();
    return check_done();
}
