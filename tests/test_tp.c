/* test_tp.c — tensor parallelism on CPU ranks (engine/tp.h, model.h): a model split over tp = 2 or 4
 * ranks computes the logits of the unsplit model (within 1e-4 of the largest logit), decodes the same
 * greedy continuation, keeps the same KV cache (read back across the shards, after a speculative
 * rollback too), and with a single-device draft still gives plain greedy output. The reference is
 * the tp = 1 forward, which test_fixtures checks against transformers. Also: the host communicator's
 * sums, and the one-line errors for a tp that does not divide the geometry and for EasySpec plans
 * on a split model. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core_checkpoint.h"
#include "spec.h"

#define CTX 256
#define PROMPT 12
#define CONTINUATION 32

static ss_model *load_tp(const char *dir, int tp) {
    ss_model_opts o = {.dir = dir, .backend = SS_BACKEND_CPU, .max_context = CTX, .quiet = true, .tp = tp};
    ss_model *m = NULL;
    ss_error err;
    if (ss_model_load(&o, &m, &err)) fprintf(stderr, "load %s with tp %d: %s\n", dir, tp, err.msg);
    return m;
}

/* max |a - b| over the largest |b|: the error relative to the scale of the logits. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    double e = worst / scale;
    return isfinite(e) ? e : INFINITY;
}

static void prompt_ids(int *ids, int n, int vocab, int salt) {
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + salt * 11 + 5) % vocab;
}

/* Every row of a PROMPT-token prefill, then one decode step at position PROMPT (attention over the
 * sharded cache). */
static void check_logits(ss_model *ref, ss_model *split, const char *what) {
    int vocab = ss_model_config(ref)->vocab_size, ids[PROMPT + 1], pos[PROMPT + 1];
    prompt_ids(ids, PROMPT + 1, vocab, 1);
    for (int i = 0; i <= PROMPT; i++) pos[i] = i;
    size_t n = (size_t)PROMPT * vocab;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    ss_error err;
    bool ok = ss_model_forward(ref, ids, pos, PROMPT, b, false, &err) == SS_OK &&
              ss_model_forward(split, ids, pos, PROMPT, a, false, &err) == SS_OK;
    CHECK_MSG(ok, "%s: prefill: %s", what, err.msg);
    if (ok) CHECK_MSG(rel_diff(a, b, n) < 1e-4, "%s: prefill logits differ by %g", what, rel_diff(a, b, n));
    ok = ok && ss_model_forward(ref, ids + PROMPT, pos + PROMPT, 1, b, true, &err) == SS_OK &&
         ss_model_forward(split, ids + PROMPT, pos + PROMPT, 1, a, true, &err) == SS_OK;
    CHECK_MSG(ok, "%s: decode: %s", what, err.msg);
    if (ok) CHECK_MSG(rel_diff(a, b, (size_t)vocab) < 1e-4, "%s: decode logits differ by %g", what, rel_diff(a, b, (size_t)vocab));
    free(a);
    free(b);
}

/* Largest relative difference between two models' K and V over positions [0, len) of every layer. */
static double kv_diff(ss_model *a, ss_model *b, int len) {
    const ss_config *c = ss_model_config(a);
    size_t n = (size_t)len * c->n_kv_heads * c->head_dim;
    float *ka = malloc(n * 4), *va = malloc(n * 4), *kb = malloc(n * 4), *vb = malloc(n * 4);
    double worst = 0;
    ss_error err;
    for (int l = 0; l < c->n_layers && worst < INFINITY; l++) {
        if (ss_model_read_kv(a, l, len, ka, va, &err) || ss_model_read_kv(b, l, len, kb, vb, &err)) {
            fprintf(stderr, "read_kv: %s\n", err.msg);
            worst = INFINITY;
            break;
        }
        worst = fmax(worst, fmax(rel_diff(ka, kb, n), rel_diff(va, vb, n)));
    }
    free(ka), free(va), free(kb), free(vb);
    return worst;
}

static ss_status generate(ss_model *target, ss_model *draft, ss_kv_state *kv, const int *prompt, const ss_params *p,
                          const ss_callbacks *cb, ss_result *r) {
    ss_generator g = {.target = target, .draft = draft, .draft_kind = draft ? SS_DRAFT_MODEL : SS_DRAFT_NONE,
                      .vocab = ss_model_config(target)->vocab_size};
    ss_error err;
    ss_status st = ss_generate(&g, kv, prompt, PROMPT, p, cb, r, &err);
    if (st && st != SS_ESTOPPED) fprintf(stderr, "generate: %s\n", err.msg);
    return st;
}

