/* spec.c — plain and speculative decoding.
 *
 * Every mode runs the same round: draft (a model, prompt lookup, or nothing), verify the drafted
 * tokens with one target forward over them plus the pending token, accept by the lossless rule,
 * roll both KV caches back to the accepted length, and (EasySpec) calibrate the draft's cache.
 *
 * Invariant between rounds: seq holds prompt + emitted tokens (length L); the target's cache holds
 * seq[0, L-1) and seq[L-1] is pending; the draft's cache holds a prefix of seq that it catches up on
 * at the start of its next round. A KV entry at position i is valid exactly when the ids at 0..i
 * match, so each cache is described by the id list it was computed from (ss_kv_state), and rollback
 * is truncating that list.
 *
 * Greedy decoding is the same rule on one-hot distributions (temperature 0 makes ss_sampling_probs
 * one-hot): accept iff the target's argmax equals the draft, else emit the target's argmax.
 *
 * Where only a token is wanted from a forward, the forward picks it (ss_forward_pick: on the device
 * when the backend can, so no logits cross to the host): greedy without a repetition penalty, every
 * forward of the target and, unless adaptive drafting needs the draft's confidence, of the draft;
 * sampling without a penalty, the rows with no draft to judge (the first token, rounds with no
 * drafts), each with one uniform of the generator's RNG drawn where the host path would draw it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spec.h"
#include "trace.h"

typedef struct {
    const ss_generator *g;
    const ss_params *params;
    const ss_callbacks *cb;
    ss_kv_state *kv;
    ss_rng rng;
    ss_ids seq;              /* prompt + emitted (+ drafts while a round runs) */
    ss_stream_decoder *dec;
    char *last_piece; /* the last token's piece with the decoder's flush (with_tail) */
    ss_result *out;
    float *target_logits;    /* [(SS_MAX_K + 1), target vocab] */
    float *draft_logits;     /* [draft vocab]: the draft's prediction for the next position */
    int draft_next;          /* draft_picks: the draft's pick for the next position instead */
    bool have_draft_next;    /* draft_logits / draft_next predict the token after seq (calibration left it) */
    int draft_exact;         /* leading draft cache entries computed by the exact model */
    float *target_probs, *draft_probs; /* [(SS_MAX_K + 1), vocab] */
    int drafts[SS_MAX_K];
    bool finished;
    bool greedy;             /* temperature 0, no repetition penalty: every target row is picked */
    bool sample_picks;       /* temperature > 0, no penalty: rows with no draft to judge are picked */
    bool draft_picks;        /* greedy and no adaptive drafting: the draft's rows are picked too */
    int target_picks[SS_MAX_K + 1]; /* the target's pick after each verified position */
} gen;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int common_prefix(const ss_ids *a, const int *b, int nb) {
    int n = a->n < nb ? a->n : nb, i = 0;
    while (i < n && a->ids[i] == b[i]) i++;
    return i;
}

/* Appends ids[from, to) of seq to a cache's id list (after its forward computed them). */
static ss_status track(ss_ids *cache, const ss_ids *seq, int from, int to, ss_error *err) {
    cache->n = from;
    for (int i = from; i < to; i++)
        if (ss_ids_push(cache, seq->ids[i], err)) return err->status;
    return SS_OK;
}

/* One forward of model m over seq[from, to), optionally with an EasySpec plan. Its rows (all, or
 * the last) come back as logits, or, when ids is set, as the tokens the sampling rule picks from
 * them (at most SS_MAX_K + 1 rows; one uniform of the RNG per row when sampling). */
