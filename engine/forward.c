/* forward.c — the transformer forward pass, written once against the backend ops, and the EasySpec
 * plans that run groups of layers in parallel on one input (layer-parallel drafting).
 *
 * Sequential layer: x += o(attn(rope(qkv(norm(x))))); x += down(silu(gate(norm(x))) * up(norm(x))).
 *
 * A group of count > 1 layers under a plan reads the group's input x in every layer:
 *   attention-parallel (SS_EASYSPEC_ATTN): x' = x + sum_l a_l(x), then the group's MLPs in order on x';
 *   layer-parallel (SS_EASYSPEC_LAYER):   x' = x + sum_l (a_l + mlp_l(x + a_l)),
 * with a_l(x) = o_l(attn_l(norm_l(x))). The q/k/v projections of the group are one matmul over
 * stacked weights whose columns carry each layer's input-norm weight, applied to the unweighted
 * rmsnorm(x); in attention-parallel mode the o projections are one matmul too, over the
 * concatenated attention outputs with W_o stacked along its input dimension, which sums the
 * residual updates. Each layer still writes its own KV cache. The fused matmuls work on one
 * position (drafting decodes one token at a time), so a batch under a plan runs position by
 * position.
 *
 * Tensor parallelism (model.h): every layer runs on each rank with the rank's share of the heads and
 * MLP rows; the o and down projections leave partial sums, which the communicator (tp.h) adds up
 * across the ranks before each rank adds them to its copy of the residual stream. With one rank
 * there is no communicator and the ops are exactly the single-device forward's. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora.h"
#include "model.h"
#include "sampler.h"
#include "trace.h"

/* A rank's share of the q and k/v widths (the whole model's with tp = 1). */
static int q_dim(const ss_model *m) { return m->heads * m->cfg.head_dim; }
static int kv_dim(const ss_model *m) { return m->kv_heads * m->cfg.head_dim; }

/* An optional weight as the ops take it: NULL when absent. */
static const ss_weight *opt(const ss_weight *w) { return w->data ? w : NULL; }

/* ---------------------------------------------------------------- layer pieces */

/* q/k norm, rope, KV store and attention of one layer whose q, k, v [n, ...] are projected; m is the
 * model or one tensor-parallel rank (its heads). */
static void attend(ss_model *m, ss_layer *L, float *q, float *k, float *v, float *att, int n) {
    const ss_config *c = &m->cfg;
    const ss_backend_ops *o = m->be->ops;
    if (c->qk_norm) {
        o->rmsnorm(m->be, q, q, &L->q_norm, n * m->heads, c->head_dim, c->rms_eps);
        o->rmsnorm(m->be, k, k, &L->k_norm, n * m->kv_heads, c->head_dim, c->rms_eps);
    }
    o->rope(m->be, q, n, m->heads, &m->rope);
    o->rope(m->be, k, n, m->kv_heads, &m->rope);
    o->kv_store(m->be, L->kcache, L->vcache, k, v, n, kv_dim(m));
    o->attention(m->be, att, q, L->kcache, L->vcache, n, m->heads, m->kv_heads, c->head_dim);
}

/* out = down(silu(gate(h)) * up(h)) with h = mlp_norm(in); out may be in or s.xn. LoRA adapters add
 * their updates to each projection's output (lora.h; nothing without adapters). */
static void mlp(ss_model *m, const ss_layer *L, float *out, const float *in, int n) {
    const ss_config *c = &m->cfg;
    const ss_backend_ops *o = m->be->ops;
    ss_scratch *s = &m->s;
    const int l = (int)(L - m->layers);
    o->rmsnorm(m->be, s->xn, in, &L->mlp_norm, n, c->hidden, c->rms_eps);
    o->matmul(m->be, s->gate, s->xn, &L->gate, NULL, n);
    o->matmul(m->be, s->up, s->xn, &L->up, NULL, n);
    ss_lora_apply(m, l, LORA_GATE, s->gate, s->xn, n);
    ss_lora_apply(m, l, LORA_UP, s->up, s->xn, n);
    o->silu_mul(m->be, s->gate, s->up, (size_t)n * m->intermediate);
    o->matmul(m->be, out, s->gate, &L->down, NULL, n);
    ss_lora_apply(m, l, LORA_DOWN, out, s->gate, n);
}

