/* test_forward.c — the model loader and forward pass against a naive double-precision reference
 * written here from the checkpoint's own floats, on small random checkpoints (f32 / bf16 / f16,
 * grouped-query attention, qwen2 biases, qwen3 q/k norms, llama3 and linear rope scaling):
 *   batched forward == reference == one position at a time (also after a prefill, and past the
 *   256-position batch limit); the KV cache holds the reference's K/V; EasySpec plans: groups of 1
 *   equal the sequential model, groups of 2 (and explicit groups) equal the reference's group
 *   semantics in both modes; bad checkpoints, arguments and group lists fail with a named culprit. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core_checkpoint.h"
#include "model.h"

/* ---------------------------------------------------------------- reference implementation */

typedef struct {
    const ck_model *ck;
    int layers, hidden, inter, heads, kv_heads, hd, qd, kd, vocab;
    bool bias, qk_norm;
    double eps, *inv_freq;
    double **kc, **vc; /* per layer [max positions][kd] */
} ref_model;

#define REF_POSITIONS 512

static const float *tensor(const ref_model *r, int l, const char *suffix) {
    char name[128];
    if (l < 0)
        snprintf(name, sizeof name, "%s", suffix);
    else
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
    return ck_find(r->ck, name);
}

static void ref_init(ref_model *r, const ck_model *ck) {
    const ck_spec *s = &ck->spec;
    *r = (ref_model){.ck = ck, .layers = s->layers, .hidden = s->hidden, .inter = s->intermediate, .heads = s->heads,
                     .kv_heads = s->kv_heads, .hd = ck->head_dim, .qd = s->heads * ck->head_dim,
                     .kd = s->kv_heads * ck->head_dim, .vocab = s->vocab, .bias = strcmp(s->arch, "qwen2") == 0,
                     .qk_norm = strcmp(s->arch, "qwen3") == 0, .eps = 1e-5};
    int half = r->hd / 2;
    r->inv_freq = malloc((size_t)half * sizeof *r->inv_freq);
    double theta = s->rope_theta > 0 ? s->rope_theta : 10000.0;
    for (int i = 0; i < half; i++) {
        double f = pow(theta, -2.0 * i / r->hd);
        if (s->rope == SS_ROPE_LINEAR) f /= s->rope_factor;
        if (s->rope == SS_ROPE_LLAMA3) { /* transformers' _compute_llama3_parameters */
            double wavelen = 2 * M_PI / f, low = s->rope_original / s->rope_low, high = s->rope_original / s->rope_high;
            if (wavelen > low) {
                f /= s->rope_factor;
            } else if (wavelen >= high) {
                double smooth = (s->rope_original / wavelen - s->rope_low) / (s->rope_high - s->rope_low);
                f = (1 - smooth) * f / s->rope_factor + smooth * f;
            }
        }
        r->inv_freq[i] = f;
    }
    r->kc = calloc((size_t)r->layers, sizeof *r->kc);
    r->vc = calloc((size_t)r->layers, sizeof *r->vc);
    for (int l = 0; l < r->layers; l++) {
        r->kc[l] = calloc((size_t)REF_POSITIONS * r->kd, sizeof **r->kc);
        r->vc[l] = calloc((size_t)REF_POSITIONS * r->kd, sizeof **r->vc);
    }
}

static void ref_free(ref_model *r) {
    for (int l = 0; l < r->layers; l++) {
        free(r->kc[l]);
        free(r->vc[l]);
    }
    free(r->kc);
    free(r->vc);
    free(r->inv_freq);
}

static void linear(double *out, const double *x, const float *w, const float *b, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = b ? b[r] : 0.0;
        for (int c = 0; c < cols; c++) s += (double)w[(size_t)r * cols + c] * x[c];
        out[r] = s;
    }
}

static void rmsnorm(double *out, const double *x, const float *w, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double inv = 1 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * inv * (w ? w[i] : 1.0);
}

static void rope(const ref_model *r, double *x, int heads, int pos) {
    int half = r->hd / 2;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < half; i++) {
            double *v = x + h * r->hd, a = pos * r->inv_freq[i], x0 = v[i], x1 = v[i + half];
            v[i] = x0 * cos(a) - x1 * sin(a);
            v[i + half] = x1 * cos(a) + x0 * sin(a);
        }
}