static ss_status run(gen *G, ss_model *m, const ss_plan *plan, int from, int to, float *logits, int *ids,
                     bool last_only, ss_error *err) {
    int n = to - from, rows = last_only ? 1 : n;
    double uniform[SS_MAX_K + 1];
    if (ids && rows > SS_MAX_K + 1)
        return ss_fail(err, SS_EARG, "token picks for %d rows (at most %d)", rows, SS_MAX_K + 1);
    const ss_sampling *s = &G->params->sampling;
    for (int r = 0; ids && s->temperature > 0.0f && r < rows; r++) uniform[r] = ss_rng_uniform(&G->rng);
    ss_pick pick = {s, G->g->vocab, uniform};
    int *pos = malloc((size_t)n * sizeof *pos);
    if (!pos) return ss_fail(err, SS_ENOMEM, "out of memory for %d positions", n);
    for (int i = 0; i < n; i++) pos[i] = from + i;
    m->plan = plan;
    ss_status st = ids ? ss_forward_pick(m, G->seq.ids + from, pos, n, &pick, ids, last_only, err)
                       : ss_model_forward(m, G->seq.ids + from, pos, n, logits, last_only, err);
    m->plan = NULL;
    free(pos);
    return st;
}

/* The draft's forward over seq[from, to): its prediction for the token after seq[to - 1]. */
static ss_status run_draft(gen *G, const ss_plan *plan, int from, int to, ss_error *err) {
    return run(G, G->g->draft, plan, from, to, G->draft_picks ? NULL : G->draft_logits,
               G->draft_picks ? &G->draft_next : NULL, true, err);
}

static bool is_stop(const gen *G, int id) {
    for (int i = 0; i < G->g->n_stop; i++)
        if (G->g->stop_ids[i] == id) return true;
    return false;
}

/* The last token's piece with whatever the decoder still holds (the bytes of a character the
 * generation stopped inside, repaired as the final text is), so that the streamed pieces add up to
 * the result's text. "" when out of memory, like the decoder itself. */
static const char *with_tail(gen *G, const char *piece) {
    size_t n = strlen(piece);
    char *head = realloc(G->last_piece, n + 1); /* piece lives in the decoder, which flush reuses */
    if (!head) return "";
    G->last_piece = memcpy(head, piece, n + 1);
    const char *tail = ss_stream_decoder_flush(G->dec);
    size_t t = strlen(tail);
    char *joined = realloc(G->last_piece, n + t + 1);
    if (!joined) return "";
    memcpy(joined + n, tail, t + 1);
    return G->last_piece = joined;
}

static ss_status emit(gen *G, int id, char source, ss_error *err) {
    ss_result *out = G->out;
    if (ss_ids_push(&G->seq, id, err) || ss_ids_push(&out->tokens, id, err)) return err->status;
    char *src = realloc(out->sources, (size_t)out->tokens.n + 1);
    if (!src) return ss_fail(err, SS_ENOMEM, "out of memory for token sources");
    out->sources = src;
    src[out->tokens.n - 1] = source;
    src[out->tokens.n] = 0;
    out->stats.generated++;
    if ((G->params->stop_at_eos && is_stop(G, id)) || out->stats.generated >= G->params->max_tokens) G->finished = true;
    if (G->cb && G->cb->on_token) {
        const char *piece = G->dec ? ss_stream_decoder_push(G->dec, id) : "";
        if (G->finished && G->dec) piece = with_tail(G, piece);
        G->cb->on_token(G->cb->ud, piece, id, source);
    }
    return SS_OK;
}

/* Distribution of the sampling rule at the position after seq[0, n_history). */
static void distribution(const gen *G, const float *logits, int n_history, float *probs) {
    ss_sampling_probs(&G->params->sampling, logits, G->g->vocab, G->seq.ids, n_history, probs);
}

/* Softmax peak of raw logits: the draft's confidence for adaptive drafting. */
static float confidence(const float *logits, int vocab) {
    float mx = logits[0];
    for (int i = 1; i < vocab; i++) mx = fmaxf(mx, logits[i]);
    double sum = 0;
    for (int i = 0; i < vocab; i++) sum += exp((double)logits[i] - mx);
    return (float)(1.0 / sum);
}

