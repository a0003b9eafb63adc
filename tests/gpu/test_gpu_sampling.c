/* test_gpu_sampling.c — token choice on the device against the host sampler (engine/sampler.c):
 *  - argmax_rows against ss_argmax on random rows of a 128k vocabulary with ties, NaN and -inf, and
 *    on vocabularies that split unevenly over the kernel's blocks, with more rows than one launch;
 *  - sample_rows with fixed uniforms against ss_sample_with given the same uniform, for temperature,
 *    top-k, top-p and min-p settings on random rows, on rows full of ties and next to a row of only
 *    -inf (which gives token 0 while the rows around it draw). The device computes
 *    expf and sums differently in the last bits, so a draw may differ where u, or a top-p / min-p
 *    cut, lies within rounding distance of a boundary: a differing token is accepted only when the
 *    host itself picks it for u - 1e-6 or u + 1e-6, or when the row's top-p / min-p cut is within
 *    1e-5 of a boundary (counted; at most 1% of the draws may need either excuse);
 *  - a chi-square test of device draws against the host's probabilities;
 *  - generation on CUDA: greedy (plain, with a masked vocabulary, and speculative) through the
 *    id path equals a step-by-step loop over copied logits and ss_argmax, and sampled plain decoding
 *    equals the same loop with ss_sample_with and the generator's seeded uniforms;
 *  - the time of one argmax / sample against copying the row of logits to the host (printed).
 * Prints "SKIPPED: ..." and exits 77 without a CUDA device. */
#include <string.h>
#include <time.h>

#include "check.h"
#include "core_checkpoint.h"
#include "gpu_test.h"
#include "spec.h"

static ss_backend *be;

static float *upload(const float *host, size_t n) {
    void *d = NULL;
    ss_error err = {0};
    if (be->ops->alloc(be, n * sizeof(float), &d, &err) != SS_OK) {
        fprintf(stderr, "cuda: %s\n", err.msg);
        exit(1);
    }
    be->ops->to_device(be, d, host, n * sizeof(float));
    return d;
}

static bool synced(const char *what) {
    ss_error err = {0};
    if (be->ops->sync(be, &err) == SS_OK) return true;
    CHECK_MSG(0, "%s: %s", what, err.msg);
    return false;
}

/* ---------------------------------------------------------------- argmax_rows */

static void test_argmax(void) {
    enum { ROWS = 6, VOCAB = 128256 };
    float *l = gpu_random((size_t)ROWS * VOCAB, 12.0f, false);
    l[0 * VOCAB + 5] = l[0 * VOCAB + 90000] = 40.0f; /* a tie: the lower index wins */
    for (int j = 0; j < VOCAB; j++) l[1 * VOCAB + j] = roundf(l[1 * VOCAB + j]); /* many ties at the top */
    for (int j = 0; j < VOCAB; j += 2) l[2 * VOCAB + j] = NAN;                 /* NaN never wins */
    for (int j = 0; j < VOCAB; j++) l[3 * VOCAB + j] = NAN;                    /* all NaN: 0 */
    for (int j = 0; j < VOCAB; j += 3) l[4 * VOCAB + j] = -INFINITY;
    l[5 * VOCAB + VOCAB - 1] = 99.0f; /* the last element */
    float *d = upload(l, (size_t)ROWS * VOCAB);
    int ids[ROWS];
    be->ops->argmax_rows(be, ids, d, ROWS, VOCAB);
    synced("argmax_rows");
    for (int r = 0; r < ROWS; r++) {
        int want = ss_argmax(l + (size_t)r * VOCAB, VOCAB);
        CHECK_MSG(ids[r] == want, "argmax_rows row %d: %d, ss_argmax says %d", r, ids[r], want);
    }
    printf("argmax_rows: %d rows of %d (ties, NaN, -inf) match ss_argmax\n", ROWS, VOCAB);
    be->ops->free(be, d);
    free(l);
}

/* Vocabularies that split unevenly over the kernel's blocks (1, 33, 1025, 151943 tokens), the
 * maximum in the first or the last element, and more rows than one launch takes (5000 > 4096). */
