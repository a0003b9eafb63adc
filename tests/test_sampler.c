/* test_sampler.c — the sampler against hand-computed cases and a literal transcription of Hugging
 * Face's logits processors (full sort, cumulative sums) on random logits. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sampler.h"

/* ---------------------------------------------------------------- reference (HF, by sorting) */

typedef struct {
    double v;
    int i;
} entry;

static int by_value(const void *a, const void *b) {
    double x = ((const entry *)a)->v, y = ((const entry *)b)->v;
    return x < y ? -1 : x > y;
}

/* RepetitionPenalty, Temperature, TopK, TopP, MinP, softmax — in double. */
static void reference_probs(const ss_sampling *s, const float *logits, int V, const int *hist, int nh, double *out) {
    double *v = malloc((size_t)V * sizeof *v);
    for (int i = 0; i < V; i++) v[i] = logits[i];
    for (int h = 0; h < nh; h++) {
        double x = logits[hist[h]];
        v[hist[h]] = x < 0 ? x * s->repeat_penalty : x / s->repeat_penalty;
    }
    for (int i = 0; i < V; i++) v[i] /= s->temperature;
    entry *e = malloc((size_t)V * sizeof *e);
    for (int i = 0; i < V; i++) e[i] = (entry){v[i], i};
    qsort(e, (size_t)V, sizeof *e, by_value); /* ascending */
    bool *removed = calloc((size_t)V, sizeof *removed);
    if (s->top_k > 0 && s->top_k < V)
        for (int j = 0; j < V - s->top_k; j++) removed[e[j].i] = true;
    double max = e[V - 1].v;
    if (s->top_p < 1) {
        double total = 0, cum = 0;
        for (int j = 0; j < V; j++)
            if (!removed[e[j].i]) total += exp(e[j].v - max);
        for (int j = 0; j < V - 1; j++) {
            if (!removed[e[j].i]) cum += exp(e[j].v - max) / total;
            if (cum <= 1 - s->top_p) removed[e[j].i] = true;
        }
    }
    if (s->min_p > 0)
        for (int i = 0; i < V; i++)
            if (exp(v[i] - max) < s->min_p) removed[i] = true;
    double total = 0;
    for (int i = 0; i < V; i++) total += out[i] = removed[i] ? 0.0 : exp(v[i] - max);
    for (int i = 0; i < V; i++) out[i] /= total;
    free(v);
    free(e);
    free(removed);
}

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) * 0x1.0p-53);
}

static void test_against_reference(void) {
    uint64_t seed = 7;
    int V = 300, mismatches = 0;
    float *logits = malloc(V * sizeof *logits), *probs = malloc(V * sizeof *probs);
    double *ref = malloc(V * sizeof *ref);
    for (int trial = 0; trial < 400; trial++) {
        for (int i = 0; i < V; i++) logits[i] = (frand(&seed) - 0.5f) * 12.0f;
        ss_sampling s;
        ss_sampling_default(&s);
        s.temperature = 0.3f + 1.5f * frand(&seed);
        int mode = trial % 5; /* each cut alone, then all together */
        if (mode == 0 || mode == 4) s.top_k = 1 + (int)(frand(&seed) * 60);
        if (mode == 1 || mode == 4) s.top_p = 0.05f + 0.9f * frand(&seed);
        if (mode == 2 || mode == 4) s.min_p = 0.3f * frand(&seed);
        if (mode == 3 || mode == 4) s.repeat_penalty = 1.0f + frand(&seed);
        int hist[20];
        for (int h = 0; h < 20; h++) hist[h] = (int)(frand(&seed) * V) % V;
        ss_sampling_probs(&s, logits, V, hist, 20, probs);
        reference_probs(&s, logits, V, hist, 20, ref);
        double worst = 0, sum = 0;
        bool same_mask = true;
        for (int i = 0; i < V; i++) {
            same_mask &= (probs[i] > 0) == (ref[i] > 0);
            worst = fmax(worst, fabs(probs[i] - ref[i]));
            sum += probs[i];
        }
        if (!same_mask || worst > 1e-5 || fabs(sum - 1) > 1e-5) {
            mismatches++;
            fprintf(stderr, "trial %d (k=%d p=%g min_p=%g pen=%g): mask %s, max diff %g, sum %g\n", trial, s.top_k,
                    s.top_p, s.min_p, s.repeat_penalty, same_mask ? "same" : "differs", worst, sum);
        }
    }
    CHECK_MSG(mismatches == 0, "%d of 400 random cases differ from the reference", mismatches);
    free(logits);
    free(probs);
    free(ref);
}