/* a = o_l(attention_l(input_norm_l(x))) at position pos; writes layer l's K/V there. */
static void ref_attention(ref_model *r, int l, const double *x, int pos, double *a) {
    double *xn = malloc((size_t)r->hidden * sizeof *xn), *q = malloc((size_t)r->qd * sizeof *q);
    double *att = calloc((size_t)r->qd, sizeof *att), *p = malloc((size_t)(pos + 1) * sizeof *p);
    double *k = r->kc[l] + (size_t)pos * r->kd, *v = r->vc[l] + (size_t)pos * r->kd;
    rmsnorm(xn, x, tensor(r, l, "input_layernorm.weight"), r->hidden, r->eps);
    linear(q, xn, tensor(r, l, "self_attn.q_proj.weight"), r->bias ? tensor(r, l, "self_attn.q_proj.bias") : NULL, r->qd,
           r->hidden);
    linear(k, xn, tensor(r, l, "self_attn.k_proj.weight"), r->bias ? tensor(r, l, "self_attn.k_proj.bias") : NULL, r->kd,
           r->hidden);
    linear(v, xn, tensor(r, l, "self_attn.v_proj.weight"), r->bias ? tensor(r, l, "self_attn.v_proj.bias") : NULL, r->kd,
           r->hidden);
    if (r->qk_norm) {
        for (int h = 0; h < r->heads; h++)
            rmsnorm(q + h * r->hd, q + h * r->hd, tensor(r, l, "self_attn.q_norm.weight"), r->hd, r->eps);
        for (int h = 0; h < r->kv_heads; h++)
            rmsnorm(k + h * r->hd, k + h * r->hd, tensor(r, l, "self_attn.k_norm.weight"), r->hd, r->eps);
    }
    rope(r, q, r->heads, pos);
    rope(r, k, r->kv_heads, pos);
    for (int h = 0; h < r->heads; h++) {
        int kvh = h / (r->heads / r->kv_heads);
        double max = -INFINITY, sum = 0;
        for (int t = 0; t <= pos; t++) {
            double s = 0;
            for (int d = 0; d < r->hd; d++) s += q[h * r->hd + d] * r->kc[l][(size_t)t * r->kd + kvh * r->hd + d];
            p[t] = s / sqrt(r->hd);
            max = fmax(max, p[t]);
        }
        for (int t = 0; t <= pos; t++) sum += (p[t] = exp(p[t] - max));
        for (int t = 0; t <= pos; t++)
            for (int d = 0; d < r->hd; d++)
                att[h * r->hd + d] += p[t] / sum * r->vc[l][(size_t)t * r->kd + kvh * r->hd + d];
    }
    linear(a, att, tensor(r, l, "self_attn.o_proj.weight"), NULL, r->hidden, r->qd);
    free(xn);
    free(q);
    free(att);
    free(p);
}