static void test_argmax_shapes(void) {
    static const struct {
        int rows, vocab;
    } shapes[] = {{3, 1}, {3, 33}, {6, 1025}, {6, 151943}, {5000, 97}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int rows = shapes[k].rows, vocab = shapes[k].vocab, wrong = 0;
        float *l = gpu_random((size_t)rows * vocab, 12.0f, false);
        for (int r = 0; r < rows; r++) {
            float *row = l + (size_t)r * vocab;
            if (r % 3 == 0) row[vocab - 1] = 99.0f;
            else if (r % 3 == 1) row[0] = 99.0f;
        }
        float *d = upload(l, (size_t)rows * vocab);
        int *ids = malloc((size_t)rows * sizeof *ids);
        be->ops->argmax_rows(be, ids, d, rows, vocab);
        if (synced("argmax_rows shapes"))
            for (int r = 0; r < rows; r++) {
                int want = ss_argmax(l + (size_t)r * vocab, vocab);
                if (ids[r] != want && wrong++ < 3)
                    CHECK_MSG(0, "argmax_rows %d x %d, row %d: %d, ss_argmax says %d", rows, vocab, r, ids[r], want);
            }
        CHECK_MSG(wrong == 0, "argmax_rows %d x %d: %d rows wrong", rows, vocab, wrong);
        printf("argmax_rows: %d rows of %d match ss_argmax (%d wrong)\n", rows, vocab, wrong);
        be->ops->free(be, d);
        free(ids);
        free(l);
    }
}

/* ---------------------------------------------------------------- sample_rows with fixed uniforms */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Whether the row's top-p or min-p cut is within 1e-5 (of the mass, of the weight) of a boundary:
 * then the host's and the device's kept sets may differ by the tokens at the cut. */
static bool near_cut(const ss_sampling *s, const float *logits, int vocab) {
    ss_sampling open = *s;
    open.top_p = 1.0f, open.min_p = 0.0f;
    float *w = malloc((size_t)vocab * sizeof *w);
    ss_sampling_probs(&open, logits, vocab, NULL, 0, w); /* top-k only: the weights the cuts see */
    float top = 0.0f;
    for (int i = 0; i < vocab; i++) top = fmaxf(top, w[i]);
    bool near = false;
    for (int i = 0; i < vocab && s->min_p > 0.0f; i++)
        near |= w[i] > 0.0f && fabs(w[i] / top - s->min_p) <= 1e-5 * s->min_p;
    if (s->top_p < 1.0f) { /* running mass in ascending order against the budget */
        int n = 0;
        for (int i = 0; i < vocab; i++)
            if (w[i] > 0.0f) w[n++] = w[i];
        qsort(w, (size_t)n, sizeof *w, cmp_float);
        double total = 0, run = 0;
        for (int i = 0; i < n; i++) total += w[i];
        double budget = (1.0 - s->top_p) * total;
        for (int i = 0; i < n; i++) {
            run += w[i];
            if (i + 1 == n || w[i + 1] != w[i]) near |= fabs(run - budget) <= 1e-5 * total;
        }
    }
    free(w);
    return near;
}

typedef struct {
    const char *label;
    ss_sampling s;
    int vocab;
    bool ties;     /* logits rounded to halves: large groups of equal values at every cut */
    bool dead_row; /* the first row all -inf: no weight at all (token 0), while the others draw */
} sample_case;

typedef struct {
    long draws, exact, at_u_boundary, at_cut;
} sample_tally;