int ss_spec_accept(const float *p, const float *q, int vocab, int d, ss_rng *rng) {
    double u = ss_rng_uniform(rng);
    if (d >= 0 && d < vocab && q[d] > 0 && u * q[d] < p[d]) return -1; /* accept with probability min(1, p/q) */
    double total = 0;
    for (int v = 0; v < vocab; v++) total += fmax(0.0, (double)p[v] - q[v]);
    if (total <= 0) return ss_sample_from(p, vocab, rng); /* p == q up to rounding: any draw from p */
    double r = ss_rng_uniform(rng) * total, acc = 0;
    int last = d;
    for (int v = 0; v < vocab; v++) {
        double w = fmax(0.0, (double)p[v] - q[v]);
        if (w <= 0) continue;
        acc += w;
        last = v;
        if (r < acc) return v;
    }
    return last;
}

int ss_ngram_propose(const int *ids, int n, int max_ngram, int k, int *out) {
    for (int len = max_ngram < n - 1 ? max_ngram : n - 1; len >= 1; len--) {
        const int *suffix = ids + n - len;
        for (int j = n - len - 1; j >= 0; j--) {
            if (memcmp(ids + j, suffix, (size_t)len * sizeof *ids) != 0) continue;
            int count = 0;
            while (count < k && j + len + count < n) {
                out[count] = ids[j + len + count];
                count++;
            }
            return count;
        }
    }
    return 0;
}

/* Prefill: both caches take the prompt (reusing a cached prefix); the first token comes from the
 * target's prediction at the last prompt position. */
static ss_status prefill(gen *G, int n_prompt, ss_error *err) {
    double t0 = now_ms();
    const ss_generator *g = G->g;
    int from = common_prefix(&G->kv->target_ids, G->seq.ids, n_prompt - 1), first;
    bool pick = G->greedy || G->sample_picks;
    ss_trace_span span = ss_trace_begin(ss_tracer_active(), "prefill", "target", "prefill", -1);
    if (run(G, g->target, NULL, from, n_prompt, pick ? NULL : G->target_logits, pick ? &first : NULL, true, err) ||
        track(&G->kv->target_ids, &G->seq, from, n_prompt, err))
        return err->status;
    ss_trace_end(&span);
    if (g->draft_kind == SS_DRAFT_MODEL && G->params->k > 0) {
        int dfrom = common_prefix(&G->kv->draft_ids, G->seq.ids, n_prompt - 1);
        /* No rows wanted: the draft's prediction is of the first token, which the target emits. */
        span = ss_trace_begin(ss_tracer_active(), "prefill", "draft", "prefill", -1);
        if (run(G, g->draft, NULL, dfrom, n_prompt, NULL, NULL, true, err) ||
            track(&G->kv->draft_ids, &G->seq, dfrom, n_prompt, err))
            return err->status;
        ss_trace_end(&span);
        G->have_draft_next = false;
        G->draft_exact = n_prompt;
    }
    if (!pick) {
        distribution(G, G->target_logits, n_prompt, G->target_probs);
        first = ss_sample_from(G->target_probs, g->vocab, &G->rng);
    }
    G->out->stats.ms_prefill = now_ms() - t0;
    return emit(G, first, 't', err);
}

/* Drafts up to k tokens after seq (length L) into G->drafts and G->draft_probs. Returns how many. */
static int draft_model(gen *G, int k, ss_error *err) {
    const ss_generator *g = G->g;
    int L = G->seq.n;
    ss_ids *dc = &G->kv->draft_ids;
    if (!G->have_draft_next) { /* catch up on what the target emitted since the draft last ran */
        int from = common_prefix(dc, G->seq.ids, L - 1);
        if (run_draft(G, g->draft_plan, from, L, err) || track(dc, &G->seq, from, L, err)) return -1;
    }
    G->have_draft_next = false;
    int n = 0;
    while (n < k) {
        if (G->params->adaptive > 0 && n > 0 && confidence(G->draft_logits, g->vocab) < G->params->adaptive) break;
        int d = G->draft_next;
        if (!G->draft_picks) {
            float *q = G->draft_probs + (size_t)n * g->vocab;
            distribution(G, G->draft_logits, G->seq.n, q);
            d = ss_sample_from(q, g->vocab, &G->rng);
        }
        G->drafts[n++] = d;
        if (ss_ids_push(&G->seq, d, err)) return -1;
        if (n == k) break;
        if (run_draft(G, g->draft_plan, G->seq.n - 1, G->seq.n, err) || ss_ids_push(dc, d, err)) return -1;
    }
    return n;
}