/* out = mlp_l(h) */
static void ref_mlp(const ref_model *r, int l, const double *h, double *out) {
    double *hn = malloc((size_t)r->hidden * sizeof *hn), *g = malloc((size_t)r->inter * sizeof *g),
           *u = malloc((size_t)r->inter * sizeof *u);
    rmsnorm(hn, h, tensor(r, l, "post_attention_layernorm.weight"), r->hidden, r->eps);
    linear(g, hn, tensor(r, l, "mlp.gate_proj.weight"), NULL, r->inter, r->hidden);
    linear(u, hn, tensor(r, l, "mlp.up_proj.weight"), NULL, r->inter, r->hidden);
    for (int i = 0; i < r->inter; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
    linear(out, g, tensor(r, l, "mlp.down_proj.weight"), NULL, r->hidden, r->inter);
    free(hn);
    free(g);
    free(u);
}

/* One token through the model; sizes: group sizes in order (NULL: every layer alone). */
static void ref_token(ref_model *r, int token, int pos, const int *sizes, ss_easyspec_mode mode, float *logits) {
    int H = r->hidden;
    double *x = malloc((size_t)H * sizeof *x), *a = malloc((size_t)r->layers * H * sizeof *a);
    double *m = malloc((size_t)H * sizeof *m), *h = malloc((size_t)H * sizeof *h), *out = malloc((size_t)H * sizeof *out);
    const float *embed = tensor(r, -1, "model.embed_tokens.weight");
    for (int i = 0; i < H; i++) x[i] = embed[(size_t)token * H + i];
    for (int first = 0, g = 0; first < r->layers; first += sizes ? sizes[g++] : 1) {
        int count = sizes ? sizes[g] : 1;
        for (int j = 0; j < count; j++) ref_attention(r, first + j, x, pos, a + (size_t)j * H); /* all read x */
        if (count == 1 || mode == SS_EASYSPEC_ATTN) {
            for (int j = 0; j < count; j++)
                for (int i = 0; i < H; i++) x[i] += a[(size_t)j * H + i];
            for (int j = 0; j < count; j++) {
                ref_mlp(r, first + j, x, m);
                for (int i = 0; i < H; i++) x[i] += m[i];
            }
        } else {
            memcpy(out, x, (size_t)H * sizeof *out);
            for (int j = 0; j < count; j++) {
                for (int i = 0; i < H; i++) h[i] = x[i] + a[(size_t)j * H + i];
                ref_mlp(r, first + j, h, m);
                for (int i = 0; i < H; i++) out[i] += a[(size_t)j * H + i] + m[i];
            }
            memcpy(x, out, (size_t)H * sizeof *x);
        }
    }
    rmsnorm(h, x, tensor(r, -1, "model.norm.weight"), H, r->eps);
    const float *head = r->ck->spec.tied ? embed : tensor(r, -1, "lm_head.weight");
    double *l = malloc((size_t)r->vocab * sizeof *l);
    linear(l, h, head, NULL, r->vocab, H);
    for (int v = 0; v < r->vocab; v++) logits[v] = (float)l[v];
    free(l);
    free(x);
    free(a);
    free(m);
    free(h);
    free(out);
}

/* ---------------------------------------------------------------- helpers */

/* Largest over rows of max |a - b| / max(1e-6, max |b|). */
static double row_err(const float *a, const float *b, int rows, int vocab) {
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        double diff = 0, scale = 1e-6;
        for (int v = 0; v < vocab; v++) {
            diff = fmax(diff, fabs(a[(size_t)r * vocab + v] - b[(size_t)r * vocab + v]));
            scale = fmax(scale, fabs(b[(size_t)r * vocab + v]));
        }
        worst = fmax(worst, diff / scale);
    }
    return worst;
}

static int *token_list(int n, int vocab, unsigned seed) {
    int *t = malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) t[i] = (int)((seed + 2654435761u * (unsigned)(i + 1)) % (unsigned)vocab);
    return t;
}

static int *position_list(int first, int n) {
    int *p = malloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) p[i] = first + i;
    return p;
}

/* Engine logits for tokens at positions [first, first + n), all rows. */
static float *engine_logits(ss_model *m, const int *tokens, int first, int n) {
    int V = ss_model_config(m)->vocab_size, *pos = position_list(first, n);
    float *out = malloc((size_t)n * V * sizeof *out);
    ss_error err = {0};
    ss_status st = ss_model_forward(m, tokens, pos, n, out, false, &err);
    CHECK_MSG(st == SS_OK, "forward: %s", err.msg);
    free(pos);
    return out;
}

static float *reference_logits(const ck_model *ck, const int *tokens, int n, const int *sizes, ss_easyspec_mode mode,
                               ref_model *keep) {
    ref_model r;
    ref_init(&r, ck);
    float *out = malloc((size_t)n * ck->spec.vocab * sizeof *out);
    for (int i = 0; i < n; i++) ref_token(&r, tokens[i], i, sizes, mode, out + (size_t)i * ck->spec.vocab);
    if (keep)
        *keep = r;
    else
        ref_free(&r);
    return out;
}

static ss_model *load(const char *dir, int max_context) {
    ss_model_opts opts = {.dir = dir, .backend = SS_BACKEND_CPU, .max_context = max_context, .quiet = true};
    ss_model *m = NULL;
    ss_error err = {0};
    CHECK_MSG(ss_model_load(&opts, &m, &err) == SS_OK, "load %s: %s", dir, err.msg);
    return m;
}