static void sample_case_run(const sample_case *c, sample_tally *t) {
    enum { ROWS = 6, DRAWS = 16 }; /* each row drawn DRAWS times: ROWS * DRAWS device rows */
    int vocab = c->vocab, n = ROWS * DRAWS;
    float *rows = gpu_random((size_t)ROWS * vocab, 6.0f, false);
    if (c->ties)
        for (size_t i = 0; i < (size_t)ROWS * vocab; i++) rows[i] = roundf(rows[i] * 2.0f) / 2.0f;
    if (c->dead_row)
        for (int j = 0; j < vocab; j++) rows[j] = -INFINITY;
    float *all = malloc((size_t)n * vocab * sizeof *all);
    double *u = malloc((size_t)n * sizeof *u);
    ss_rng rng;
    ss_rng_seed(&rng, 77 + (uint64_t)vocab);
    for (int i = 0; i < n; i++) {
        memcpy(all + (size_t)i * vocab, rows + (size_t)(i / DRAWS) * vocab, (size_t)vocab * sizeof *all);
        int k = i % DRAWS;
        u[i] = k == 0 ? 0.0 : k == 1 ? 1.0 - 0x1p-53 : ss_rng_uniform(&rng); /* both ends, then random */
    }
    float *d = upload(all, (size_t)n * vocab);
    int *ids = malloc((size_t)n * sizeof *ids);
    be->ops->sample_rows(be, ids, d, n, vocab, &c->s, u);
    bool ok = synced(c->label);
    float *scratch = malloc((size_t)vocab * sizeof *scratch);
    long exact = 0, edge_u = 0, edge_cut = 0, wrong = 0;
    for (int i = 0; ok && i < n; i++) {
        const float *row = rows + (size_t)(i / DRAWS) * vocab;
        int want = ss_sample_with(&c->s, row, vocab, u[i], scratch);
        if (ids[i] == want) {
            exact++;
        } else if (ss_sample_with(&c->s, row, vocab, fmax(0.0, u[i] - 1e-6), scratch) == ids[i] ||
                   ss_sample_with(&c->s, row, vocab, fmin(1.0 - 0x1p-53, u[i] + 1e-6), scratch) == ids[i]) {
            edge_u++;
        } else if (near_cut(&c->s, row, vocab)) {
            edge_cut++;
        } else {
            wrong++;
            CHECK_MSG(0, "%s row %d, u = %.17g: device drew %d, the host draws %d", c->label, i / DRAWS, u[i], ids[i],
                      want);
        }
    }
    printf("%-44s vocab %6d: %3ld of %3d draws equal the host's, %ld at a u boundary, %ld at a cut, %ld wrong\n",
           c->label, vocab, exact, n, edge_u, edge_cut, wrong);
    t->draws += n, t->exact += exact, t->at_u_boundary += edge_u, t->at_cut += edge_cut;
    be->ops->free(be, d);
    free(rows);
    free(all);
    free(u);
    free(ids);
    free(scratch);
}

static void test_sample_fixed_uniforms(void) {
#define S(T, K, P, MINP) {.temperature = T, .top_k = K, .top_p = P, .min_p = MINP, .repeat_penalty = 1.0f, .seed = 1}
    const sample_case cases[] = {
        {"temperature 1", S(1.0f, 0, 1.0f, 0.0f), 1000, false, false},
        {"temperature 0.7", S(0.7f, 0, 1.0f, 0.0f), 128256, false, false},
        {"temperature 2.5", S(2.5f, 0, 1.0f, 0.0f), 151936, false, false},
        {"top-k 40, T 0.8", S(0.8f, 40, 1.0f, 0.0f), 128256, false, false},
        {"top-k 1 (ties at the top kept)", S(1.0f, 1, 1.0f, 0.0f), 32000, true, false},
        {"top-k 50 over ties", S(0.9f, 50, 1.0f, 0.0f), 128256, true, false},
        {"top-k >= vocab (off)", S(1.0f, 5000, 1.0f, 0.0f), 4000, false, false},
        {"top-p 0.9, T 0.8", S(0.8f, 0, 0.9f, 0.0f), 128256, false, false},
        {"top-p 0.5 over ties", S(1.0f, 0, 0.5f, 0.0f), 50000, true, false},
        {"top-p 0 (the largest, ties kept)", S(1.0f, 0, 0.0f, 0.0f), 20000, true, false},
        {"top-k 40 + top-p 0.95, T 0.6", S(0.6f, 40, 0.95f, 0.0f), 256000, false, false},
        {"min-p 0.05, T 1.3", S(1.3f, 0, 1.0f, 0.05f), 128256, false, false},
        {"top-k 100 + top-p 0.8 + min-p 0.1", S(1.0f, 100, 0.8f, 0.1f), 151936, false, false},
        {"top-k 40 + top-p 0.9, one row all -inf", S(0.8f, 40, 0.9f, 0.0f), 128256, false, true},
        {"top-p 0.9, one row all -inf", S(1.0f, 0, 0.9f, 0.0f), 3001, false, true},
        {"top-k 3 + top-p 0.9, 7 tokens", S(1.0f, 3, 0.9f, 0.0f), 7, false, false},
    };
#undef S
    sample_tally t = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) sample_case_run(&cases[i], &t);
    printf("sample_rows: %ld of %ld draws equal the host's; %ld at a u boundary, %ld at a cut (allowed: 1%%)\n",
           t.exact, t.draws, t.at_u_boundary, t.at_cut);
    CHECK_MSG(t.at_u_boundary + t.at_cut <= t.draws / 100, "%ld of %ld draws needed a boundary excuse",
              t.at_u_boundary + t.at_cut, t.draws);
}

