/* sampler.c — repetition penalty, temperature, top-k, top-p, min-p, the seeded RNG, and the
 * sampling / generation parameter defaults.
 *
 * The cuts need order statistics of the vocabulary. Instead of sorting it (a few ms for 128k
 * entries) each cut is found with an in-place selection over the probs buffer, which is then
 * rebuilt from the logits with the cut applied by value. */
#include <math.h>
#include <string.h>

#include "sampler.h"

/* ---------------------------------------------------------------- defaults */

void ss_sampling_default(ss_sampling *s) {
    *s = (ss_sampling){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .repeat_penalty = 1.0f,
                       .seed = 1};
}

void ss_params_default(ss_params *p) {
    memset(p, 0, sizeof *p);
    ss_sampling_default(&p->sampling);
    p->max_tokens = 128;
    p->k = 4;
    p->adaptive = 0.0f;
    p->easyspec = 0;
    p->easyspec_mode = SS_EASYSPEC_ATTN;
    p->easyspec_groups[0] = '\0';
    p->chat = false;
    p->stop_at_eos = true;
}

/* ---------------------------------------------------------------- rng */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ss_rng_seed(ss_rng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(ss_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ss_rng_uniform(ss_rng *rng) { return (double)(rng_next(rng) >> 11) * 0x1.0p-53; }

/* ---------------------------------------------------------------- selection */

static void swap(float *a, int i, int j) {
    float t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* Three-way partition of a[lo, hi) around pivot: on return a[lo, *lt) < pivot, a[*lt, *gt) == pivot,
 * a[*gt, hi) > pivot. */
static void partition3(float *a, int lo, int hi, float pivot, int *lt, int *gt) {
    int i = lo, l = lo, g = hi;
    while (i < g) {
        if (a[i] < pivot)
            swap(a, i++, l++);
        else if (a[i] > pivot)
            swap(a, i, --g);
        else
            i++;
    }
    *lt = l;
    *gt = g;
}

/* The k-th largest value of a[0, n) (1 <= k <= n); reorders a. */
static float kth_largest(float *a, int n, int k) {
    int lo = 0, hi = n, want = n - k; /* index in ascending order */
    for (;;) {
        float pivot = a[lo + (hi - lo) / 2];
        int lt, gt;
        partition3(a, lo, hi, pivot, &lt, &gt);
        if (want < lt)
            hi = lt;
        else if (want >= gt)
            lo = gt;
        else
            return pivot;
    }
}

/* Top-p by value. a[0, n) holds non-negative weights; in ascending order, the tokens whose running
 * sum stays <= budget are cut. Returns the smallest weight that survives (the largest weight at
 * worst: at least one token is kept). Reorders a. */
static float mass_cutoff(float *a, int n, double budget) {
    int lo = 0, hi = n;
    double below = 0.0; /* mass of a[0, lo), all smaller than a[lo, hi) */
    float largest = 0.0f;
    for (int i = 0; i < n; i++)
        if (a[i] > largest) largest = a[i];
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        int lt, gt;
        partition3(a, lo, hi, pivot, &lt, &gt);
        double less = 0.0;
        for (int i = lo; i < lt; i++) less += a[i];
        double equal = (double)pivot * (gt - lt);
        if (below + less > budget) {
            hi = lt;
        } else if (below + less + equal > budget) {
            return pivot;
        } else {
            below += less + equal;
            lo = gt;
        }
    }
    return largest;
}

/* ---------------------------------------------------------------- the distribution */

/* Penalised, temperature-scaled logits. The penalty is computed from the raw logit, so a token seen
 * several times is penalised once, as HF's gather/scatter does. */
static void scaled_logits(const ss_sampling *s, const float *logits, int vocab, const int *history, int n_history,
                          float *out) {
    memcpy(out, logits, (size_t)vocab * sizeof *out);
    if (ss_sampling_has_penalty(s)) {
        for (int i = 0; i < n_history; i++) {
            int id = history[i];
            if (id < 0 || id >= vocab) continue;
            float v = logits[id];
            out[id] = v < 0 ? v * s->repeat_penalty : v / s->repeat_penalty;
        }
    }
    if (s->temperature > 0.0f && s->temperature != 1.0f)
        for (int i = 0; i < vocab; i++) out[i] /= s->temperature;
}

/* out = exp(v - max v) of the scaled logits, 0 where v < kth (top-k) or the weight < floor. */
static void weights(const ss_sampling *s, const float *logits, int vocab, const int *history, int n_history,
                    float kth, float floor, float *out) {
    scaled_logits(s, logits, vocab, history, n_history, out);
    float max = -INFINITY;
    for (int i = 0; i < vocab; i++)
        if (out[i] >= kth && out[i] > max) max = out[i];
    for (int i = 0; i < vocab; i++) {
        float w = out[i] >= kth ? expf(out[i] - max) : 0.0f;
        out[i] = w >= floor ? w : 0.0f;
    }
}

void ss_sampling_probs(const ss_sampling *s, const float *logits, int vocab, const int *history, int n_history,
                       float *probs) {
    if (s->temperature <= 0.0f) {
        scaled_logits(s, logits, vocab, history, n_history, probs);
        int best = ss_argmax(probs, vocab);
        memset(probs, 0, (size_t)vocab * sizeof *probs);
        probs[best] = 1.0f;
        return;
    }
    float kth = -INFINITY;
    if (s->top_k > 0 && s->top_k < vocab) {
        scaled_logits(s, logits, vocab, history, n_history, probs);
        kth = kth_largest(probs, vocab, s->top_k);
    }
    weights(s, logits, vocab, history, n_history, kth, 0.0f, probs);
    float floor = 0.0f; /* weights are relative to the largest, which is 1 */
    if (s->top_p < 1.0f) {
        double total = 0.0;
        for (int i = 0; i < vocab; i++) total += probs[i];
        floor = mass_cutoff(probs, vocab, (1.0 - s->top_p) * total);
    }
    if (s->min_p > 0.0f && s->min_p > floor) floor = s->min_p < 1.0f ? s->min_p : 1.0f;
    if (floor > 0.0f || s->top_p < 1.0f) weights(s, logits, vocab, history, n_history, kth, floor, probs);
    double total = 0.0;
    for (int i = 0; i < vocab; i++) total += probs[i];
    float inv = (float)(1.0 / total);
    for (int i = 0; i < vocab; i++) probs[i] *= inv;
}

int ss_argmax(const float *logits, int vocab) {
    int best = 0;
    for (int i = 1; i < vocab; i++)
        if (logits[i] > logits[best] || (logits[best] != logits[best] && logits[i] == logits[i])) best = i;
    return best;
}

bool ss_sampling_has_penalty(const ss_sampling *s) { return s->repeat_penalty != 1.0f && s->repeat_penalty > 0.0f; }

int ss_sample_at(const float *probs, int vocab, double u) {
    double total = 0.0;
    int last = -1;
    for (int i = 0; i < vocab; i++)
        if (probs[i] > 0.0f) {
            total += probs[i];
            last = i;
        }
    if (last < 0) return 0;
    double target = u * total, acc = 0.0;
    for (int i = 0; i < last; i++) {
        if (probs[i] <= 0.0f) continue;
        acc += probs[i];
        if (target < acc) return i;
    }
    return last;
}

int ss_sample_from(const float *probs, int vocab, ss_rng *rng) {
    return ss_sample_at(probs, vocab, ss_rng_uniform(rng));
}

int ss_sample(const ss_sampling *s, const float *logits, int vocab, const int *history, int n_history, ss_rng *rng,
              float *scratch) {
    ss_sampling_probs(s, logits, vocab, history, n_history, scratch);
    if (s->temperature <= 0.0f) return ss_argmax(scratch, vocab);
    return ss_sample_from(scratch, vocab, rng);
}

int ss_sample_with(const ss_sampling *s, const float *logits, int vocab, double u, float *scratch) {
    if (s->temperature <= 0.0f) return ss_argmax(logits, vocab);
    ss_sampling_probs(s, logits, vocab, NULL, 0, scratch);
    return ss_sample_at(scratch, vocab, u);
}