/* s.xn = o(attn(rope(qkv(norm(x))))) of one rank: the update from its heads. */
static void attention_update(ss_model *r, int l, int n) {
    const ss_config *c = &r->cfg;
    const ss_backend_ops *o = r->be->ops;
    ss_scratch *s = &r->s;
    ss_layer *L = &r->layers[l];
    o->rmsnorm(r->be, s->xn, s->x, &L->attn_norm, n, c->hidden, c->rms_eps);
    o->matmul(r->be, s->q, s->xn, &L->q, opt(&L->q_bias), n);
    o->matmul(r->be, s->k, s->xn, &L->k, opt(&L->k_bias), n);
    o->matmul(r->be, s->v, s->xn, &L->v, opt(&L->v_bias), n);
    ss_lora_apply(r, l, LORA_Q, s->q, s->xn, n);
    ss_lora_apply(r, l, LORA_K, s->k, s->xn, n);
    ss_lora_apply(r, l, LORA_V, s->v, s->xn, n);
    attend(r, L, s->q, s->k, s->v, s->att, n);
    o->matmul(r->be, s->xn, s->att, &L->o, NULL, n);
    ss_lora_apply(r, l, LORA_O, s->xn, s->att, n);
}

/* Each rank's s.xn holds its part of an update (row-parallel o / down: a partial sum over its input
 * columns); the whole update is added to every rank's residual stream x (by the communicator, which
 * sums and adds in one step; s.xn is spent). */
static void add_updates(ss_model *m, int n) {
    const size_t count = (size_t)n * m->cfg.hidden;
    if (!m->comm) {
        m->be->ops->add(m->be, m->s.x, m->s.xn, count);
        return;
    }
    ss_backend *bes[SS_MAX_TP];
    float *bufs[SS_MAX_TP], *into[SS_MAX_TP];
    for (int r = 0; r < m->tp; r++) bes[r] = m->ranks[r]->be, bufs[r] = m->ranks[r]->s.xn, into[r] = m->ranks[r]->s.x;
    m->comm->ops->all_reduce_sum(m->comm, bes, bufs, into, count);
}

/* One layer on every rank; the residual stream x is replicated, each rank adds the summed updates. */
static void layer_forward(ss_model *m, int l, int n) {
    for (int r = 0; r < m->tp; r++) attention_update(m->ranks[r], l, n);
    add_updates(m, n);
    for (int r = 0; r < m->tp; r++) {
        ss_model *R = m->ranks[r];
        mlp(R, &R->layers[l], R->s.xn, R->s.x, n);
    }
    add_updates(m, n);
}

/* ---------------------------------------------------------------- EasySpec groups (one position) */

/* Row j of the stacked q/k/v output holds layer first+j's [q | k | v]. */
static size_t group_row(const ss_model *m) { return (size_t)q_dim(m) + 2 * (size_t)kv_dim(m); }

/* Attention of every layer of the group on the group's input s.x; outputs concatenated in s.att. */
static void group_attention(ss_model *m, const ss_group *g) {
    const ss_config *c = &m->cfg;
    const ss_backend_ops *o = m->be->ops;
    ss_scratch *s = &m->s;
    o->rmsnorm(m->be, s->xn, s->x, NULL, 1, c->hidden, c->rms_eps);
    o->matmul(m->be, s->q, s->xn, &g->qkv, opt(&g->qkv_bias), 1);
    for (int j = 0; j < g->count; j++) {
        float *q = s->q + (size_t)j * group_row(m), *k = q + q_dim(m), *v = k + kv_dim(m);
        attend(m, &m->layers[g->first + j], q, k, v, s->att + (size_t)j * q_dim(m), 1);
    }
}

