/* test_spec.c — speculative decoding: greedy output identical to plain decoding (every draft kind,
 * k = 1..8, EasySpec on and off), the lossless sampling rule (a chi-square test that also rejects
 * a deliberately wrong sampler), KV rollback, and the vocabulary check. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "spec.h"
#include "core_checkpoint.h"

/* ---------------------------------------------------------------- statistics */

/* Chi-square critical value at upper tail 1e-6 (Wilson-Hilferty); a correct sampler fails it about
 * once in a million runs. */
static double chi2_critical(int dof) {
    double z = 4.753, a = 2.0 / (9.0 * dof);
    double c = 1 - a + z * sqrt(a);
    return dof * c * c * c;
}

/* Pearson's statistic of counts against probabilities, cells with expected < 5 pooled. */
static double chi2(const long *counts, const double *probs, int cells, long n, int *dof) {
    double stat = 0, pool_e = 0, pool_o = 0;
    *dof = -1;
    for (int i = 0; i < cells; i++) {
        double e = probs[i] * n;
        if (e < 5) {
            pool_e += e;
            pool_o += counts[i];
            continue;
        }
        stat += (counts[i] - e) * (counts[i] - e) / e;
        (*dof)++;
    }
    if (pool_e > 0) {
        stat += (pool_o - pool_e) * (pool_o - pool_e) / (pool_e > 1e-9 ? pool_e : 1e-9);
        (*dof)++;
    }
    return stat;
}

static void random_dist(float *p, int v, ss_rng *rng) {
    double s = 0;
    for (int i = 0; i < v; i++) s += p[i] = (float)(0.05 + ss_rng_uniform(rng));
    for (int i = 0; i < v; i++) p[i] = (float)(p[i] / s);
}

/* The wrong sampler the test must catch: on rejection it draws from p instead of the residual. */
static int accept_without_residual(const float *p, const float *q, int vocab, int d, ss_rng *rng) {
    double u = ss_rng_uniform(rng);
    if (u * q[d] < p[d]) return -1;
    return ss_sample_from(p, vocab, rng);
}

typedef int (*accept_fn)(const float *, const float *, int, int, ss_rng *);

/* First two tokens of speculative sampling with k = 2 over synthetic conditionals:
 * p1, q1 for the first position, p2[t], q2[t] for the second given the first token t. */
#define V 5
static void two_tokens(accept_fn accept, const float p1[V], const float q1[V], const float p2[V][V],
                       const float q2[V][V], ss_rng *rng, int out[2]) {
    int d1 = ss_sample_from(q1, V, rng), d2 = ss_sample_from(q2[d1], V, rng);
    int r = accept(p1, q1, V, d1, rng);
    if (r >= 0) { /* first draft rejected: the next round drafts afresh after r */
        out[0] = r;
        int d = ss_sample_from(q2[r], V, rng);
        int r2 = accept(p2[r], q2[r], V, d, rng);
        out[1] = r2 >= 0 ? r2 : d;
        return;
    }
    out[0] = d1;
    int r2 = accept(p2[d1], q2[d1], V, d2, rng);
    out[1] = r2 >= 0 ? r2 : d2;
}

static double two_token_chi2(accept_fn accept, int *dof) {
    ss_rng rng;
    ss_rng_seed(&rng, 7);
    float p1[V], q1[V], p2[V][V], q2[V][V];
    random_dist(p1, V, &rng);
    random_dist(q1, V, &rng);
    for (int t = 0; t < V; t++) {
        random_dist(p2[t], V, &rng);
        random_dist(q2[t], V, &rng);
    }
    long counts[V * V] = {0}, n = 200000;
    double exact[V * V];
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++) exact[a * V + b] = (double)p1[a] * p2[a][b];
    for (long i = 0; i < n; i++) {
        int t[2];
        two_tokens(accept, p1, q1, p2, q2, &rng, t);
        counts[t[0] * V + t[1]]++;
    }
    return chi2(counts, exact, V * V, n, dof);
}

static void test_accept_rule(void) {
    int dof;
    double good = two_token_chi2(ss_spec_accept, &dof);
    CHECK_MSG(good < chi2_critical(dof), "engine sampler chi2 %.1f >= %.1f (dof %d)", good, chi2_critical(dof), dof);
    double bad = two_token_chi2(accept_without_residual, &dof);
    CHECK_MSG(bad > chi2_critical(dof), "wrong sampler not rejected: chi2 %.1f <= %.1f", bad, chi2_critical(dof));
}