/* ---------------------------------------------------------------- the exact model */

static size_t expected_weight_bytes(const ck_model *ck) {
    size_t floats = 0;
    for (int i = 0; i < ck->n; i++) {
        const ck_tensor *t = &ck->t[i];
        bool embed = strcmp(t->name, "model.embed_tokens.weight") == 0;
        floats += embed ? (size_t)t->cols * (ck->spec.tied ? t->rows + 1 : 1) : (size_t)t->rows * t->cols;
    }
    return floats * ss_dtype_size(ck->spec.dtype);
}

static void test_sequential(const char *label, const ck_spec *spec) {
    char dir[256];
    ck_model ck;
    if (ck_tempdir(dir, sizeof dir) || ck_write(dir, spec, &ck)) {
        CHECK_MSG(false, "%s: cannot write the checkpoint", label);
        return;
    }
    ss_model *m = load(dir, 0);
    if (!m) return;
    const ss_config *c = ss_model_config(m);
    int T = 20, V = c->vocab_size, kd = c->n_kv_heads * c->head_dim;
    CHECK(strcmp(ss_model_backend_name(m), "cpu") == 0);
    CHECK(ss_model_max_context(m) == 512);
    CHECK_MSG(ss_model_weight_bytes(m) == expected_weight_bytes(&ck), "%s: weight bytes %zu vs %zu", label,
              ss_model_weight_bytes(m), expected_weight_bytes(&ck));
    int *tokens = token_list(T, V, 11);
    ref_model r;
    float *ref = reference_logits(&ck, tokens, T, NULL, SS_EASYSPEC_ATTN, &r);

    float *batch = engine_logits(m, tokens, 0, T);
    double e = row_err(batch, ref, T, V);
    printf("%s: batched forward vs reference: %.3g\n", label, e);
    CHECK_MSG(e < 1e-4, "%s: batched forward vs reference: %g", label, e);

    /* The cache holds the reference's rotated K and V. */
    float *k = malloc((size_t)T * kd * sizeof *k), *v = malloc((size_t)T * kd * sizeof *v);
    ss_error err = {0};
    for (int l = 0; l < c->n_layers; l++) {
        CHECK(ss_model_read_kv(m, l, T, k, v, &err) == SS_OK);
        double dk = 0, dv = 0;
        for (int i = 0; i < T * kd; i++) {
            dk = fmax(dk, fabs(k[i] - r.kc[l][i]) / fmax(1.0, fabs(r.kc[l][i])));
            dv = fmax(dv, fabs(v[i] - r.vc[l][i]) / fmax(1.0, fabs(r.vc[l][i])));
        }
        CHECK_MSG(dk < 1e-4 && dv < 1e-4, "%s: layer %d cache off by %g / %g", label, l, dk, dv);
    }

    /* One position at a time gives the same logits. */
    float *single = malloc((size_t)T * V * sizeof *single);
    for (int i = 0; i < T; i++) {
        float *row = engine_logits(m, tokens + i, i, 1);
        memcpy(single + (size_t)i * V, row, (size_t)V * sizeof *row);
        free(row);
    }
    e = row_err(single, batch, T, V);
    CHECK_MSG(e < 1e-4, "%s: single steps vs batch: %g", label, e);

    /* Prefill 5, then a batch of 3 at positions 5..7. */
    free(engine_logits(m, tokens, 0, 5));
    float *three = engine_logits(m, tokens + 5, 5, 3);
    e = row_err(three, single + (size_t)5 * V, 3, V);
    CHECK_MSG(e < 1e-4, "%s: batch after prefill vs single steps: %g", label, e);

    /* last_only returns the last row. */
    int *pos = position_list(0, T);
    float *last = malloc((size_t)V * sizeof *last);
    CHECK(ss_model_forward(m, tokens, pos, T, last, true, &err) == SS_OK);
    CHECK(row_err(last, batch + (size_t)(T - 1) * V, 1, V) < 1e-5);

    free(pos);
    free(last);
    free(three);
    free(single);
    free(k);
    free(v);
    free(batch);
    free(ref);
    ref_free(&r);
    free(tokens);
    ss_model_free(m);
    ck_free(&ck);
    ck_remove(dir);
}