static void group_forward(ss_model *m, const ss_group *g, ss_easyspec_mode mode) {
    const ss_config *c = &m->cfg;
    const ss_backend_ops *o = m->be->ops;
    ss_scratch *s = &m->s;
    size_t hidden = (size_t)c->hidden;
    group_attention(m, g);
    if (mode == SS_EASYSPEC_ATTN) {
        o->matmul(m->be, s->xn, s->att, &g->o, NULL, 1); /* sum of the group's attention updates */
        o->add(m->be, s->x, s->xn, hidden);
        for (int j = 0; j < g->count; j++) {
            mlp(m, &m->layers[g->first + j], s->xn, s->x, 1);
            o->add(m->be, s->x, s->xn, hidden);
        }
        return;
    }
    /* Layer-parallel: rows 1 and 2 of s.x (free with one position) hold h_l and the sum of updates. */
    float *h = s->x + hidden, *sum = s->x + 2 * hidden;
    o->scale_add(m->be, sum, -1.0f, sum, hidden); /* sum = 0 */
    for (int j = 0; j < g->count; j++) {
        ss_layer *L = &m->layers[g->first + j];
        o->matmul(m->be, h, s->att + (size_t)j * q_dim(m), &L->o, NULL, 1); /* a_l */
        o->add(m->be, sum, h, hidden);
        o->add(m->be, h, s->x, hidden); /* x + a_l */
        mlp(m, L, h, h, 1);
        o->add(m->be, sum, h, hidden);
    }
    o->add(m->be, s->x, sum, hidden);
}

/* ---------------------------------------------------------------- the forward */

/* A host span per layer (or EasySpec group: its first layer) for the tracer (engine/trace.h), on
 * backends that compute each op as it is issued (the CPU), where the span is the layer's time. The
 * CUDA backend queues its ops (and replays graphs without calling forward.c), so there the per-layer
 * picture comes from the kernels (CUPTI) instead. Model and phase come from spec.c's enclosing span. */
static ss_trace_span layer_span(const ss_model *m, const char *name, int layer) {
    return ss_trace_begin(m->be->ops->run_graph ? NULL : ss_tracer_active(), name, NULL, NULL, layer);
}

static void run_layers(ss_model *m, int n) {
    const ss_plan *plan = m->plan;
    for (int i = 0; i < (plan ? plan->n_groups : m->cfg.n_layers); i++) {
        const ss_group *g = plan ? &plan->groups[i] : NULL;
        const int first = g ? g->first : i;
        ss_trace_span span = layer_span(m, g && g->count > 1 ? "group" : "layer", first);
        if (g && g->count > 1)
            group_forward(m, g, plan->mode);
        else
            layer_forward(m, first, n);
        ss_trace_end(&span);
    }
}

/* One forward's device work after set_batch: embed, the layers, and the logits rows. */
typedef struct {
    ss_model *m;
    int n, rows; /* rows of logits wanted: 0, 1 (last) or n */
} forward_work;

static void record_forward(void *ctx) {
    forward_work *w = ctx;
    ss_model *m = w->m;
    const ss_config *c = &m->cfg;
    const ss_backend_ops *o = m->be->ops;
    ss_scratch *s = &m->s;
    for (int r = 0; r < m->tp; r++) {
        ss_model *R = m->ranks[r];
        R->be->ops->embed(R->be, R->s.x, &R->embed, w->n);
    }
    run_layers(m, w->n);
    if (w->rows) {
        const float *x = s->x + (size_t)(w->n - w->rows) * c->hidden;
        o->rmsnorm(m->be, s->xn, x, &m->final_norm, w->rows, c->hidden, c->rms_eps);
        o->matmul(m->be, s->logits, s->xn, &m->lm_head, NULL, w->rows);
    }
}

/* A graph serves every forward of one shape: batch size, logits rows, plan, communicator and what the
 * LoRA adapters compute (their scales are kernel arguments). */