static void test_ngram(void) {
    int out[8];
    int ids[] = {5, 6, 7, 8, 9, 5, 6, 7};
    CHECK(ss_ngram_propose(ids, 8, 3, 4, out) == 4 && out[0] == 8 && out[1] == 9 && out[2] == 5 && out[3] == 6);
    int ids2[] = {1, 2, 3, 1, 2, 4, 1, 2};
    CHECK(ss_ngram_propose(ids2, 8, 3, 2, out) == 2 && out[0] == 4 && out[1] == 1); /* most recent match */
    int ids3[] = {1, 2, 3};
    CHECK(ss_ngram_propose(ids3, 3, 3, 4, out) == 0);
}

/* ---------------------------------------------------------------- with models */

typedef struct {
    char dir[4096], target[4200], draft[4200], tiny_target[4200], tiny_draft[4200];
} model_dirs;

static ss_model *load(const char *dir) {
    ss_model_opts o = {.dir = dir, .backend = SS_BACKEND_CPU, .max_context = 256, .quiet = true};
    ss_model *m = NULL;
    ss_error err;
    if (ss_model_load(&o, &m, &err)) fprintf(stderr, "load %s: %s\n", dir, err.msg);
    return m;
}

static int make_models(model_dirs *d) {
    if (ck_tempdir(d->dir, sizeof d->dir)) return -1;
    snprintf(d->target, sizeof d->target, "%s/target", d->dir);
    snprintf(d->draft, sizeof d->draft, "%s/draft", d->dir);
    snprintf(d->tiny_target, sizeof d->tiny_target, "%s/tiny_target", d->dir);
    snprintf(d->tiny_draft, sizeof d->tiny_draft, "%s/tiny_draft", d->dir);
    ck_spec t = {.arch = "llama", .vocab = 64, .hidden = 32, .intermediate = 64, .layers = 4, /* EasySpec groups of 2, 4 */
                 .heads = 4, .kv_heads = 2, .dtype = SS_F32, .tied = true, .rope_theta = 10000, .max_position = 512,
                 .seed = 1};
    ck_spec dr = t;
    dr.layers = 3;
    dr.noise = 0.3f;
    dr.noise_seed = 9;
    /* A vocabulary of 6 for the sampling test: few enough cells to count pairs. */
    ck_spec st = t, sd;
    st.vocab = 6;
    st.layers = 2;
    sd = st;
    sd.layers = 1;
    sd.noise = 0.5f;
    sd.noise_seed = 3;
    return ck_write(d->target, &t, NULL) || ck_write(d->draft, &dr, NULL) || ck_write(d->tiny_target, &st, NULL) ||
           ck_write(d->tiny_draft, &sd, NULL);
}

static ss_status generate(ss_model *target, ss_model *draft, ss_draft_kind kind, const ss_plan *plan, ss_kv_state *kv,
                          const int *prompt, int n, const ss_params *p, const ss_callbacks *cb, ss_result *r) {
    ss_generator g = {.target = target, .draft = draft, .draft_kind = kind, .draft_plan = plan,
                      .vocab = ss_model_config(target)->vocab_size};
    ss_error err;
    ss_status st = ss_generate(&g, kv, prompt, n, p, cb, r, &err);
    if (st && st != SS_ESTOPPED) fprintf(stderr, "generate: %s\n", err.msg);
    return st;
}

static const int prompts[3][6] = {{3, 17, 22, 9, 40, 41}, {5, 5, 5, 5, 12, 13}, {60, 2, 33, 33, 2, 60}};

static bool same_tokens(const ss_result *a, const ss_result *b) {
    return a->tokens.n == b->tokens.n && !memcmp(a->tokens.ids, b->tokens.ids, (size_t)a->tokens.n * sizeof(int));
}

/* Greedy speculative output equals plain greedy output for every draft configuration: each
 * EasySpec plan in plans (NULL: none) in both modes, k = 1..8, and prompt lookup. */