/* ---------------------------------------------------------------- hand-computed cases */

static void test_greedy(void) {
    ss_sampling s;
    ss_sampling_default(&s);
    CHECK(s.temperature == 0 && s.top_k == 0 && s.top_p == 1 && s.min_p == 0 && s.repeat_penalty == 1 && s.seed == 1);
    float logits[] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f}, probs[5];
    ss_sampling_probs(&s, logits, 5, NULL, 0, probs);
    CHECK(probs[1] == 1.0f && probs[0] == 0 && probs[2] == 0 && probs[3] == 0 && probs[4] == 0); /* lowest on ties */
    CHECK(ss_argmax(logits, 5) == 1);
    ss_rng rng;
    ss_rng_seed(&rng, 3);
    CHECK(ss_sample(&s, logits, 5, NULL, 0, &rng, probs) == 1);
    /* The penalty applies before the argmax: 3/2 < 2.9. */
    s.repeat_penalty = 2.0f;
    int hist[] = {1, 3, 1};
    CHECK(ss_sample(&s, logits, 5, hist, 3, &rng, probs) == 4);
}

static void test_penalty_and_temperature(void) {
    ss_sampling s;
    ss_sampling_default(&s);
    s.temperature = 2.0f;
    s.repeat_penalty = 2.0f;
    float logits[] = {2.0f, -1.0f, 0.5f, 3.0f}, probs[4];
    int hist[] = {0, 1, 1, 7, -2}; /* duplicates penalised once; out-of-range ids ignored */
    ss_sampling_probs(&s, logits, 4, hist, 5, probs);
    double v[] = {1.0 / 2, -2.0 / 2, 0.5 / 2, 3.0 / 2}, z = 0;
    for (int i = 0; i < 4; i++) z += exp(v[i]);
    for (int i = 0; i < 4; i++) CHECK_NEAR(probs[i], exp(v[i]) / z, 1e-6);
}

static void test_cuts(void) {
    ss_sampling s;
    ss_sampling_default(&s);
    s.temperature = 1.0f;
    float logits[] = {logf(0.1f), logf(0.5f), logf(0.15f), logf(0.25f)}, probs[4];
    /* top-p 0.7: ascending cumulative 0.1, 0.25, 0.5, 1 -> 0.1 and 0.15 are cut. */
    s.top_p = 0.7f;
    ss_sampling_probs(&s, logits, 4, NULL, 0, probs);
    CHECK(probs[0] == 0 && probs[2] == 0);
    CHECK_NEAR(probs[1], 2.0 / 3, 1e-6);
    CHECK_NEAR(probs[3], 1.0 / 3, 1e-6);
    /* top-p 0.8: only 0.1 is cut. */
    s.top_p = 0.8f;
    ss_sampling_probs(&s, logits, 4, NULL, 0, probs);
    CHECK(probs[0] == 0 && probs[1] > 0 && probs[2] > 0 && probs[3] > 0);
    CHECK_NEAR(probs[2], 0.15 / 0.9, 1e-6);
    /* A tiny top-p keeps the most likely token only. */
    s.top_p = 1e-4f;
    ss_sampling_probs(&s, logits, 4, NULL, 0, probs);
    CHECK(probs[1] == 1.0f);
    /* top-k 2 */
    s.top_p = 1.0f;
    s.top_k = 2;
    ss_sampling_probs(&s, logits, 4, NULL, 0, probs);
    CHECK(probs[0] == 0 && probs[2] == 0);
    CHECK_NEAR(probs[1], 0.5 / 0.75, 1e-6);
    /* min-p 0.4: threshold 0.2 keeps 0.5 and 0.25 */
    s.top_k = 0;
    s.min_p = 0.4f;
    ss_sampling_probs(&s, logits, 4, NULL, 0, probs);
    CHECK(probs[0] == 0 && probs[2] == 0);
    CHECK_NEAR(probs[3], 0.25 / 0.75, 1e-6);
    /* top-k with a tie at the cut keeps both tied tokens (the cut is by value) */
    float tied[] = {1.0f, 2.0f, 2.0f, 0.0f};
    ss_sampling_default(&s);
    s.temperature = 1.0f;
    s.top_k = 1;
    ss_sampling_probs(&s, tied, 4, NULL, 0, probs);
    CHECK(probs[0] == 0 && probs[3] == 0);
    CHECK_NEAR(probs[1], 0.5, 1e-6);
}