static uint64_t graph_key(const ss_model *m, const forward_work *w) {
    uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    MIX(w->n), MIX(w->rows), MIX(m->plan != NULL), MIX(m->comm != NULL), MIX(m->lora_version);
    for (int g = 0; m->plan && g < m->plan->n_groups; g++)
        MIX(m->plan->mode), MIX(m->plan->groups[g].first), MIX(m->plan->groups[g].count);
#undef MIX
    return h;
}

/* The other ranks' work and the communicator's failures (rank 0's show at its sync). */
static ss_status finish_ranks(ss_model *m, ss_error *err) {
    ss_status st = SS_OK;
    for (int r = 1; r < m->tp && st == SS_OK; r++) st = m->ranks[r]->be->ops->sync(m->ranks[r]->be, err);
    return st == SS_OK ? ss_tp_comm_check(m->comm, err) : st;
}

/* Decode, draft and verify steps (small batches) replay as graphs where the backend offers them;
 * prefill chunks run directly. */
#define GRAPH_MAX_BATCH 16

static ss_status pick_rows(ss_model *m, const ss_pick *pick, int rows, int *ids, ss_error *err);

/* The rows (all, or the last) come back as host logits, or as the ids pick chooses from them. */
static ss_status forward_batch(ss_model *m, const int *tokens, const int *positions, int n, float *logits,
                               const ss_pick *pick, int *ids, bool last_only, ss_error *err) {
    const ss_config *c = &m->cfg;
    const ss_backend_ops *o = m->be->ops;
    forward_work w = {m, n, !logits && !ids ? 0 : last_only ? 1 : n};
    ss_status st = ss_lora_refold(m, err); /* merged adapters that changed: uploads, so before any capture */
    if (st) return st;
    for (int r = 0; r < m->tp; r++) m->ranks[r]->be->ops->set_batch(m->ranks[r]->be, tokens, positions, n);
    /* With several ranks, rank 0's graphs hold every rank's work (graph_join, model.c). */
    if (o->run_graph && n <= GRAPH_MAX_BATCH && (m->tp == 1 || o->graph_join))
        st = o->run_graph(m->be, graph_key(m, &w), record_forward, &w, err);
    else record_forward(&w);
    if (!st) st = finish_ranks(m, err);
    if (st) return ss_fail_prefix(err, "%s: forward", m->dir);
    if (w.rows && ids) st = pick_rows(m, pick, w.rows, ids, err);
    else if (w.rows) o->to_host(m->be, logits, m->s.logits, (size_t)w.rows * c->vocab_size * sizeof(float));
    if (!st) st = o->sync(m->be, err);
    return st == SS_OK ? SS_OK : ss_fail_prefix(err, "%s: forward", m->dir);
}

static ss_status check_batch(const ss_model *m, const int *tokens, const int *positions, int n, ss_error *err) {
    if (m->plan && m->n_loras)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: EasySpec groups and LoRA adapters on one model", m->dir);
    if (!tokens || !positions || n <= 0 || n > m->s.max_batch)
        return ss_fail(err, SS_EARG, "%s: forward over %d positions (1..%d, with tokens and positions)", m->dir, n,
                       m->s.max_batch);
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return ss_fail(err, SS_EARG, "%s: token id %d at batch index %d is outside the vocabulary [0, %d)",
                           m->dir, tokens[i], i, m->cfg.vocab_size);
        if (positions[i] < 0 || positions[i] >= m->max_context)
            return ss_fail(err, SS_EARG, "%s: position %d at batch index %d is outside the context [0, %d)", m->dir,
                           positions[i], i, m->max_context);
    }
    return SS_OK;
}