/* More positions than one ss_forward takes (256): ss_model_forward chunks them. */
static void test_long_prompt(const ck_spec *spec) {
    char dir[256];
    ck_model ck;
    if (ck_tempdir(dir, sizeof dir) || ck_write(dir, spec, &ck)) {
        CHECK_MSG(false, "long prompt: cannot write the checkpoint");
        return;
    }
    ss_model *m = load(dir, 0);
    int T = 300, V = spec->vocab, *tokens = token_list(T, V, 5);
    if (m) {
        float *ref = reference_logits(&ck, tokens, T, NULL, SS_EASYSPEC_ATTN, NULL);
        float *got = engine_logits(m, tokens, 0, T);
        double e = row_err(got, ref, T, V);
        CHECK_MSG(e < 1e-4, "300 positions vs reference: %g", e);
        free(ref);
        free(got);
        ss_model_free(m);
    }
    free(tokens);
    ck_free(&ck);
    ck_remove(dir);
}

/* ---------------------------------------------------------------- EasySpec plans */

static float *plan_logits(ss_model *m, const char *spec, ss_easyspec_mode mode, const int *tokens, int n) {
    ss_plan plan;
    ss_error err = {0};
    if (ss_plan_parse(m, spec, mode, &plan, &err) != SS_OK || ss_plan_prepare(m, &plan, &err) != SS_OK) {
        CHECK_MSG(false, "plan %s: %s", spec, err.msg);
        ss_plan_free(m, &plan);
        return NULL;
    }
    m->plan = &plan;
    float *out = engine_logits(m, tokens, 0, n);
    m->plan = NULL;
    ss_plan_free(m, &plan);
    CHECK(plan.groups == NULL && plan.n_groups == 0);
    return out;
}

static void test_plans(const char *label, const ck_spec *spec) {
    char dir[256];
    ck_model ck;
    if (ck_tempdir(dir, sizeof dir) || ck_write(dir, spec, &ck)) {
        CHECK_MSG(false, "%s: cannot write the checkpoint", label);
        return;
    }
    ss_model *m = load(dir, 0);
    if (!m) return;
    int T = 10, V = spec->vocab, L = spec->layers, *tokens = token_list(T, V, 3);
    float *exact = engine_logits(m, tokens, 0, T);

    float *ones = plan_logits(m, "1", SS_EASYSPEC_LAYER, tokens, T);
    if (ones) CHECK_MSG(row_err(ones, exact, T, V) < 1e-4, "%s: groups of 1 vs sequential", label);
    free(ones);

    /* "2" and an explicit uneven list, in both modes, against the reference's group semantics. */
    int pairs[16], uneven[16], n_pairs = 0;
    for (int l = 0; l < L; l += 2) pairs[n_pairs++] = L - l < 2 ? 1 : 2;
    char explicit_spec[64];
    uneven[0] = 1;
    uneven[1] = L - 1;
    snprintf(explicit_spec, sizeof explicit_spec, "0,1-%d", L - 1);
    struct {
        const char *spec;
        const int *sizes;
    } cases[] = {{"2", pairs}, {explicit_spec, uneven}};
    for (int c = 0; c < 2; c++)
        for (int mode = SS_EASYSPEC_ATTN; mode <= SS_EASYSPEC_LAYER; mode++) {
            float *got = plan_logits(m, cases[c].spec, (ss_easyspec_mode)mode, tokens, T);
            float *ref = reference_logits(&ck, tokens, T, cases[c].sizes, (ss_easyspec_mode)mode, NULL);
            if (got) {
                double e = row_err(got, ref, T, V), apart = row_err(got, exact, T, V);
                printf("%s: plan \"%s\" %s: vs reference %.3g, vs exact model %.3g\n", label, cases[c].spec,
                       mode == SS_EASYSPEC_ATTN ? "attn" : "layer", e, apart);
                CHECK_MSG(e < 1e-4, "%s: plan %s mode %d vs reference: %g", label, cases[c].spec, mode, e);
                CHECK_MSG(apart > 1e-3, "%s: plan %s mode %d is the exact model", label, cases[c].spec, mode);
            }
            free(got);
            free(ref);
        }

    /* After the plan is gone the model is exact again (the plan wrote its own KV; redo the prefix). */
    float *again = engine_logits(m, tokens, 0, T);
    CHECK(row_err(again, exact, T, V) < 1e-6);
    free(again);
    free(exact);
    free(tokens);
    ss_model_free(m);
    ck_free(&ck);
    ck_remove(dir);
}