static void test_greedy_identity(ss_model *target, ss_model *draft, const char *const *plans, int n_plans,
                                 int n_prompts, bool expect_rejections) {
    ss_params p;
    ss_params_default(&p);
    p.max_tokens = 40;
    p.stop_at_eos = false;
    long accepted = 0, proposed = 0;
    for (int i = 0; i < n_prompts; i++) {
        ss_kv_state kv0 = {0};
        ss_result plain;
        if (generate(target, NULL, SS_DRAFT_NONE, NULL, &kv0, prompts[i], 6, &p, NULL, &plain)) {
            CHECK(0);
            return;
        }
        CHECK(plain.tokens.n == 40 && plain.stats.steps == 39);
        for (int pi = 0; pi < n_plans; pi++) {
            for (int mode = 0; mode < (plans[pi] ? 2 : 1); mode++) {
                ss_plan plan = {0};
                ss_error err;
                if (plans[pi] && (ss_plan_parse(draft, plans[pi], (ss_easyspec_mode)mode, &plan, &err) ||
                                  ss_plan_prepare(draft, &plan, &err))) {
                    CHECK_MSG(0, "plan %s: %s", plans[pi], err.msg);
                    continue;
                }
                for (int k = 1; k <= 8; k++) {
                    ss_params q = p;
                    q.k = k;
                    ss_kv_state kv = {0};
                    ss_result r;
                    if (generate(target, draft, SS_DRAFT_MODEL, plans[pi] ? &plan : NULL, &kv, prompts[i], 6, &q, NULL,
                                 &r) == SS_OK) {
                        CHECK_MSG(same_tokens(&r, &plain), "prompt %d plan %s mode %d k %d differs", i,
                                  plans[pi] ? plans[pi] : "none", mode, k);
                        CHECK(r.stats.has_draft && r.stats.accepted <= r.stats.proposed);
                        accepted += r.stats.accepted;
                        proposed += r.stats.proposed;
                        ss_result_free(&r);
                    } else {
                        CHECK(0);
                    }
                    ss_kv_state_free(&kv);
                }
                if (plans[pi]) ss_plan_free(draft, &plan);
            }
        }
        for (int k = 1; k <= 8; k++) { /* prompt lookup */
            ss_params q = p;
            q.k = k;
            ss_kv_state kv = {0};
            ss_result r;
            if (generate(target, NULL, SS_DRAFT_NGRAM, NULL, &kv, prompts[i], 6, &q, NULL, &r) == SS_OK) {
                CHECK_MSG(same_tokens(&r, &plain), "prompt %d ngram k %d differs", i, k);
                ss_result_free(&r);
            }
            ss_kv_state_free(&kv);
        }
        ss_result_free(&plain);
        ss_kv_state_free(&kv0);
    }
    /* Both the accept and the reject paths ran. */
    CHECK_MSG(accepted > 0 && (!expect_rejections || accepted < proposed), "accepted %ld of %ld", accepted, proposed);
}

/* Stop right after the first round that rejected a draft token. */
static void stop_on_reject(void *ud, const ss_step *step) {
    if (step->accepted < step->proposed) *(volatile int *)ud = 1;
}

static double kv_diff(ss_model *a, ss_model *b, int len) {
    const ss_config *c = ss_model_config(a);
    size_t n = (size_t)len * c->n_kv_heads * c->head_dim;
    float *ka = malloc(n * 4), *va = malloc(n * 4), *kb = malloc(n * 4), *vb = malloc(n * 4);
    double worst = 0;
    ss_error err;
    for (int l = 0; l < c->n_layers; l++) {
        if (ss_model_read_kv(a, l, len, ka, va, &err) || ss_model_read_kv(b, l, len, kb, vb, &err)) {
            worst = INFINITY;
            break;
        }
        for (size_t i = 0; i < n; i++) {
            worst = fmax(worst, fabs(ka[i] - kb[i]) / fmax(1.0, fabs(kb[i])));
            worst = fmax(worst, fabs(va[i] - vb[i]) / fmax(1.0, fabs(vb[i])));
        }
    }
    free(ka), free(va), free(kb), free(vb);
    return worst;
}