ss_status ss_forward(ss_model *m, const int *tokens, const int *positions, int n, float *logits, bool last_only,
                     ss_error *err) {
    ss_status st = check_batch(m, tokens, positions, n, err);
    if (st != SS_OK) return st;
    if (!m->plan || n == 1) return forward_batch(m, tokens, positions, n, logits, NULL, NULL, last_only, err);
    size_t vocab = (size_t)m->cfg.vocab_size;
    for (int i = 0; i < n && st == SS_OK; i++) {
        float *dst = !logits ? NULL : !last_only ? logits + (size_t)i * vocab : i == n - 1 ? logits : NULL;
        st = forward_batch(m, tokens + i, positions + i, 1, dst, NULL, NULL, true, err);
    }
    return st;
}

/* ---------------------------------------------------------------- plans: parsing */

static ss_status plan_error(ss_error *err, const char *spec, const char *part, int part_len, const char *why) {
    return ss_fail(err, SS_EARG, "easyspec groups \"%s\": part \"%.*s\" %s", spec, part_len, part, why);
}

/* A non-negative decimal number of at most 6 digits at *p; advances *p. */
static bool parse_layer(const char **p, int *out) {
    const char *s = *p;
    int v = 0, digits = 0;
    while (isdigit((unsigned char)*s) && digits < 7) v = v * 10 + (*s++ - '0'), digits++;
    if (digits == 0 || digits > 6) return false;
    *p = s;
    *out = v;
    return true;
}

/* "0-1,2-3,4": consecutive ranges that cover every layer once, in order. */
static ss_status parse_explicit(const char *spec, int n_layers, ss_group *groups, int *n_groups, ss_error *err) {
    int next = 0;
    const char *p = spec;
    for (;;) {
        const char *part = p;
        int part_len = (int)strcspn(part, ",");
        int first, last;
        if (!parse_layer(&p, &first)) return plan_error(err, spec, part, part_len, "is not a layer or a range A-B");
        last = first;
        if (*p == '-') {
            p++;
            if (!parse_layer(&p, &last)) return plan_error(err, spec, part, part_len, "is not a range A-B");
        }
        if (*p != ',' && *p != '\0') return plan_error(err, spec, part, part_len, "is not a layer or a range A-B");
        char why[96];
        if (first != next) {
            snprintf(why, sizeof why, "starts at layer %d; expected layer %d (groups cover every layer in order)",
                     first, next);
            return plan_error(err, spec, part, part_len, why);
        }
        if (last < first) return plan_error(err, spec, part, part_len, "ends before it starts");
        if (last >= n_layers) {
            snprintf(why, sizeof why, "goes past the last layer (%d)", n_layers - 1);
            return plan_error(err, spec, part, part_len, why);
        }
        groups[(*n_groups)++] = (ss_group){.first = first, .count = last - first + 1};
        next = last + 1;
        if (*p == '\0') break;
        p++;
    }
    if (next != n_layers)
        return ss_fail(err, SS_EARG, "easyspec groups \"%s\": layers %d-%d are in no group", spec, next, n_layers - 1);
    return SS_OK;
}

ss_status ss_plan_parse(const ss_model *m, const char *spec, ss_easyspec_mode mode, ss_plan *plan, ss_error *err) {
    memset(plan, 0, sizeof *plan);
    if (!spec || !*spec) return ss_fail(err, SS_EARG, "easyspec groups: empty");
    if (mode != SS_EASYSPEC_ATTN && mode != SS_EASYSPEC_LAYER)
        return ss_fail(err, SS_EARG, "easyspec mode %d is neither attention- nor layer-parallel", (int)mode);
    if (m->tp > 1) /* the draft runs on one device; stacked group weights are not split */
        return ss_fail(err, SS_EUNSUPPORTED, "%s: easyspec groups on a model split over %d ranks", m->dir, m->tp);
    int n_layers = m->cfg.n_layers, n_groups = 0;
    ss_group *groups = calloc((size_t)n_layers, sizeof *groups);
    if (!groups) return ss_fail(err, SS_ENOMEM, "easyspec groups: out of memory");
    ss_status st = SS_OK;
    if (strspn(spec, "0123456789") == strlen(spec)) { /* "G": groups of G consecutive layers */
        const char *p = spec;
        int size;
        if (!parse_layer(&p, &size) || size < 1)
            st = ss_fail(err, SS_EARG, "easyspec group size \"%s\" is not a number from 1 to 999999", spec);
        for (int first = 0; st == SS_OK && first < n_layers; first += size)
            groups[n_groups++] = (ss_group){.first = first, .count = n_layers - first < size ? n_layers - first : size};
    } else {
        st = parse_explicit(spec, n_layers, groups, &n_groups, err);
    }
    if (st != SS_OK) {
        free(groups);
        return st;
    }
    *plan = (ss_plan){mode, n_groups, groups};
    return SS_OK;
}