static void test_plan_parse(const ck_spec *spec) {
    char dir[256];
    if (ck_tempdir(dir, sizeof dir) || ck_write(dir, spec, NULL)) {
        CHECK_MSG(false, "plan parse: cannot write the checkpoint");
        return;
    }
    ss_model *m = load(dir, 0); /* 4 layers */
    if (!m) return;
    ss_plan plan;
    ss_error err = {0};
    CHECK(ss_plan_parse(m, "3", SS_EASYSPEC_ATTN, &plan, &err) == SS_OK);
    CHECK(plan.n_groups == 2 && plan.groups[0].first == 0 && plan.groups[0].count == 3 && plan.groups[1].first == 3 &&
          plan.groups[1].count == 1);
    ss_plan_free(m, &plan);
    CHECK(ss_plan_parse(m, "0-1,2,3", SS_EASYSPEC_LAYER, &plan, &err) == SS_OK);
    CHECK(plan.n_groups == 3 && plan.groups[1].first == 2 && plan.groups[1].count == 1 && plan.mode == SS_EASYSPEC_LAYER);
    ss_plan_free(m, &plan);
    CHECK(ss_plan_parse(m, "9", SS_EASYSPEC_ATTN, &plan, &err) == SS_OK && plan.n_groups == 1 &&
          plan.groups[0].count == 4);
    ss_plan_free(m, &plan);

    struct {
        const char *spec, *culprit;
    } bad[] = {
        {"0-1,3", "\"3\""}, {"0-5", "\"0-5\""}, {"0-1,2", "layers 3-3"}, {"abc", "\"abc\""}, {"0", "\"0\""},
        {"1-0,2-3", "\"1-0\""}, {"0-1,,2-3", "\"\""}, {"", "empty"}, {"0-1,2-3x", "\"2-3x\""}, {"2-1", "\"2-1\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        ss_status st = ss_plan_parse(m, bad[i].spec, SS_EASYSPEC_ATTN, &plan, &err);
        CHECK_MSG(st == SS_EARG && strstr(err.msg, bad[i].culprit) && plan.groups == NULL, "\"%s\": %s", bad[i].spec,
                  err.msg);
    }
    ss_model_free(m);
    ck_remove(dir);
}

/* ---------------------------------------------------------------- failures */

static void expect_load_failure(const char *dir, ss_status status, const char *culprit) {
    ss_model_opts opts = {.dir = dir, .backend = SS_BACKEND_CPU, .quiet = true};
    ss_model *m = (ss_model *)&opts; /* must be reset to NULL */
    ss_error err = {0};
    ss_status st = ss_model_load(&opts, &m, &err);
    CHECK_MSG(st == status && m == NULL && strstr(err.msg, culprit), "load %s: want %s naming %s, got %s: %s", dir,
              ss_status_name(status), culprit, ss_status_name(st), err.msg);
}

static void test_bad_checkpoints(const ck_spec *base) {
    char dir[256], other[256], from[600], to[600];
    ck_spec s = *base;
    s.omit = "model.layers.1.mlp.up_proj.weight";
    if (!ck_tempdir(dir, sizeof dir) && !ck_write(dir, &s, NULL))
        expect_load_failure(dir, SS_EFORMAT, "model.layers.1.mlp.up_proj.weight");
    ck_remove(dir);

    s = *base;
    s.tied = false;
    s.omit = "lm_head.weight";
    if (!ck_tempdir(dir, sizeof dir) && !ck_write(dir, &s, NULL)) expect_load_failure(dir, SS_EFORMAT, "lm_head.weight");
    ck_remove(dir);

    /* A config that disagrees with the tensors: the mismatching tensor is named. */
    s = *base;
    ck_spec wider = *base;
    wider.intermediate += 8;
    if (!ck_tempdir(dir, sizeof dir) && !ck_write(dir, &s, NULL) && !ck_tempdir(other, sizeof other) &&
        !ck_write(other, &wider, NULL)) {
        snprintf(from, sizeof from, "%s/config.json", other);
        snprintf(to, sizeof to, "%s/config.json", dir);
        CHECK(rename(from, to) == 0);
        expect_load_failure(dir, SS_EFORMAT, "model.layers.0.mlp.gate_proj.weight");
        ck_remove(other);
    }
    ck_remove(dir);

    expect_load_failure("/nonexistent/specscope-model", SS_EIO, "config.json");

    ss_model_opts opts = {.dir = "/tmp", .max_context = -1, .quiet = true};
    ss_model *m;
    ss_error err = {0};
    CHECK(ss_model_load(&opts, &m, &err) == SS_EARG && m == NULL);
}

static void test_bad_arguments(const ck_spec *spec) {
    char dir[256];
    if (ck_tempdir(dir, sizeof dir) || ck_write(dir, spec, NULL)) return;
    ss_model *m = load(dir, 16);
    if (m) {
        CHECK(ss_model_max_context(m) == 16);
        int tok[2] = {1, spec->vocab}, pos[2] = {0, 1}, good[2] = {1, 2};
        float *logits = malloc((size_t)2 * spec->vocab * sizeof *logits);
        ss_error err = {0};
        CHECK(ss_model_forward(m, tok, pos, 2, logits, false, &err) == SS_EARG && strstr(err.msg, "token id"));
        int far[2] = {0, 16};
        CHECK(ss_model_forward(m, good, far, 2, logits, false, &err) == SS_EARG && strstr(err.msg, "position 16"));
        CHECK(ss_model_forward(m, good, pos, 0, logits, false, &err) == SS_EARG);
        CHECK(ss_model_forward(m, good, pos, 2, NULL, false, &err) == SS_OK); /* no logits wanted */
        float kv[64 * 16];
        CHECK(ss_model_read_kv(m, spec->layers, 1, kv, kv, &err) == SS_EARG && strstr(err.msg, "layer"));
        CHECK(ss_model_read_kv(m, 0, 17, kv, kv, &err) == SS_EARG);
        free(logits);
        ss_model_free(m);
    }
    ck_remove(dir);
}

int main(void) {
    ck_spec llama = {.arch = "llama", .vocab = 97, .hidden = 64, .intermediate = 96, .layers = 3, .heads = 4,
                     .kv_heads = 2, .dtype = SS_F32, .rope = SS_ROPE_LLAMA3, .rope_factor = 8, .rope_low = 1,
                     .rope_high = 4, .rope_original = 64, .seed = 1};
    ck_spec qwen2 = {.arch = "qwen2", .vocab = 101, .hidden = 48, .intermediate = 80, .layers = 4, .heads = 4,
                     .kv_heads = 1, .dtype = SS_BF16, .tied = true, .rope_theta = 1e6f, .seed = 2};
    ck_spec qwen3 = {.arch = "qwen3", .vocab = 89, .hidden = 64, .intermediate = 64, .layers = 4, .heads = 4,
                     .kv_heads = 2, .head_dim = 24, .dtype = SS_BF16, .rope = SS_ROPE_LINEAR, .rope_factor = 2,
                     .seed = 3};
    ck_spec mistral = {.arch = "mistral", .vocab = 64, .hidden = 32, .intermediate = 48, .layers = 2, .heads = 2,
                       .kv_heads = 2, .dtype = SS_F16, .seed = 4};
    test_sequential("llama f32 gqa llama3-rope", &llama);
    test_sequential("qwen2 bf16 bias tied", &qwen2);
    test_sequential("qwen3 bf16 qk-norm head_dim 24", &qwen3);
    test_sequential("mistral f16", &mistral);
    test_long_prompt(&qwen2);
    test_plans("llama f32", &llama);
    test_plans("qwen2 bf16", &qwen2);
    test_plans("qwen3 bf16", &qwen3);
    test_plan_parse(&qwen2);
    test_bad_checkpoints(&mistral);
    test_bad_arguments(&mistral);
    return check_done();
}