/* After a rejected round each cache equals a fresh run over the ids it claims to hold. */
static void test_rollback(const model_dirs *d, ss_model *target, ss_model *draft, bool easyspec) {
    ss_params p;
    ss_params_default(&p);
    p.max_tokens = 60;
    p.stop_at_eos = false;
    p.k = 5;
    volatile int stop = 0;
    ss_callbacks cb = {.on_step = stop_on_reject, .ud = (void *)&stop, .stop = &stop};
    ss_plan plan = {0};
    ss_error err;
    if (easyspec && (ss_plan_parse(draft, "2", SS_EASYSPEC_LAYER, &plan, &err) || ss_plan_prepare(draft, &plan, &err))) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    ss_kv_state kv = {0};
    ss_result r;
    ss_status st = generate(target, draft, SS_DRAFT_MODEL, easyspec ? &plan : NULL, &kv, prompts[0], 6, &p, &cb, &r);
    CHECK(st == SS_ESTOPPED && r.stats.accepted < r.stats.proposed);
    ss_model *fresh_t = load(d->target), *fresh_d = load(d->draft);
    if (fresh_t && fresh_d) {
        int pos[256];
        for (int i = 0; i < 256; i++) pos[i] = i;
        CHECK(ss_model_forward(fresh_t, kv.target_ids.ids, pos, kv.target_ids.n, NULL, false, &err) == SS_OK);
        CHECK(ss_model_forward(fresh_d, kv.draft_ids.ids, pos, kv.draft_ids.n, NULL, false, &err) == SS_OK);
        /* The target holds everything but the pending token; the draft is at most one behind. */
        CHECK(kv.target_ids.n == 6 + r.tokens.n - 1);
        CHECK(kv.draft_ids.n >= kv.target_ids.n - 1);
        double dt = kv_diff(target, fresh_t, kv.target_ids.n), dd = kv_diff(draft, fresh_d, kv.draft_ids.n);
        CHECK_MSG(dt < 1e-4, "target KV differs by %g after rollback", dt);
        CHECK_MSG(dd < 1e-4, "draft KV differs by %g after rollback%s", dd, easyspec ? " and calibration" : "");
    } else {
        CHECK(0);
    }
    if (fresh_t) ss_model_free(fresh_t);
    if (fresh_d) ss_model_free(fresh_d);
    ss_result_free(&r);
    ss_kv_state_free(&kv);
    if (easyspec) ss_plan_free(draft, &plan);
}

/* End to end: the first two tokens of speculative sampling follow the target's exact distribution. */
static void test_sampling_lossless(const model_dirs *d) {
    ss_model *t = load(d->tiny_target), *dr = load(d->tiny_draft);
    if (!t || !dr) {
        CHECK(0);
        if (t) ss_model_free(t);
        if (dr) ss_model_free(dr);
        return;
    }
    enum { TV = 6 };
    int prompt[3] = {1, 4, 2};
    ss_params p;
    ss_params_default(&p);
    p.sampling.temperature = 1.0f;
    p.max_tokens = 2;
    p.stop_at_eos = false;
    p.k = 2;
    /* Exact joint distribution of (t1, t2) from the target alone. */
    double exact[TV * TV];
    float logits[TV], p1[TV], p2[TV];
    int ids[4] = {1, 4, 2, 0}, pos[4] = {0, 1, 2, 3};
    ss_error err;
    CHECK(ss_model_forward(t, ids, pos, 3, logits, true, &err) == SS_OK);
    ss_sampling_probs(&p.sampling, logits, TV, ids, 3, p1);
    for (int a = 0; a < TV; a++) {
        ids[3] = a;
        CHECK(ss_model_forward(t, ids + 3, pos + 3, 1, logits, true, &err) == SS_OK);
        ss_sampling_probs(&p.sampling, logits, TV, ids, 4, p2);
        for (int b = 0; b < TV; b++) exact[a * TV + b] = (double)p1[a] * p2[b];
    }
    long counts[TV * TV] = {0}, n = 20000, accepted = 0, proposed = 0;
    for (long i = 0; i < n; i++) {
        p.sampling.seed = (uint64_t)i + 1;
        ss_kv_state kv = {0};
        ss_result r;
        if (generate(t, dr, SS_DRAFT_MODEL, NULL, &kv, prompt, 3, &p, NULL, &r) == SS_OK && r.tokens.n == 2) {
            counts[r.tokens.ids[0] * TV + r.tokens.ids[1]]++;
            accepted += r.stats.accepted;
            proposed += r.stats.proposed;
        }
        ss_result_free(&r);
        ss_kv_state_free(&kv);
    }
    int dof;
    double x = chi2(counts, exact, TV * TV, n, &dof);
    CHECK_MSG(x < chi2_critical(dof), "speculative sampling chi2 %.1f >= %.1f (dof %d)", x, chi2_critical(dof), dof);
    CHECK_MSG(accepted > 0 && accepted < proposed, "accepted %ld of %ld", accepted, proposed);
    ss_model_free(t);
    ss_model_free(dr);
}