static bool same_tokens(const ss_result *a, const ss_result *b) {
    return a->tokens.n == b->tokens.n && !memcmp(a->tokens.ids, b->tokens.ids, (size_t)a->tokens.n * sizeof(int));
}

static void greedy_params(ss_params *p, int k) {
    ss_params_default(p);
    p->max_tokens = CONTINUATION;
    p->stop_at_eos = false;
    p->k = k;
}

/* Greedy continuations of the split model, plain and with the draft at k = 1..5, equal the unsplit
 * model's plain one; its KV cache then equals the unsplit model's. */
static void check_greedy(ss_model *ref, ss_model *split, ss_model *draft, const char *what) {
    int prompt[PROMPT];
    prompt_ids(prompt, PROMPT, ss_model_config(ref)->vocab_size, 2);
    ss_params p;
    greedy_params(&p, 0);
    ss_kv_state kr = {0}, ks = {0};
    ss_result plain, split_plain;
    if (generate(ref, NULL, &kr, prompt, &p, NULL, &plain) || generate(split, NULL, &ks, prompt, &p, NULL, &split_plain)) {
        CHECK_MSG(0, "%s: plain generation failed", what);
        return;
    }
    CHECK(plain.tokens.n == CONTINUATION);
    CHECK_MSG(same_tokens(&split_plain, &plain), "%s: greedy continuation differs", what);
    CHECK_MSG(kv_diff(split, ref, kr.target_ids.n) < 1e-4, "%s: KV cache differs by %g", what,
              kv_diff(split, ref, kr.target_ids.n));
    long proposed = 0, accepted = 0;
    for (int k = 1; draft && k <= 5; k++) {
        ss_params q;
        greedy_params(&q, k);
        ss_kv_state kv = {0};
        ss_result r;
        if (generate(split, draft, &kv, prompt, &q, NULL, &r) == SS_OK) {
            CHECK_MSG(same_tokens(&r, &plain), "%s: speculative k %d differs from plain greedy", what, k);
            proposed += r.stats.proposed;
            accepted += r.stats.accepted;
            ss_result_free(&r);
        } else {
            CHECK(0);
        }
        ss_kv_state_free(&kv);
    }
    if (draft) CHECK_MSG(proposed > 0 && accepted > 0, "%s: accepted %ld of %ld", what, accepted, proposed);
    ss_result_free(&plain);
    ss_result_free(&split_plain);
    ss_kv_state_free(&kr);
    ss_kv_state_free(&ks);
}

/* Stop right after the first round that rejected a draft token. */
static void stop_on_reject(void *ud, const ss_step *step) {
    if (step->accepted < step->proposed) *(volatile int *)ud = 1;
}

/* After a rejected round the split target's cache equals a fresh unsplit run over the ids it holds. */
static void check_rollback(const char *dir, ss_model *split, ss_model *draft, const char *what) {
    int prompt[PROMPT];
    prompt_ids(prompt, PROMPT, ss_model_config(split)->vocab_size, 3);
    ss_params p;
    greedy_params(&p, 5);
    p.max_tokens = 60;
    volatile int stop = 0;
    ss_callbacks cb = {.on_step = stop_on_reject, .ud = (void *)&stop, .stop = &stop};
    ss_kv_state kv = {0};
    ss_result r;
    ss_status st = generate(split, draft, &kv, prompt, &p, &cb, &r);
    CHECK_MSG(st == SS_ESTOPPED && r.stats.accepted < r.stats.proposed, "%s: no rejected round to roll back", what);
    ss_model *fresh = load_tp(dir, 1);
    int pos[CTX];
    for (int i = 0; i < CTX; i++) pos[i] = i;
    ss_error err;
    if (fresh && ss_model_forward(fresh, kv.target_ids.ids, pos, kv.target_ids.n, NULL, false, &err) == SS_OK) {
        double d = kv_diff(split, fresh, kv.target_ids.n);
        CHECK_MSG(d < 1e-4, "%s: KV differs by %g after rollback", what, d);
    } else {
        CHECK(0);
    }
    ss_model_free(fresh);
    if (st == SS_OK || st == SS_ESTOPPED) ss_result_free(&r);
    ss_kv_state_free(&kv);
}

/* ---------------------------------------------------------------- cases */