/* ---------------------------------------------------------------- chi-square */

/* Upper critical value of chi-square with df degrees of freedom at p = 0.001 (Wilson-Hilferty). */
static double chi2_critical(int df) {
    const double z = 3.0902; /* one-sided normal quantile of 0.999 */
    double a = 2.0 / (9.0 * df), c = 1.0 - a + z * sqrt(a);
    return df * c * c * c;
}

static void test_chi_square(const char *label, const ss_sampling *s, int vocab, float scale) {
    enum { N = 8192 };
    float *row = gpu_random((size_t)vocab, scale, false);
    float *all = malloc((size_t)N * vocab * sizeof *all);
    double *u = malloc(N * sizeof *u);
    ss_rng rng;
    ss_rng_seed(&rng, 2024);
    for (int i = 0; i < N; i++) {
        memcpy(all + (size_t)i * vocab, row, (size_t)vocab * sizeof *row);
        u[i] = ss_rng_uniform(&rng);
    }
    float *d = upload(all, (size_t)N * vocab);
    int *ids = malloc(N * sizeof *ids);
    be->ops->sample_rows(be, ids, d, N, vocab, s, u);
    float *p = malloc((size_t)vocab * sizeof *p);
    long *count = calloc((size_t)vocab, sizeof *count);
    ss_sampling_probs(s, row, vocab, NULL, 0, p);
    if (synced(label)) {
        long outside = 0;
        for (int i = 0; i < N; i++) {
            if (ids[i] < 0 || ids[i] >= vocab || p[ids[i]] <= 0.0f) outside++;
            else count[ids[i]]++;
        }
        CHECK_MSG(outside == 0, "%s: %ld draws outside the kept tokens", label, outside);
        /* Tokens expected at least 5 times are their own bins; the rest share one. */
        double chi2 = 0, rest_expected = 0, rest_seen = 0;
        int bins = 0;
        for (int v = 0; v < vocab; v++) {
            double e = (double)p[v] * N;
            if (e >= 5.0) {
                chi2 += (count[v] - e) * (count[v] - e) / e;
                bins++;
            } else if (p[v] > 0.0f) {
                rest_expected += e;
                rest_seen += count[v];
            }
        }
        if (rest_expected >= 5.0) {
            chi2 += (rest_seen - rest_expected) * (rest_seen - rest_expected) / rest_expected;
            bins++;
        }
        double critical = bins > 1 ? chi2_critical(bins - 1) : 0;
        printf("chi-square %-36s %d draws over %d bins: %.1f (critical at p = 0.001: %.1f)\n", label, N, bins, chi2,
               critical);
        CHECK_MSG(bins > 1 && chi2 <= critical, "%s: chi-square %.1f over %d bins > %.1f", label, chi2, bins, critical);
    }
    be->ops->free(be, d);
    free(row);
    free(all);
    free(u);
    free(ids);
    free(p);
    free(count);
}

/* ---------------------------------------------------------------- generation on CUDA */

static ss_model *load(const char *dir) {
    ss_model_opts opts = {.dir = dir, .backend = SS_BACKEND_CUDA, .max_context = 256, .quiet = true};
    ss_model *m = NULL;
    ss_error err = {0};
    CHECK_MSG(ss_model_load(&opts, &m, &err) == SS_OK, "%s: %s", dir, err.msg);
    return m;
}

/* The host path, one forward per token: the last row of logits copied to the host and the token
 * ss_sample_with picks from its first vocab entries, with one uniform of an RNG seeded as the
 * generator's per token when sampling. If the device's tokens differ at some step, *excused tells
 * whether that step's uniform lies within 1e-6 of a boundary (the tokens after it then differ). */