static void test_vocab_mismatch(const model_dirs *d) {
    char other[4300];
    snprintf(other, sizeof other, "%s/other_vocab", d->dir);
    ck_spec s = {.arch = "llama", .vocab = 48, .hidden = 32, .intermediate = 64, .layers = 2, .heads = 4, .kv_heads = 2,
                 .dtype = SS_F32, .tied = true, .rope_theta = 10000, .max_position = 512, .seed = 5};
    CHECK(ck_write(other, &s, NULL) == 0);
    ss_session_opts o = {.model_dir = d->target, .draft_dir = other, .backend = SS_BACKEND_CPU, .quiet = true};
    ss_session *sess = NULL;
    ss_error err = {0};
    CHECK(ss_session_open(&o, &sess, &err) == SS_EARG && !sess);
    CHECK_MSG(strstr(err.msg, "other_vocab") && strstr(err.msg, "vocab"), "%s", err.msg);
}

/* The same on checkpoints written by transformers: each f32 fixture drafted by its own bf16 copy
 * (same vocabulary), and the bundled demo pair. */
static void test_real_pairs(void) {
    static const char *const fixtures[] = {"llama", "llama3rope", "mistral", "qwen2", "qwen3"};
    static const char *const two_plans[] = {NULL, "2"};
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        char t[1024], dr[1024];
        snprintf(t, sizeof t, "%s/%s-f32", FIXTURES_DIR, fixtures[i]);
        snprintf(dr, sizeof dr, "%s/%s-bf16", FIXTURES_DIR, fixtures[i]);
        ss_model *target = load(t), *draft = load(dr);
        CHECK_MSG(target && draft, "fixture pair %s", fixtures[i]);
        if (target && draft) test_greedy_identity(target, draft, two_plans, 2, 1, false);
        if (target) ss_model_free(target);
        if (draft) ss_model_free(draft);
    }
    char t[1024], dr[1024];
    snprintf(t, sizeof t, "%s/models/demo/target", SOURCE_DIR);
    snprintf(dr, sizeof dr, "%s/models/demo/draft", SOURCE_DIR);
    ss_model *target = load(t), *draft = load(dr);
    CHECK_MSG(target && draft, "the demo pair");
    static const char *const demo_plans[] = {NULL, "2", "0,1,2-3"};
    if (target && draft) test_greedy_identity(target, draft, demo_plans, 3, 1, true);
    if (target) ss_model_free(target);
    if (draft) ss_model_free(draft);
}

/* Plain decoding (k = 0) with an EasySpec plan set never runs the draft: nothing was drafted with
 * the plan, so there is nothing to calibrate (a bench's plain row once paid a draft forward a token). */
static void test_plain_with_plan(ss_model *target, ss_model *draft) {
    ss_params p;
    ss_params_default(&p);
    p.max_tokens = 12;
    p.stop_at_eos = false;
    p.k = 0;
    ss_plan plan = {0};
    ss_error err;
    if (ss_plan_parse(draft, "2", SS_EASYSPEC_LAYER, &plan, &err) || ss_plan_prepare(draft, &plan, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    ss_kv_state kv = {0}, kv_plain = {0};
    ss_result r, plain;
    CHECK(generate(target, draft, SS_DRAFT_MODEL, &plan, &kv, prompts[0], 6, &p, NULL, &r) == SS_OK);
    CHECK(generate(target, draft, SS_DRAFT_MODEL, NULL, &kv_plain, prompts[0], 6, &p, NULL, &plain) == SS_OK);
    CHECK_MSG(kv.draft_ids.n == 0, "the draft ran over %d positions in plain decoding", kv.draft_ids.n);
    CHECK(same_tokens(&r, &plain));
    ss_result_free(&r);
    ss_result_free(&plain);
    ss_kv_state_free(&kv);
    ss_kv_state_free(&kv_plain);
    ss_plan_free(draft, &plan);
}

int main(void) {
    test_accept_rule();
    test_ngram();
    model_dirs d;
    if (make_models(&d)) {
        fprintf(stderr, "could not write test models\n");
        return 1;
    }
    ss_model *target = load(d.target), *draft = load(d.draft);
    CHECK(target && draft);
    if (target && draft) {
        static const char *const plans[] = {NULL, "2", "4", "0-1,2", "0,1-2"};
        test_greedy_identity(target, draft, plans, 5, 3, true);
        test_rollback(&d, target, draft, false);
        test_rollback(&d, target, draft, true);
        test_plain_with_plan(target, draft);
    }
    if (target) ss_model_free(target);
    if (draft) ss_model_free(draft);
    test_sampling_lossless(&d);
    test_vocab_mismatch(&d);
    test_real_pairs();
    ck_remove(d.dir);
    return check_done();
}