/* Prompt lookup: one-hot draft distributions on the proposed tokens. */
static int draft_ngram(gen *G, int k, ss_error *err) {
    int vocab = G->g->vocab;
    int n = ss_ngram_propose(G->seq.ids, G->seq.n, 3, k, G->drafts);
    for (int i = 0; i < n; i++) {
        float *q = G->draft_probs + (size_t)i * vocab;
        memset(q, 0, (size_t)vocab * sizeof *q);
        if (G->drafts[i] >= 0 && G->drafts[i] < vocab) q[G->drafts[i]] = 1;
        if (ss_ids_push(&G->seq, G->drafts[i], err)) return -1;
    }
    return n;
}

/* EasySpec: recompute the draft's cache exactly from the first approximate entry through the token
 * the target just emitted, in one batched forward; its last row seeds the next round. */
static ss_status calibrate(gen *G, ss_error *err) {
    int L = G->seq.n;
    int from = common_prefix(&G->kv->draft_ids, G->seq.ids, L);
    if (from > G->draft_exact) from = G->draft_exact;
    if (from >= L) from = L - 1;
    if (run_draft(G, NULL, from, L, err) || track(&G->kv->draft_ids, &G->seq, from, L, err)) return err->status;
    G->draft_exact = L;
    G->have_draft_next = true;
    return SS_OK;
}

static int round_k(const gen *G) {
    const ss_generator *g = G->g;
    if (g->draft_kind == SS_DRAFT_NONE || G->params->k <= 0) return 0;
    int k = G->params->k > SS_MAX_K ? SS_MAX_K : G->params->k;
    int room = ss_model_max_context(g->target) - G->seq.n; /* verify writes L-1 .. L-1+k */
    if (g->draft_kind == SS_DRAFT_MODEL) {
        int droom = ss_model_max_context(g->draft) - G->seq.n;
        if (droom < room) room = droom;
    }
    int left = G->params->max_tokens - G->out->stats.generated; /* no point drafting past the end */
    if (k > room) k = room;
    if (k > left) k = left;
    return k < 0 ? 0 : k;
}