/* ---------------------------------------------------------------- drawing */

static void test_rng(void) {
    ss_rng a, b, c;
    ss_rng_seed(&a, 42);
    ss_rng_seed(&b, 42);
    ss_rng_seed(&c, 43);
    bool same = true, differs = false;
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double x = ss_rng_uniform(&a), y = ss_rng_uniform(&b), z = ss_rng_uniform(&c);
        same &= x == y;
        differs |= x != z;
        CHECK_MSG(x >= 0 && x < 1, "uniform %g", x);
        sum += x;
    }
    CHECK(same && differs);
    CHECK_NEAR(sum / 100000, 0.5, 0.01);
}

static void test_frequencies(void) {
    float probs[] = {0.1f, 0.0f, 0.2f, 0.3f, 0.4f, 0.0f};
    int counts[6] = {0}, n = 400000;
    ss_rng rng;
    ss_rng_seed(&rng, 9);
    for (int i = 0; i < n; i++) counts[ss_sample_from(probs, 6, &rng)]++;
    CHECK(counts[1] == 0 && counts[5] == 0);
    for (int i = 0; i < 6; i++) /* 5 standard deviations at most */
        CHECK_MSG(fabs((double)counts[i] / n - probs[i]) < 5 * sqrt(0.25 / n) + 1e-9, "token %d: %g vs %g", i,
                  (double)counts[i] / n, probs[i]);

    /* Same seed, same samples through the whole sampler. */
    ss_sampling s;
    ss_sampling_default(&s);
    s.temperature = 0.8f;
    s.top_p = 0.95f;
    float logits[50], scratch[50];
    for (int i = 0; i < 50; i++) logits[i] = sinf((float)i * 1.3f) * 3.0f;
    ss_rng r1, r2;
    ss_rng_seed(&r1, s.seed);
    ss_rng_seed(&r2, s.seed);
    bool same = true;
    int distinct = 0, last = -1;
    for (int i = 0; i < 200; i++) {
        int x = ss_sample(&s, logits, 50, NULL, 0, &r1, scratch), y = ss_sample(&s, logits, 50, NULL, 0, &r2, scratch);
        same &= x == y;
        distinct += x != last;
        last = x;
    }
    CHECK(same);
    CHECK(distinct > 20); /* really sampling */
}

static void test_params_default(void) {
    ss_params p;
    memset(&p, 0x5a, sizeof p);
    ss_params_default(&p);
    CHECK(p.max_tokens == 128 && p.k == 4 && p.adaptive == 0 && p.easyspec == 0);
    CHECK(p.easyspec_mode == SS_EASYSPEC_ATTN && p.easyspec_groups[0] == '\0' && !p.chat && p.stop_at_eos);
    CHECK(p.sampling.temperature == 0 && p.sampling.top_p == 1 && p.sampling.seed == 1);
}

int main(void) {
    test_greedy();
    test_penalty_and_temperature();
    test_cuts();
    test_against_reference();
    test_rng();
    test_frequencies();
    test_params_default();
    return check_done();
}