/* ---------------------------------------------------------------- plans: stacked weights */

/* A checkpoint tensor of model.layers.L as n floats. */
static ss_status layer_tensor_f32(const ss_model *m, int l, const char *suffix, float *dst, size_t n, ss_error *err) {
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);
    const ss_tensor *t = ss_checkpoint_find(m->ck, name);
    if (!t || t->nbytes != n * ss_dtype_size(t->dtype))
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s' is missing or not %zu elements", m->dir, name, n);
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case SS_F32: memcpy(&dst[i], (const char *)t->data + 4 * i, 4); break;
        case SS_F16: dst[i] = ss_f16_to_f32(((const uint16_t *)t->data)[i]); break;
        case SS_BF16: dst[i] = ss_bf16_to_f32(((const uint16_t *)t->data)[i]); break;
        }
    }
    return SS_OK;
}

/* Host buffers for building one group's stacked weights. */
typedef struct {
    float *w, *bias, *norm, *tmp;
} stack_bufs;

static ss_status build_qkv(ss_model *m, ss_group *g, stack_bufs *b, ss_error *err) {
    const ss_config *c = &m->cfg;
    size_t hidden = (size_t)c->hidden, qd = (size_t)q_dim(m), kd = (size_t)kv_dim(m), row = group_row(m);
    static const char *proj[3] = {"q_proj", "k_proj", "v_proj"};
    ss_status st;
    for (int j = 0; j < g->count; j++) {
        int l = g->first + j;
        if ((st = layer_tensor_f32(m, l, "input_layernorm.weight", b->norm, hidden, err))) return st;
        size_t at = (size_t)j * row;
        for (int p = 0; p < 3; p++) {
            size_t rows = p == 0 ? qd : kd;
            char name[64];
            snprintf(name, sizeof name, "self_attn.%s.weight", proj[p]);
            if ((st = layer_tensor_f32(m, l, name, b->w + at * hidden, rows * hidden, err))) return st;
            if (c->qkv_bias) {
                snprintf(name, sizeof name, "self_attn.%s.bias", proj[p]);
                if ((st = layer_tensor_f32(m, l, name, b->bias + at, rows, err))) return st;
            }
            at += rows;
        }
        /* Fold the input norm: (x * inv * n) @ W^T == (x * inv) @ (W * n)^T, scaling column i by n[i]. */
        for (size_t r = (size_t)j * row; r < (size_t)(j + 1) * row; r++)
            for (size_t i = 0; i < hidden; i++) b->w[r * hidden + i] *= b->norm[i];
    }
    const ss_backend_ops *o = m->be->ops;
    int rows = (int)(g->count * row);
    if ((st = o->upload_f32(m->be, b->w, rows, (int)hidden, &g->qkv, err))) return st;
    if (c->qkv_bias && (st = o->upload_f32(m->be, b->bias, 1, rows, &g->qkv_bias, err))) return st;
    return SS_OK;
}