static ss_status one_round(gen *G, ss_error *err) {
    const ss_generator *g = G->g;
    ss_stats *st = &G->out->stats;
    ss_step step = {0};
    int L = G->seq.n;
    int k = round_k(G);

    double t0 = now_ms();
    /* Timeline spans (engine/trace.h): nothing is recorded unless a tracer is active. */
    ss_trace_span span = ss_trace_begin(ss_tracer_active(), "draft", "draft", "draft", -1);
    int n = 0;
    if (k == 0) G->have_draft_next = false; /* the draft skips this round and falls behind */
    if (k > 0 && g->draft_kind == SS_DRAFT_MODEL) n = draft_model(G, k, err);
    else if (k > 0 && g->draft_kind == SS_DRAFT_NGRAM) n = draft_ngram(G, k, err);
    if (n < 0) return err->status;
    double t1 = now_ms();
    ss_trace_end(&span);
    span = ss_trace_begin(ss_tracer_active(), "verify", "target", "verify", -1);

    /* Verify: the pending token and the n drafts in one target forward. */
    bool pick = G->greedy || (G->sample_picks && n == 0);
    if (run(G, g->target, NULL, L - 1, L + n, pick ? NULL : G->target_logits, pick ? G->target_picks : NULL, false,
            err) ||
        track(&G->kv->target_ids, &G->seq, L - 1, L + n, err))
        return err->status;
    st->steps++;
    int accepted = 0, next = -1;
    if (pick) { /* one-hot distributions: keep drafts while they are the target's picks, then its pick */
        while (accepted < n && G->drafts[accepted] == G->target_picks[accepted]) accepted++;
        next = G->target_picks[accepted];
    } else {
        size_t tv = (size_t)ss_model_config(g->target)->vocab_size;
        for (; accepted < n; accepted++) {
            float *p = G->target_probs + (size_t)accepted * g->vocab;
            distribution(G, G->target_logits + accepted * tv, L + accepted, p);
            next = ss_spec_accept(p, G->draft_probs + (size_t)accepted * g->vocab, g->vocab, G->drafts[accepted],
                                  &G->rng);
            if (next >= 0) break;
        }
        if (accepted == n) { /* all accepted: the bonus token from the target's next prediction */
            float *p = G->target_probs + (size_t)n * g->vocab;
            distribution(G, G->target_logits + n * tv, L + n, p);
            next = ss_sample_from(p, g->vocab, &G->rng);
        }
    }
    double t2 = now_ms();
    ss_trace_end(&span);

    /* Roll back: drop the rejected drafts from the context, then emit. */
    G->seq.n = L;
    for (int i = 0; i < accepted && !G->finished; i++)
        if (emit(G, G->drafts[i], 'd', err)) return err->status;
    if (!G->finished && emit(G, next, 't', err)) return err->status;
    ss_ids *tc = &G->kv->target_ids, *dc = &G->kv->draft_ids;
    tc->n = common_prefix(tc, G->seq.ids, G->seq.n - 1);
    dc->n = common_prefix(dc, G->seq.ids, G->seq.n - 1);
    if (G->draft_exact > dc->n) G->draft_exact = dc->n;

    double t3 = now_ms();
    span = ss_trace_begin(ss_tracer_active(), "calibrate", "draft", "calibrate", -1);
    /* Only a round that drafted with the plan left approximate entries; after a round without drafts
     * (plain decoding, k = 0) the draft is just behind, as without EasySpec. */
    if (g->draft_kind == SS_DRAFT_MODEL && g->draft_plan && n > 0 && !G->finished && calibrate(G, err))
        return err->status;
    double t4 = now_ms();
    ss_trace_end(&span);
    /* The round's GPU work is done (its results are on the host): a timeline can have its kernels. */
    ss_trace_gpu_flush_every(SS_TRACE_LIVE_FLUSH_NS);

    step.proposed = n;
    step.accepted = accepted;
    step.emitted = G->seq.n - L;
    for (int i = 0; i < n; i++) {
        step.outcome[i] = i < accepted;
        st->pos_proposed[i]++;
        st->pos_accepted[i] += i < accepted;
    }
    step.ms_draft = t1 - t0;
    step.ms_verify = t2 - t1; /* emission (t2..t3) runs the callbacks: counted in no phase */
    step.ms_calibrate = t4 - t3;
    st->proposed += n;
    st->accepted += accepted;
    st->ms_draft += step.ms_draft;
    st->ms_verify += step.ms_verify;
    st->ms_calibrate += step.ms_calibrate;
    if (G->cb && G->cb->on_step) G->cb->on_step(G->cb->ud, &step);
    return SS_OK;
}

static ss_status alloc_buffers(gen *G, ss_error *err) {
    const ss_generator *g = G->g;
    size_t tv = (size_t)ss_model_config(g->target)->vocab_size;
    size_t dv = g->draft ? (size_t)ss_model_config(g->draft)->vocab_size : 1;
    G->target_logits = malloc((SS_MAX_K + 1) * tv * sizeof(float));
    G->draft_logits = malloc(dv * sizeof(float));
    G->target_probs = malloc((SS_MAX_K + 1) * (size_t)g->vocab * sizeof(float));
    G->draft_probs = malloc((SS_MAX_K + 1) * (size_t)g->vocab * sizeof(float));
    if (!G->target_logits || !G->draft_logits || !G->target_probs || !G->draft_probs)
        return ss_fail(err, SS_ENOMEM, "out of memory for logits of a %zu-token vocabulary", tv);
    return SS_OK;
}

