/* sampler.h — turning logits into a token (engine-internal; used by spec.c and session.c).
 *
 * ss_sampling_probs follows Hugging Face's logits-processor order: repetition penalty over the
 * history ids, temperature, top-k, top-p, min-p, then softmax. Temperature 0 gives the one-hot
 * distribution of the argmax (after the penalty), so greedy decoding is the same code path. */
#ifndef SPECSCOPE_SAMPLER_H
#define SPECSCOPE_SAMPLER_H

#include "specscope.h"

/* xoshiro256** seeded through splitmix64: the same seed gives the same stream everywhere. */
typedef struct {
    uint64_t s[4];
} ss_rng;

void ss_rng_seed(ss_rng *rng, uint64_t seed);
double ss_rng_uniform(ss_rng *rng); /* [0, 1) with 53 random bits */

/* logits [vocab] -> probs [vocab], the final distribution. History ids outside [0, vocab) are
 * ignored. Ties at a top-k / top-p cut are all kept (the cut is by value). */
void ss_sampling_probs(const ss_sampling *s, const float *logits, int vocab, const int *history, int n_history,
                       float *probs);
/* Inverse CDF over probs in index order at u in [0, 1): the first index whose running sum exceeds
 * u * total (probs need not sum to 1; zero entries are never drawn; 0 when none is positive). */
int ss_sample_at(const float *probs, int vocab, double u);
/* ss_sample_at with one uniform of the RNG (drawn even when no entry is positive). */
int ss_sample_from(const float *probs, int vocab, ss_rng *rng);
/* Index of the largest logit; the lowest index on ties. */
int ss_argmax(const float *logits, int vocab);
/* ss_sampling_probs into scratch [vocab], then the argmax (temperature 0) or one draw. */
int ss_sample(const ss_sampling *s, const float *logits, int vocab, const int *history, int n_history, ss_rng *rng,
              float *scratch);
/* Whether the repetition penalty is on (then the distribution depends on the history). */
bool ss_sampling_has_penalty(const ss_sampling *s);
/* ss_sample without a history (the penalty is not applied) and with its uniform u given: the
 * argmax at temperature 0, else ss_sample_at(probs, u). The rule a backend's argmax_rows /
 * sample_rows follows; scratch [vocab] is used only when sampling. */
int ss_sample_with(const ss_sampling *s, const float *logits, int vocab, double u, float *scratch);

#endif