/* W_o of the group side by side: row r = [W_o(first)[r] | W_o(first+1)[r] | ...]. */
static ss_status build_o(ss_model *m, ss_group *g, stack_bufs *b, ss_error *err) {
    const ss_config *c = &m->cfg;
    size_t hidden = (size_t)c->hidden, qd = (size_t)q_dim(m), cols = (size_t)g->count * qd;
    for (int j = 0; j < g->count; j++) {
        ss_status st = layer_tensor_f32(m, g->first + j, "self_attn.o_proj.weight", b->tmp, hidden * qd, err);
        if (st != SS_OK) return st;
        for (size_t r = 0; r < hidden; r++) memcpy(b->w + r * cols + j * qd, b->tmp + r * qd, qd * sizeof(float));
    }
    return m->be->ops->upload_f32(m->be, b->w, (int)hidden, (int)cols, &g->o, err);
}

static void free_group_weights(ss_model *m, ss_group *g) {
    ss_weight *ws[] = {&g->qkv, &g->o, &g->gate_up, &g->qkv_bias};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        if (ws[i]->data) m->be->ops->free_weight(m->be, ws[i]);
}

/* With one position, a group's stacked q/k/v output goes to s.q: grow it when the group needs more. */
static ss_status fit_scratch(ss_model *m, int largest_group, ss_error *err) {
    size_t have = (size_t)m->s.max_batch * q_dim(m), need = (size_t)largest_group * group_row(m);
    if (largest_group > m->s.max_batch) /* s.att holds the concatenated attention outputs */
        return ss_fail(err, SS_EUNSUPPORTED, "easyspec: a group of %d layers is more than %d", largest_group,
                       m->s.max_batch);
    if (need <= have) return SS_OK;
    void *bigger;
    ss_status st = m->be->ops->alloc(m->be, need * sizeof(float), &bigger, err);
    if (st != SS_OK) return ss_fail_prefix(err, "easyspec scratch");
    m->be->ops->free(m->be, m->s.q);
    m->s.q = bigger;
    return SS_OK;
}

ss_status ss_plan_prepare(ss_model *m, ss_plan *plan, ss_error *err) {
    const ss_config *c = &m->cfg;
    int largest = 1;
    for (int i = 0; i < plan->n_groups; i++)
        if (plan->groups[i].count > largest) largest = plan->groups[i].count;
    ss_status st = fit_scratch(m, largest, err);
    if (st != SS_OK || largest == 1) return st;

    size_t hidden = (size_t)c->hidden, qd = (size_t)q_dim(m);
    size_t w_floats = (size_t)largest * group_row(m) * hidden; /* >= the stacked o, count*qd*hidden */
    stack_bufs b = {malloc(w_floats * sizeof(float)), malloc((size_t)largest * group_row(m) * sizeof(float)),
                    malloc(hidden * sizeof(float)), malloc(hidden * qd * sizeof(float))};
    if (!b.w || !b.bias || !b.norm || !b.tmp) st = ss_fail(err, SS_ENOMEM, "easyspec: out of memory stacking weights");
    for (int i = 0; st == SS_OK && i < plan->n_groups; i++) {
        ss_group *g = &plan->groups[i];
        if (g->count == 1) continue;
        st = build_qkv(m, g, &b, err);
        if (st == SS_OK && plan->mode == SS_EASYSPEC_ATTN) st = build_o(m, g, &b, err);
    }
    free(b.w);
    free(b.bias);
    free(b.norm);
    free(b.tmp);
    if (st != SS_OK)
        for (int i = 0; i < plan->n_groups; i++) free_group_weights(m, &plan->groups[i]);
    return st;
}

void ss_plan_free(ss_model *m, ss_plan *plan) {
    if (!plan) return;
    for (int i = 0; m && i < plan->n_groups; i++) free_group_weights(m, &plan->groups[i]);
    free(plan->groups);
    memset(plan, 0, sizeof *plan);
}

/* ---------------------------------------------------------------- token picks instead of logits */

/* The picked ids of the last rows of s.logits. On the device when the backend has the op, so that
 * ids rather than [rows, vocab] floats cross to the host; else from a host copy of the rows. */