static int reference_tokens(ss_model *m, const int *prompt, int n_prompt, const ss_params *p, int vocab,
                            const ss_result *device, int *out, bool *excused) {
    int mv = ss_model_config(m)->vocab_size, ids[256], pos[256], n = n_prompt, made = 0;
    float *logits = malloc((size_t)mv * sizeof *logits), *scratch = malloc((size_t)mv * sizeof *scratch);
    ss_rng rng;
    ss_rng_seed(&rng, p->sampling.seed);
    memcpy(ids, prompt, (size_t)n_prompt * sizeof *ids);
    for (int i = 0; i < 256; i++) pos[i] = i;
    ss_error err = {0};
    *excused = false;
    int from = 0;
    while (made < p->max_tokens && n < 256) {
        if (ss_model_forward(m, ids + from, pos + from, n - from, logits, true, &err) != SS_OK) {
            CHECK_MSG(0, "reference forward: %s", err.msg);
            break;
        }
        double u = p->sampling.temperature > 0.0f ? ss_rng_uniform(&rng) : 0.0;
        int t = ss_sample_with(&p->sampling, logits, vocab, u, scratch);
        if (made < device->tokens.n && device->tokens.ids[made] != t) {
            int d = device->tokens.ids[made];
            *excused = p->sampling.temperature > 0.0f &&
                       (ss_sample_with(&p->sampling, logits, vocab, fmax(0.0, u - 1e-6), scratch) == d ||
                        ss_sample_with(&p->sampling, logits, vocab, fmin(1.0 - 0x1p-53, u + 1e-6), scratch) == d);
            out[made++] = t;
            break;
        }
        out[made++] = t;
        from = n;
        ids[n++] = t;
    }
    free(logits);
    free(scratch);
    return made;
}

static void compare_generation(const char *label, ss_model *target, ss_model *draft, int k, int vocab,
                               const ss_sampling *s) {
    static const int prompt[6] = {3, 17, 22, 9, 40, 41};
    ss_params p;
    ss_params_default(&p);
    p.sampling = *s;
    p.max_tokens = 40;
    p.stop_at_eos = false;
    p.k = k;
    ss_generator g = {.target = target, .draft = draft, .draft_kind = draft ? SS_DRAFT_MODEL : SS_DRAFT_NONE,
                      .vocab = vocab};
    ss_kv_state kv = {0};
    ss_result r;
    ss_error err = {0};
    if (ss_generate(&g, &kv, prompt, 6, &p, NULL, &r, &err) != SS_OK) {
        CHECK_MSG(0, "%s: %s", label, err.msg);
        ss_kv_state_free(&kv);
        return;
    }
    ss_kv_state_free(&kv);
    int ref[64];
    bool excused;
    int n = reference_tokens(target, prompt, 6, &p, vocab, &r, ref, &excused);
    int same = 0;
    while (same < n && same < r.tokens.n && ref[same] == r.tokens.ids[same]) same++;
    bool equal = same == n && n == r.tokens.n;
    printf("%-52s %d tokens: %s\n", label, r.tokens.n,
           equal ? "equal to the logits path" : excused ? "differ from a u boundary on (allowed)" : "DIFFER");
    CHECK_MSG(equal || excused, "%s: the id path differs from the logits path at token %d", label, same);
    bool in_vocab = true;
    for (int i = 0; i < r.tokens.n; i++) in_vocab &= r.tokens.ids[i] >= 0 && r.tokens.ids[i] < vocab;
    CHECK_MSG(in_vocab, "%s: a token outside [0, %d)", label, vocab);
    ss_result_free(&r);
}