static void test_host_comm(void) {
    ss_tp_comm *c;
    ss_error err;
    CHECK(ss_tp_comm_host_create(3, &c, &err) == SS_OK);
    float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40}, d[4] = {0.5f, -2, 0, 100};
    float *bufs[3] = {a, b, d};
    ss_backend *none[3] = {NULL, NULL, NULL};
    c->ops->all_reduce_sum(c, none, bufs, NULL, 4);
    const float want[4] = {11.5f, 20, 33, 144};
    for (int i = 0; i < 4; i++) CHECK(a[i] == want[i] && b[i] == want[i] && d[i] == want[i]);
    /* With into: each rank's destination gets the sum added (the residual stream of a layer). */
    float x0[4] = {1, 1, 1, 1}, x1[4] = {-1, 0, 2, 0.25f}, x2[4] = {0, 0, 0, 0};
    float *into[3] = {x0, x1, x2};
    const float a2[4] = {1, 2, 3, 4}, b2[4] = {10, 20, 30, 40}, d2[4] = {0.5f, -2, 0, 100};
    memcpy(a, a2, sizeof a), memcpy(b, b2, sizeof b), memcpy(d, d2, sizeof d);
    c->ops->all_reduce_sum(c, none, bufs, into, 4);
    for (int i = 0; i < 4; i++)
        CHECK(x0[i] == 1 + want[i] && x1[i] == (i == 0 ? -1 : i == 2 ? 2 : i == 3 ? 0.25f : 0) + want[i] &&
              x2[i] == want[i]);
    CHECK(ss_tp_comm_check(c, &err) == SS_OK);
    ss_tp_comm_free(c);
    CHECK(ss_tp_comm_host_create(SS_MAX_TP + 1, &c, &err) == SS_EARG && !c && strstr(err.msg, "9 ranks"));
}

/* Each fixture (4 heads, 2 kv heads): tp = 2 against tp = 1, in f32 and bf16 (whose row-parallel
 * shards are converted). */
static void test_fixtures(void) {
    static const char *const names[] = {"llama-f32",  "llama-bf16",  "llama3rope-f32", "mistral-f32",
                                        "qwen2-f32",  "qwen2-bf16",  "qwen3-f32",      "qwen3-bf16"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char dir[1024], what[128];
        snprintf(dir, sizeof dir, "%s/%s", FIXTURES_DIR, names[i]);
        snprintf(what, sizeof what, "%s tp 2", names[i]);
        ss_model *ref = load_tp(dir, 1), *split = load_tp(dir, 2);
        CHECK_MSG(ref && split, "%s: load", what);
        if (ref && split) {
            CHECK(split->tp == 2 && split->ranks[1] && split->ranks[1]->heads == 2 && split->ranks[1]->kv_heads == 1);
            check_logits(ref, split, what);
            check_greedy(ref, split, NULL, what);
        }
        ss_model_free(ref);
        ss_model_free(split);
    }
}

/* The demo pair: the target (6 heads, 2 kv heads) over 2 ranks, the draft on one. */
static void test_demo_pair(void) {
    char t[1024], d[1024];
    snprintf(t, sizeof t, "%s/models/demo/target", SOURCE_DIR);
    snprintf(d, sizeof d, "%s/models/demo/draft", SOURCE_DIR);
    ss_model *ref = load_tp(t, 1), *split = load_tp(t, 2), *draft = load_tp(d, 1);
    CHECK_MSG(ref && split && draft, "demo pair: load");
    if (ref && split && draft) {
        check_logits(ref, split, "demo target tp 2");
        check_greedy(ref, split, draft, "demo target tp 2");
        check_rollback(t, split, draft, "demo target tp 2");
    }
    ss_model_free(ref);
    ss_model_free(split);
    ss_model_free(draft);
}

/* A qwen2-style checkpoint (q/k/v biases) with 8 heads and 4 kv heads: tp = 2 and 4, with a noisy
 * draft that is sometimes rejected. */