static ss_status pick_rows(ss_model *m, const ss_pick *pick, int rows, int *ids, ss_error *err) {
    const ss_backend_ops *o = m->be->ops;
    size_t stride = (size_t)m->cfg.vocab_size;
    bool greedy = pick->sampling->temperature <= 0.0f;
    if (greedy ? o->argmax_rows != NULL : o->sample_rows != NULL) {
        /* The ops take rows of `vocab` floats back to back: a pick that masks the end of each row
         * (vocab < vocab_size) asks for one row at a time. */
        int per_call = (size_t)pick->vocab == stride ? rows : 1;
        for (int r = 0; r < rows; r += per_call) {
            const float *row = m->s.logits + (size_t)r * stride;
            if (greedy) o->argmax_rows(m->be, ids + r, row, per_call, pick->vocab);
            else o->sample_rows(m->be, ids + r, row, per_call, pick->vocab, pick->sampling, pick->uniform + r);
        }
        return SS_OK; /* a failure shows at the caller's sync */
    }
    o->to_host(m->be, m->host_logits, m->s.logits, (size_t)rows * stride * sizeof(float));
    ss_status st = o->sync(m->be, err);
    float *scratch = greedy || st ? NULL : malloc((size_t)pick->vocab * sizeof *scratch);
    if (!st && !greedy && !scratch)
        st = ss_fail(err, SS_ENOMEM, "out of memory for a %d-token distribution", pick->vocab);
    for (int r = 0; !st && r < rows; r++)
        ids[r] = ss_sample_with(pick->sampling, m->host_logits + (size_t)r * stride, pick->vocab,
                                greedy ? 0.0 : pick->uniform[r], scratch);
    free(scratch);
    return st;
}

ss_status ss_forward_pick(ss_model *m, const int *tokens, const int *positions, int n, const ss_pick *pick, int *ids,
                          bool last_only, ss_error *err) {
    if (!m || !pick || !pick->sampling || !ids)
        return ss_fail(err, SS_EARG, "ss_forward_pick: no model, pick, sampling parameters or ids");
    if (pick->vocab < 1 || pick->vocab > m->cfg.vocab_size)
        return ss_fail(err, SS_EARG, "%s: token pick over %d ids; the model has %d", m->dir, pick->vocab,
                       m->cfg.vocab_size);
    if (pick->sampling->temperature > 0.0f && !pick->uniform)
        return ss_fail(err, SS_EARG, "%s: sampling a token pick needs one uniform per row", m->dir);
    if (ss_sampling_has_penalty(pick->sampling))
        return ss_fail(err, SS_EARG, "%s: a repetition penalty needs the history: take logits, not a pick", m->dir);
    /* The forwards ss_model_forward would run (so the same graphs): chunks of max_batch positions,
     * one position at a time under a plan, and only the last chunk's last row with last_only. */
    int per = m->plan ? 1 : m->s.max_batch;
    ss_status st = n > 0 ? SS_OK : check_batch(m, tokens, positions, n, err);
    for (int start = 0; !st && start < n; start += per)
        st = check_batch(m, tokens + start, positions + start, n - start < per ? n - start : per, err);
    for (int start = 0; !st && start < n; start += per) {
        int count = n - start < per ? n - start : per;
        bool wanted = !last_only || start + count == n;
        ss_pick chunk = *pick;
        if (chunk.uniform && !last_only) chunk.uniform += start;
        st = forward_batch(m, tokens + start, positions + start, count, NULL, wanted ? &chunk : NULL,
                           !wanted ? NULL : last_only ? ids : ids + start, last_only, err);
    }
    return st;
}

ss_status ss_model_forward_ids(ss_model *m, const int *tokens, const int *positions, int n, int *ids, bool last_only,
                               ss_error *err) {
    if (!m) return ss_fail(err, SS_EARG, "ss_model_forward_ids: no model");
    ss_sampling greedy;
    ss_sampling_default(&greedy);
    ss_pick pick = {&greedy, m->cfg.vocab_size, NULL};
    return ss_forward_pick(m, tokens, positions, n, &pick, ids, last_only, err);
}