static void test_generation(const char *root) {
    char tdir[1100], ddir[1100];
    snprintf(tdir, sizeof tdir, "%s/target", root);
    snprintf(ddir, sizeof ddir, "%s/draft", root);
    ck_spec t = {.arch = "llama", .vocab = 512, .hidden = 128, .intermediate = 256, .layers = 3, .heads = 4,
                 .kv_heads = 2, .dtype = SS_BF16, .tied = true, .rope_theta = 10000, .max_position = 512, .seed = 21};
    ck_spec d = t;
    d.layers = 2, d.noise = 0.3f, d.noise_seed = 4;
    CHECK(ck_write(tdir, &t, NULL) == 0 && ck_write(ddir, &d, NULL) == 0);
    ss_model *target = load(tdir), *draft = load(ddir);
    if (target && draft) {
        ss_sampling greedy, sampled;
        ss_sampling_default(&greedy);
        ss_sampling_default(&sampled);
        sampled.temperature = 0.8f, sampled.top_k = 40, sampled.top_p = 0.9f, sampled.seed = 5;
        compare_generation("greedy, plain", target, NULL, 0, 512, &greedy);
        compare_generation("greedy, plain, ids masked to [0, 500)", target, NULL, 0, 500, &greedy);
        compare_generation("greedy, draft model k = 4", target, draft, 4, 512, &greedy);
        compare_generation("greedy, draft model k = 3, ids masked to [0, 500)", target, draft, 3, 500, &greedy);
        compare_generation("sampled (T 0.8, top-k 40, top-p 0.9), plain", target, NULL, 0, 512, &sampled);
        compare_generation("sampled, plain, ids masked to [0, 500)", target, NULL, 0, 500, &sampled);
    }
    ss_model_free(target);
    ss_model_free(draft);
}

/* ---------------------------------------------------------------- timing (printed) */

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void time_one_row(int vocab) {
    enum { REPEATS = 101 };
    float *row = gpu_random((size_t)vocab, 10.0f, false), *host = malloc((size_t)vocab * sizeof *host);
    float *d = upload(row, (size_t)vocab);
    ss_sampling s;
    ss_sampling_default(&s);
    s.temperature = 0.8f, s.top_k = 40, s.top_p = 0.9f;
    double u = 0.5, t[3][REPEATS];
    int id;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now_us();
        be->ops->to_host(be, host, d, (size_t)vocab * sizeof(float));
        double t1 = now_us();
        be->ops->argmax_rows(be, &id, d, 1, vocab);
        double t2 = now_us();
        be->ops->sample_rows(be, &id, d, 1, vocab, &s, &u);
        double t3 = now_us();
        t[0][r] = t1 - t0, t[1][r] = t2 - t1, t[2][r] = t3 - t2;
    }
    synced("timing");
    for (int i = 0; i < 3; i++) qsort(t[i], REPEATS, sizeof(double), cmp_double);
    printf("one row of %d: copy of the logits to the host %.1f us, argmax_rows %.1f us, sample_rows "
           "(T 0.8, top-k 40, top-p 0.9) %.1f us (medians of %d)\n",
           vocab, t[0][REPEATS / 2], t[1][REPEATS / 2], t[2][REPEATS / 2], REPEATS);
    be->ops->free(be, d);
    free(row);
    free(host);
}

int main(void) {
    int skip = gpu_require_device();
    if (skip) return skip;
    ss_error err = {0};
    if (ss_backend_cuda_create(&be, &err) != SS_OK) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    CHECK_MSG(be->ops->argmax_rows && be->ops->sample_rows, "the CUDA backend lacks argmax_rows or sample_rows");
    if (!be->ops->argmax_rows || !be->ops->sample_rows) return check_done();
    test_argmax();
    test_argmax_shapes();
    test_sample_fixed_uniforms();
    ss_sampling s;
    ss_sampling_default(&s);
    s.temperature = 0.7f, s.top_k = 50, s.top_p = 0.9f;
    test_chi_square("T 0.7, top-k 50, top-p 0.9", &s, 1000, 4.0f);
    s.temperature = 1.0f, s.top_k = 0, s.top_p = 1.0f;
    test_chi_square("T 1, no cut (2000 tokens)", &s, 2000, 3.0f);
    s.top_k = 0, s.min_p = 0.02f, s.temperature = 1.5f;
    test_chi_square("T 1.5, min-p 0.02", &s, 3000, 6.0f);
    time_one_row(128256);
    time_one_row(151936);
    be->ops->destroy(be);

    char root[512];
    if (ck_tempdir(root, sizeof root)) {
        fprintf(stderr, "no temporary folder\n");
        return 1;
    }
    test_generation(root);
    ck_remove(root);
    return check_done();
}