static void test_four_ranks(void) {
    char dir[4096], target[4200], draft[4200];
    if (ck_tempdir(dir, sizeof dir)) {
        CHECK_MSG(0, "no temporary folder");
        return;
    }
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(draft, sizeof draft, "%s/draft", dir);
    ck_spec t = {.arch = "qwen2", .vocab = 96, .hidden = 64, .intermediate = 96, .layers = 3, .heads = 8, .kv_heads = 4,
                 .dtype = SS_BF16, .rope_theta = 10000, .max_position = 512, .seed = 7};
    ck_spec dr = t;
    dr.layers = 2;
    dr.noise = 0.3f;
    dr.noise_seed = 5;
    CHECK(ck_write(target, &t, NULL) == 0 && ck_write(draft, &dr, NULL) == 0);
    ss_model *ref = load_tp(target, 1), *d = load_tp(draft, 1);
    for (int tp = 2; ref && d && tp <= 4; tp *= 2) {
        char what[64];
        snprintf(what, sizeof what, "qwen2 8/4 heads tp %d", tp);
        ss_model *split = load_tp(target, tp);
        CHECK_MSG(split != NULL, "%s: load", what);
        if (split) {
            check_logits(ref, split, what);
            check_greedy(ref, split, d, what);
            check_rollback(target, split, d, what);
        }
        ss_model_free(split);
    }
    CHECK(ref && d);
    ss_model_free(ref);
    ss_model_free(d);
    ck_remove(dir);
}

static void test_errors(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/llama-f32", FIXTURES_DIR);
    ss_model_opts o = {.dir = dir, .backend = SS_BACKEND_CPU, .max_context = CTX, .quiet = true, .tp = 3};
    ss_model *m = (ss_model *)&o; /* must come back NULL */
    ss_error err = {0};
    CHECK(ss_model_load(&o, &m, &err) == SS_EARG && !m);
    CHECK_MSG(strstr(err.msg, dir) && strstr(err.msg, "tp 3") && strstr(err.msg, "heads (4)") &&
                  strstr(err.msg, "kv heads (2)") && !strchr(err.msg, '\n'),
              "message: %s", err.msg);
    o.tp = -1;
    CHECK(ss_model_load(&o, &m, &err) == SS_EARG && !m && strstr(err.msg, "tp -1"));
    o.tp = SS_MAX_TP + 1;
    CHECK(ss_model_load(&o, &m, &err) == SS_EARG && !m);
    /* SPECSCOPE_TP_DEVICES (ranks sharing CUDA devices) is checked before any rank starts. */
    o.tp = 2;
    setenv("SPECSCOPE_TP_DEVICES", "two", 1);
    CHECK_MSG(ss_model_load(&o, &m, &err) == SS_EARG && !m && strstr(err.msg, "SPECSCOPE_TP_DEVICES=two"), "message: %s",
              err.msg);
    unsetenv("SPECSCOPE_TP_DEVICES");
    /* The peer communicator serves CUDA ranks only (and does not exist without CUDA). */
    ss_backend *cpu[2] = {NULL, NULL};
    ss_tp_comm *c = (ss_tp_comm *)&o;
    for (int r = 0; r < 2; r++) CHECK(ss_backend_cpu_create(&cpu[r], &err) == SS_OK);
    CHECK(cpu[0] && cpu[1] && ss_tp_comm_peer_create(2, cpu, &c, &err) != SS_OK && !c);
    for (int r = 0; r < 2; r++)
        if (cpu[r]) cpu[r]->ops->destroy(cpu[r]);

    /* EasySpec plans stack whole layers: refused on a split model. */
    o.tp = 2;
    CHECK(ss_model_load(&o, &m, &err) == SS_OK);
    if (m) {
        ss_plan plan;
        CHECK(ss_plan_parse(m, "2", SS_EASYSPEC_ATTN, &plan, &err) == SS_EUNSUPPORTED && strstr(err.msg, "2 ranks"));
        ss_model_free(m);
    }
}

/* ss_session_opts.tp reaches the target; the draft stays on one rank. */
static void test_session(void) {
    char t[1024], d[1024];
    snprintf(t, sizeof t, "%s/models/demo/target", SOURCE_DIR);
    snprintf(d, sizeof d, "%s/models/demo/draft", SOURCE_DIR);
    ss_session_opts o = {.model_dir = t, .draft_dir = d, .backend = SS_BACKEND_CPU, .max_context = CTX, .quiet = true,
                         .tp = 2};
    ss_session *s;
    ss_error err;
    CHECK_MSG(ss_session_open(&o, &s, &err) == SS_OK, "%s", err.msg);
    if (s) {
        CHECK(ss_session_target(s)->tp == 2 && ss_session_draft(s)->tp == 1);
        ss_session_close(s);
    }
}

int main(void) {
    test_host_comm();
    test_fixtures();
    test_demo_pair();
    test_four_ranks();
    test_errors();
    test_session();
    return check_done();
}