static void free_buffers(gen *G) {
    free(G->target_logits);
    free(G->draft_logits);
    free(G->target_probs);
    free(G->draft_probs);
    ss_ids_free(&G->seq);
    if (G->dec) ss_stream_decoder_free(G->dec);
    free(G->last_piece);
}

static void finish_stats(gen *G, double t_start) {
    ss_stats *st = &G->out->stats;
    const ss_generator *g = G->g;
    st->ms_total = now_ms() - t_start;
    double decode_ms = st->ms_total - st->ms_prefill;
    st->tokens_per_s = decode_ms > 0 ? (st->generated - 1) / (decode_ms / 1e3) : 0;
    st->has_draft = g->draft_kind != SS_DRAFT_NONE && G->params->k > 0;
    st->k = st->has_draft ? G->params->k : 0;
    st->mean_accepted_length = st->steps ? (double)(st->generated - 1) / st->steps : 0;
}

ss_status ss_generate(const ss_generator *g, ss_kv_state *kv, const int *prompt, int n_prompt,
                      const ss_params *p, const ss_callbacks *cb, ss_result *out, ss_error *err) {
    memset(out, 0, sizeof *out);
    if (n_prompt < 1) return ss_fail(err, SS_EARG, "empty prompt: at least one token is needed");
    int ctx = ss_model_max_context(g->target);
    if (n_prompt >= ctx) return ss_fail(err, SS_EARG, "prompt of %d tokens does not fit the context of %d", n_prompt, ctx);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= ss_model_config(g->target)->vocab_size)
            return ss_fail(err, SS_EARG, "prompt token %d at index %d is outside the vocabulary [0, %d)",
                           prompt[i], i, ss_model_config(g->target)->vocab_size);
    if (p->max_tokens < 1) return SS_OK;

    gen G = {.g = g, .params = p, .cb = cb, .kv = kv, .out = out};
    bool penalty = ss_sampling_has_penalty(&p->sampling);
    G.greedy = p->sampling.temperature <= 0.0f && !penalty;
    G.sample_picks = p->sampling.temperature > 0.0f && !penalty;
    G.draft_picks = G.greedy && p->adaptive <= 0;
    ss_rng_seed(&G.rng, p->sampling.seed);
    if (g->tok) G.dec = ss_stream_decoder_new(g->tok, true);
    double t_start = now_ms();
    ss_status st = alloc_buffers(&G, err);
    for (int i = 0; !st && i < n_prompt; i++) st = ss_ids_push(&G.seq, prompt[i], err);
    out->stats.prompt_tokens = n_prompt;
    if (!st) st = prefill(&G, n_prompt, err);
    while (!st && !G.finished) {
        if (cb && cb->stop && *cb->stop) {
            st = ss_fail(err, SS_ESTOPPED, "generation stopped");
            break;
        }
        if (G.seq.n >= ctx) break; /* the context is full */
        st = one_round(&G, err);
    }
    finish_stats(&G, t_start);
    if (g->tok && (!st || st == SS_ESTOPPED)) {
        ss_error derr;
        if (ss_tokenizer_decode(g->tok, out->tokens.ids, out->tokens.n, true, &out->text, &derr)) out->text = NULL;
    }
    if (!out->text) out->text = calloc(1, 1);
    free_buffers(&G);
    if (st && st != SS_ESTOPPED) { /* a failed step may leave the caches anywhere: forget them */
        kv->target_ids.n = 0;
        kv->draft_ids.n = 0;
        ss_result_free(out); /* and leave no half-made result */
    }
    return st;
}

void ss_kv_state_free(ss_kv_state *kv) {
    ss_ids_free(&kv->target_ids);
    ss_ids_free(&kv->draft_ids);
}

void ss_result_free(ss_result *r) {
    free(r->text);
    ss_ids_free(&r->tokens);
    free(r->sources);
    memset(r, 0, sizeof *r);
}
