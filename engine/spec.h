/* spec.h — generation: plain decoding and speculative decoding (draft model, EasySpec plan, or
 * prompt lookup), with per-token sources and statistics. Internal to the engine; session.c drives it. */
#ifndef SPECSCOPE_SPEC_H
#define SPECSCOPE_SPEC_H

#include "model.h"
#include "sampler.h"

typedef enum { SS_DRAFT_NONE = 0, SS_DRAFT_MODEL, SS_DRAFT_NGRAM } ss_draft_kind;

/* The KV state two models share with the token context: the ids whose K/V are valid in each cache.
 * It outlives one generate call so that a follow-up prompt that extends the context (chat turns)
 * reuses the cached prefix. */
typedef struct {
    ss_ids target_ids; /* ids whose K/V are in the target's cache, positions 0.. */
    ss_ids draft_ids;  /* likewise for the draft model */
} ss_kv_state;

typedef struct {
    ss_model *target;
    ss_model *draft; /* SS_DRAFT_MODEL only */
    ss_draft_kind draft_kind;
    const ss_plan *draft_plan; /* EasySpec: the draft runs this plan, then calibrates; NULL: exact */
    int vocab;                /* ids sampled from [0, vocab): the tokenizer's size; extra rows masked */
    const ss_tokenizer *tok;  /* pieces for on_token; may be NULL */
    const int *stop_ids;      /* generation ends after emitting one of these */
    int n_stop;
} ss_generator;

/* Generates after prompt (ids, no formatting). Fills out (tokens, sources, text, stats). */
ss_status ss_generate(const ss_generator *g, ss_kv_state *kv, const int *prompt, int n_prompt,
                      const ss_params *p, const ss_callbacks *cb, ss_result *out, ss_error *err);

/* The lossless acceptance rule for one draft position (Leviathan et al. / Chen et al.).
 * p, q: target and draft distributions over vocab; d: the draft token. Returns -1 when d is
 * accepted, else the replacement token sampled from norm(max(0, p - q)). */
int ss_spec_accept(const float *p, const float *q, int vocab, int d, ss_rng *rng);

/* Prompt lookup: proposes up to k tokens that followed the most recent earlier occurrence of the
 * longest suffix (max_ngram down to 1 tokens) of ids. Returns the number proposed. */
int ss_ngram_propose(const int *ids, int n, int max_ngram, int k, int *out);

void ss_kv_state_free(ss_kv_state *kv);

#endif
