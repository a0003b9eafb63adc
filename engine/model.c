/* model.c — loading a checkpoint onto a backend (weights, rotary table, KV cache, scratch) and the
 * public ss_model_* calls. The forward pass itself is in forward.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora.h"
#include "model.h"

/* Positions per ss_forward; ss_model_forward chunks longer runs. On CUDA the prefill's matrix
 * products run at 300-550 TFLOP/s as 256-row GEMMs but ~760 as 2048-row ones (H200, docs/cuda.md). */
#define MAX_BATCH_CPU 256
#define MAX_BATCH_CUDA 2048
#define DEFAULT_MAX_CONTEXT 4096  /* KV cache length when neither the caller nor the config is shorter */

/* ---------------------------------------------------------------- weights */

static size_t weight_bytes(const ss_weight *w) {
    return w->data ? (size_t)w->rows * (size_t)w->cols * ss_dtype_size(w->dtype) : 0;
}

/* The 14 weight slots of a layer (absent ones have data NULL). */
#define LAYER_WEIGHTS 14
static void layer_weights(ss_layer *L, ss_weight *out[LAYER_WEIGHTS]) {
    ss_weight *ws[LAYER_WEIGHTS] = {&L->attn_norm, &L->q,      &L->k,      &L->v,        &L->o,    &L->q_bias, &L->k_bias,
                                    &L->v_bias,    &L->q_norm, &L->k_norm, &L->mlp_norm, &L->gate, &L->up,     &L->down};
    memcpy(out, ws, sizeof ws);
}

/* What a tensor-parallel rank takes of a tensor: all of it (replicated), its share of the rows
 * (column-parallel: q/k/v, their biases, gate/up) or its share of the input columns (row-parallel:
 * o_proj, down_proj). */
typedef enum { SPLIT_NONE = 0, SPLIT_ROWS, SPLIT_COLS } split_kind;

/* The rank's rows of a matrix (its range of a vector): a view into the checkpoint, uploaded as is
 * (the CPU backend uses it in place). */
static ss_status upload_rows(ss_model *m, const ss_tensor *t, ss_weight *w, ss_error *err) {
    ss_tensor part = *t;
    size_t row_bytes = t->nbytes / (size_t)t->shape[0];
    int64_t share = t->shape[0] / m->tp;
    part.shape[0] = share;
    part.nbytes = row_bytes * (size_t)share;
    part.data = (const char *)t->data + row_bytes * (size_t)(share * m->rank);
    return m->be->ops->upload(m->be, &part, w, err);
}

/* The rank's input columns of a matrix are not contiguous: gathered as floats (exact for every
 * dtype) into an owned weight. */
static ss_status upload_cols(ss_model *m, const ss_tensor *t, ss_weight *w, ss_error *err) {
    size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1], share = cols / (size_t)m->tp;
    size_t first = share * (size_t)m->rank, es = ss_dtype_size(t->dtype);
    float *part = malloc(rows * share * sizeof *part);
    if (!part) return ss_fail(err, SS_ENOMEM, "%s: out of memory for rank %d's columns of %s", m->dir, m->rank, t->name);
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < share; i++)
            part[r * share + i] = ss_element_f32(t->dtype, (const char *)t->data + (r * cols + first + i) * es);
    ss_status st = m->be->ops->upload_f32(m->be, part, (int)rows, (int)share, w, err);
    free(part);
    return st == SS_OK ? SS_OK : ss_fail_prefix(err, "%s: %s, rank %d", m->dir, t->name, m->rank);
}

/* Checks a tensor's shape against the geometry and makes (the rank's share of) it a backend weight. */
static ss_status bind(ss_model *m, const char *name, int ndim, int64_t d0, int64_t d1, split_kind split,
                      ss_weight *w, ss_error *err) {
    int64_t shape[2] = {d0, d1};
    const ss_tensor *t;
    ss_status st = ss_checkpoint_expect(m->ck, name, ndim, shape, &t, err);
    if (st != SS_OK) return st;
    if (m->tp == 1 || split == SPLIT_NONE) return m->be->ops->upload(m->be, t, w, err);
    return split == SPLIT_ROWS ? upload_rows(m, t, w, err) : upload_cols(m, t, w, err);
}

typedef struct {
    const char *suffix; /* after "model.layers.N." */
    int ndim;
    int64_t d0, d1;
    size_t offset; /* of the ss_weight inside ss_layer */
    bool wanted;
    split_kind split;
} layer_tensor;

static ss_status bind_layer(ss_model *m, int l, ss_error *err) {
    const ss_config *c = &m->cfg;
    int64_t hidden = c->hidden, inter = c->intermediate, hd = c->head_dim;
    int64_t qd = (int64_t)c->n_heads * hd, kd = (int64_t)c->n_kv_heads * hd;
    const layer_tensor tensors[] = {
        {"input_layernorm.weight", 1, hidden, 0, offsetof(ss_layer, attn_norm), true, SPLIT_NONE},
        {"self_attn.q_proj.weight", 2, qd, hidden, offsetof(ss_layer, q), true, SPLIT_ROWS},
        {"self_attn.k_proj.weight", 2, kd, hidden, offsetof(ss_layer, k), true, SPLIT_ROWS},
        {"self_attn.v_proj.weight", 2, kd, hidden, offsetof(ss_layer, v), true, SPLIT_ROWS},
        {"self_attn.o_proj.weight", 2, hidden, qd, offsetof(ss_layer, o), true, SPLIT_COLS},
        {"self_attn.q_proj.bias", 1, qd, 0, offsetof(ss_layer, q_bias), c->qkv_bias, SPLIT_ROWS},
        {"self_attn.k_proj.bias", 1, kd, 0, offsetof(ss_layer, k_bias), c->qkv_bias, SPLIT_ROWS},
        {"self_attn.v_proj.bias", 1, kd, 0, offsetof(ss_layer, v_bias), c->qkv_bias, SPLIT_ROWS},
        {"self_attn.q_norm.weight", 1, hd, 0, offsetof(ss_layer, q_norm), c->qk_norm, SPLIT_NONE},
        {"self_attn.k_norm.weight", 1, hd, 0, offsetof(ss_layer, k_norm), c->qk_norm, SPLIT_NONE},
        {"post_attention_layernorm.weight", 1, hidden, 0, offsetof(ss_layer, mlp_norm), true, SPLIT_NONE},
        {"mlp.gate_proj.weight", 2, inter, hidden, offsetof(ss_layer, gate), true, SPLIT_ROWS},
        {"mlp.up_proj.weight", 2, inter, hidden, offsetof(ss_layer, up), true, SPLIT_ROWS},
        {"mlp.down_proj.weight", 2, hidden, inter, offsetof(ss_layer, down), true, SPLIT_COLS},
    };
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        const layer_tensor *t = &tensors[i];
        if (!t->wanted) continue;
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.%s", l, t->suffix);
        ss_weight *w = (ss_weight *)((char *)&m->layers[l] + t->offset);
        ss_status st = bind(m, name, t->ndim, t->d0, t->d1, t->split, w, err);
        if (st != SS_OK) return st;
    }
    return SS_OK;
}

/* Every rank embeds (the residual stream is replicated); only rank 0 computes logits. */
static ss_status bind_weights(ss_model *m, ss_error *err) {
    const ss_config *c = &m->cfg;
    ss_status st;
    if ((st = bind(m, "model.embed_tokens.weight", 2, c->vocab_size, c->hidden, SPLIT_NONE, &m->embed, err)))
        return st;
    for (int l = 0; l < c->n_layers; l++)
        if ((st = bind_layer(m, l, err)) != SS_OK) return st;
    if (m->rank > 0) return SS_OK;
    if ((st = bind(m, "model.norm.weight", 1, c->hidden, 0, SPLIT_NONE, &m->final_norm, err))) return st;

    if (c->tie_embeddings) {
        m->lm_head = m->embed;
    } else if (!ss_checkpoint_find(m->ck, "lm_head.weight")) {
        return ss_fail(err, SS_EFORMAT, "%s: missing tensor 'lm_head.weight' and config.json has tie_word_embeddings "
                       "false", m->dir);
    } else if ((st = bind(m, "lm_head.weight", 2, c->vocab_size, c->hidden, SPLIT_NONE, &m->lm_head, err)) != SS_OK) {
        return st;
    }
    return SS_OK;
}

/* ---------------------------------------------------------------- rotary table */

/* inv_freq[i] = theta^(-2i/d), formed in fp32 like transformers, then scaled. llama3 (transformers'
 * _compute_llama3_parameters): wavelengths longer than original/low_freq_factor are divided by
 * factor, shorter than original/high_freq_factor kept, and the band between interpolated. */
static void rope_init(const ss_config *c, float *inv_freq) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float exponent = (float)(2 * i) / (float)c->head_dim;
        float f = 1.0f / powf(c->rope_theta, exponent);
        if (c->rope_type == SS_ROPE_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_type == SS_ROPE_LLAMA3) {
            float old_len = (float)c->rope_original_max_position;
            float low_wavelen = old_len / c->rope_low_freq_factor;
            float high_wavelen = old_len / c->rope_high_freq_factor;
            float wavelen = 2.0f * (float)M_PI / f;
            if (wavelen > low_wavelen) {
                f /= c->rope_factor;
            } else if (!(wavelen < high_wavelen)) {
                float smooth = (old_len / wavelen - c->rope_low_freq_factor) /
                               (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0f - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

/* ---------------------------------------------------------------- buffers */

static ss_status alloc_floats(ss_model *m, size_t count, float **out, const char *what, ss_error *err) {
    void *p;
    ss_status st = m->be->ops->alloc(m->be, count * sizeof(float), &p, err);
    if (st != SS_OK) return ss_fail_prefix(err, "%s: %s", m->dir, what);
    *out = p;
    return SS_OK;
}

/* The rank's KV cache and scratch, sized by its share of the heads; logits on rank 0 only. */
static ss_status alloc_buffers(ss_model *m, ss_error *err) {
    const ss_config *c = &m->cfg;
    const ss_backend_ops *o = m->be->ops;
    int kv_dim = m->kv_heads * c->head_dim;
    size_t cache = o->kv_bytes(m->be, kv_dim) * (size_t)m->max_context;
    for (int l = 0; l < c->n_layers; l++) {
        ss_layer *L = &m->layers[l];
        if (o->alloc(m->be, cache, &L->kcache, err) || o->alloc(m->be, cache, &L->vcache, err))
            return ss_fail_prefix(err, "%s: KV cache for %d positions", m->dir, m->max_context);
    }
    ss_scratch *s = &m->s;
    size_t B = (size_t)(s->max_batch = strcmp(m->be->ops->name, "cuda") == 0 ? MAX_BATCH_CUDA : MAX_BATCH_CPU);
    size_t qd = (size_t)m->heads * c->head_dim;
    ss_status st;
    if ((st = alloc_floats(m, B * c->hidden, &s->x, "scratch", err)) ||
        (st = alloc_floats(m, B * c->hidden, &s->xn, "scratch", err)) ||
        (st = alloc_floats(m, B * qd, &s->q, "scratch", err)) ||
        (st = alloc_floats(m, B * kv_dim, &s->k, "scratch", err)) ||
        (st = alloc_floats(m, B * kv_dim, &s->v, "scratch", err)) ||
        (st = alloc_floats(m, B * qd, &s->att, "scratch", err)) ||
        (st = alloc_floats(m, B * m->intermediate, &s->gate, "scratch", err)) ||
        (st = alloc_floats(m, B * m->intermediate, &s->up, "scratch", err)))
        return st;
    if (m->rank > 0) return SS_OK;
    if ((st = alloc_floats(m, B * c->vocab_size, &s->logits, "scratch", err))) return st;
    m->host_logits = malloc(B * c->vocab_size * sizeof(float));
    if (!m->host_logits)
        return ss_fail(err, SS_ENOMEM, "%s: out of memory for logits of %zu positions", m->dir, B);
    return SS_OK;
}

/* ---------------------------------------------------------------- backend choice */

/* AUTO picks CUDA when a device is present; either way the choice is told (after the load, so a
 * bad checkpoint still ends with its one error line). An explicit CUDA request fails when no device
 * is there. */
static ss_status create_backend(ss_model *m, const ss_model_opts *opts, ss_error *err) {
    if (opts->backend == SS_BACKEND_CPU) return ss_backend_cpu_create(&m->be, err);
    char why[256] = "unknown reason";
    if (ss_backend_cuda_available(why, sizeof why)) {
        snprintf(m->backend_notice, sizeof m->backend_notice, "specscope: using the CUDA backend (%s)", why);
        return ss_backend_cuda_create(&m->be, err);
    }
    if (opts->backend == SS_BACKEND_CUDA)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: --backend cuda asked for, but no CUDA device is usable (%s)", m->dir, why);
    snprintf(m->backend_notice, sizeof m->backend_notice, "specscope: no CUDA device (%s); using the CPU backend", why);
    return ss_backend_cpu_create(&m->be, err);
}

/* ---------------------------------------------------------------- tensor-parallel ranks */

static ss_status check_tp(const ss_model *m, int tp, ss_error *err) {
    const ss_config *c = &m->cfg;
    if (tp < 1 || tp > SS_MAX_TP) return ss_fail(err, SS_EARG, "%s: tp %d is outside 1..%d", m->dir, tp, SS_MAX_TP);
    if (c->n_heads % tp || c->n_kv_heads % tp || c->intermediate % tp)
        return ss_fail(err, SS_EARG, "%s: tp %d does not divide the heads (%d), kv heads (%d) and intermediate size (%d)",
                       m->dir, tp, c->n_heads, c->n_kv_heads, c->intermediate);
    return SS_OK;
}

static void set_share(ss_model *r, int tp, int rank) {
    r->tp = tp;
    r->rank = rank;
    r->heads = r->cfg.n_heads / tp;
    r->kv_heads = r->cfg.n_kv_heads / tp;
    r->intermediate = r->cfg.intermediate / tp;
}

/* How many CUDA devices the ranks use: one each (rank r on device r), or with SPECSCOPE_TP_DEVICES=D
 * fewer, taken in turn (rank r on device r % D): a split checked on fewer GPUs than ranks, such as
 * tp 2 on the one GPU a machine has (no faster: the ranks take turns). 0 for a bad value. */
static int tp_devices(int tp) {
    const char *v = getenv("SPECSCOPE_TP_DEVICES");
    if (!v || !*v) return tp;
    char *end;
    long d = strtol(v, &end, 10);
    return *end || d < 1 ? 0 : d < tp ? (int)d : tp;
}

/* Rank r > 0 on a backend of rank 0's kind: the CPU, or a CUDA device (tp_devices). */
static ss_status create_rank(ss_model *m, int rank, int devices, ss_error *err) {
    ss_model *r = calloc(1, sizeof *r);
    if (!r) return ss_fail(err, SS_ENOMEM, "%s: out of memory for rank %d", m->dir, rank);
    m->ranks[rank] = r;
    r->cfg = m->cfg;
    memcpy(r->dir, m->dir, sizeof r->dir);
    r->ck = m->ck;
    r->rope = m->rope;
    r->max_context = m->max_context;
    set_share(r, m->tp, rank);
    r->layers = calloc((size_t)r->cfg.n_layers, sizeof *r->layers);
    if (!r->layers) return ss_fail(err, SS_ENOMEM, "%s: out of memory for rank %d", m->dir, rank);
    if (strcmp(m->be->ops->name, "cpu") == 0) return ss_backend_cpu_create(&r->be, err);
    ss_status st = ss_backend_cuda_create_on(rank % devices, &r->be, err);
    return st == SS_OK ? SS_OK : ss_fail_prefix(err, "%s: tp %d, rank %d", m->dir, m->tp, rank);
}

/* CUDA ranks sum through NCCL when each has its own device (SPECSCOPE_TP_COMM=peer: through the peer
 * all-reduce's one kernel, over peer access), through the peer all-reduce (tp.h) when they share
 * one. */
static ss_status create_cuda_comm(ss_model *m, int devices, ss_error *err) {
    const char *want = getenv("SPECSCOPE_TP_COMM");
    if (want && *want && strcmp(want, "nccl") && strcmp(want, "peer"))
        return ss_fail(err, SS_EARG, "SPECSCOPE_TP_COMM=%s: expected nccl or peer", want);
    ss_backend *bes[SS_MAX_TP];
    for (int r = 0; r < m->tp; r++) bes[r] = m->ranks[r]->be;
    if (devices == m->tp && !(want && strcmp(want, "peer") == 0)) {
        ss_error why = {0};
        ss_status st = ss_tp_comm_nccl_create(m->tp, &m->comm, &why);
        return st == SS_OK ? SS_OK : ss_fail(err, st, "tp %d over %d GPUs needs NCCL: %s", m->tp, devices, why.msg);
    }
    return ss_tp_comm_peer_create(m->tp, bes, &m->comm, err);
}

/* The backends of ranks 1.. and the communicator, before any weight is read (a bad tp fails fast). */
static ss_status create_ranks(ss_model *m, ss_error *err) {
    m->ranks[0] = m;
    m->devices = 1;
    if (m->tp == 1) return SS_OK;
    const int devices = tp_devices(m->tp);
    if (!devices)
        return ss_fail(err, SS_EARG, "%s: SPECSCOPE_TP_DEVICES=%s: expected a device count of 1 or more", m->dir,
                       getenv("SPECSCOPE_TP_DEVICES"));
    if (strcmp(m->be->ops->name, "cpu") != 0) m->devices = devices;
    ss_status st;
    for (int r = 1; r < m->tp; r++)
        if ((st = create_rank(m, r, devices, err))) return st;
    st = strcmp(m->be->ops->name, "cpu") == 0 ? ss_tp_comm_host_create(m->tp, &m->comm, err)
                                              : create_cuda_comm(m, devices, err);
    if (st == SS_OK && m->be->ops->graph_join) { /* one graph over every rank's work (forward.c) */
        ss_backend *others[SS_MAX_TP];
        for (int r = 1; r < m->tp; r++) others[r - 1] = m->ranks[r]->be;
        st = m->be->ops->graph_join(m->be, others, m->tp - 1, err);
    }
    return st == SS_OK ? SS_OK : ss_fail_prefix(err, "%s", m->dir);
}

/* ---------------------------------------------------------------- public calls */

static void free_weight(ss_model *m, ss_weight *w) {
    if (w->data) m->be->ops->free_weight(m->be, w);
}

/* A rank's weights, KV cache, scratch and backend. */
static void release_rank(ss_model *m) {
    if (m->be) {
        const ss_backend_ops *o = m->be->ops;
        if (m->lm_head.data != m->embed.data) free_weight(m, &m->lm_head);
        free_weight(m, &m->embed);
        free_weight(m, &m->final_norm);
        for (int l = 0; m->layers && l < m->cfg.n_layers; l++) {
            ss_layer *L = &m->layers[l];
            ss_weight *ws[LAYER_WEIGHTS];
            layer_weights(L, ws);
            for (int i = 0; i < LAYER_WEIGHTS; i++) free_weight(m, ws[i]);
            o->free(m->be, L->kcache);
            o->free(m->be, L->vcache);
        }
        float *bufs[] = {m->s.x, m->s.xn, m->s.q, m->s.k, m->s.v, m->s.att, m->s.gate, m->s.up, m->s.logits};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->free(m->be, bufs[i]);
        o->destroy(m->be);
    }
    free(m->layers);
    free(m->host_logits);
}

void ss_model_free(ss_model *m) {
    if (!m) return;
    ss_lora_free_all(m); /* their weights live on the backend */
    for (int r = 1; r < SS_MAX_TP; r++) {
        if (!m->ranks[r]) continue;
        release_rank(m->ranks[r]);
        free(m->ranks[r]);
    }
    release_rank(m);
    /* The communicator last: NCCL's destroy waits until every CUDA graph that captured one of its
     * all-reduces is gone (rank 0's backend holds the step graphs), so freed first it never
     * returned (tp 2 over two H200s, eighteenth session). */
    ss_tp_comm_free(m->comm);
    ss_checkpoint_close(m->ck);
    free(m->inv_freq);
    free(m);
}

static ss_status load(ss_model *m, const ss_model_opts *opts, ss_error *err) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    ss_status st;
    if ((st = ss_config_load(path, &m->cfg, err)) || (st = ss_checkpoint_open(m->dir, &m->ck, err))) return st;
    const ss_config *c = &m->cfg;
    m->max_context = opts->max_context > 0 ? opts->max_context
                     : c->max_position < DEFAULT_MAX_CONTEXT ? c->max_position
                                                             : DEFAULT_MAX_CONTEXT;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->inv_freq = malloc((size_t)(c->head_dim / 2) * sizeof *m->inv_freq);
    if (!m->layers || !m->inv_freq) return ss_fail(err, SS_ENOMEM, "%s: out of memory for the model", m->dir);
    rope_init(c, m->inv_freq);
    m->rope = (ss_rope){c->head_dim, m->inv_freq};
    int tp = opts->tp ? opts->tp : 1;
    if ((st = check_tp(m, tp, err))) return st;
    set_share(m, tp, 0);
    if ((st = create_backend(m, opts, err)) || (st = create_ranks(m, err))) return st;
    for (int r = 0; r < tp; r++)
        if ((st = bind_weights(m->ranks[r], err)) || (st = alloc_buffers(m->ranks[r], err))) return st;
    return SS_OK;
}

ss_status ss_model_load(const ss_model_opts *opts, ss_model **out, ss_error *err) {
    if (!opts || !opts->dir || !out) return ss_fail(err, SS_EARG, "ss_model_load: no options, folder or output");
    *out = NULL;
    if (opts->max_context < 0)
        return ss_fail(err, SS_EARG, "%s: max_context %d is negative", opts->dir, opts->max_context);
    ss_model *m = calloc(1, sizeof *m);
    if (!m) return ss_fail(err, SS_ENOMEM, "%s: out of memory", opts->dir);
    if (strlen(opts->dir) >= sizeof m->dir) {
        free(m);
        return ss_fail(err, SS_EARG, "model folder path is longer than %zu bytes", sizeof m->dir - 1);
    }
    strcpy(m->dir, opts->dir);
    ss_status st = load(m, opts, err);
    if (st != SS_OK) {
        ss_model_free(m);
        return st;
    }
    if (!opts->quiet && m->backend_notice[0]) fprintf(stderr, "%s\n", m->backend_notice);
    *out = m;
    return SS_OK;
}

const ss_config *ss_model_config(const ss_model *m) { return &m->cfg; }
const char *ss_model_backend_name(const ss_model *m) { return m->be->ops->name; }

int ss_model_devices(const ss_model *m) { return m->devices; }
const char *ss_model_backend_notice(const ss_model *m) { return m->backend_notice; }
int ss_model_max_context(const ss_model *m) { return m->max_context; }
/* Decoding reads one embedding row, every layer weight (every rank's share), the final norm, the
 * whole lm_head, and the factors of the LoRA adapters switched on. */
size_t ss_model_weight_bytes(const ss_model *m) {
    size_t total = weight_bytes(&m->embed) / (size_t)m->cfg.vocab_size + weight_bytes(&m->final_norm) +
                   weight_bytes(&m->lm_head) + ss_lora_bytes(m);
    for (int r = 0; r < m->tp; r++)
        for (int l = 0; l < m->cfg.n_layers; l++) {
            ss_weight *ws[LAYER_WEIGHTS];
            layer_weights(&m->ranks[r]->layers[l], ws);
            for (int i = 0; i < LAYER_WEIGHTS; i++) total += weight_bytes(ws[i]);
        }
    return total;
}

ss_status ss_model_forward(ss_model *m, const int *tokens, const int *positions, int n, float *logits,
                           bool last_only, ss_error *err) {
    if (!m || !tokens || !positions || n <= 0)
        return ss_fail(err, SS_EARG, "ss_model_forward: no model, tokens or positions, or n = %d", n);
    size_t vocab = (size_t)m->cfg.vocab_size;
    for (int start = 0; start < n; start += m->s.max_batch) {
        int count = n - start < m->s.max_batch ? n - start : m->s.max_batch;
        bool last_chunk = start + count == n;
        float *dst = !logits ? NULL : !last_only ? logits + (size_t)start * vocab : last_chunk ? logits : NULL;
        ss_status st = ss_forward(m, tokens + start, positions + start, count, dst, last_only, err);
        if (st != SS_OK) return st;
    }
    return SS_OK;
}

/* Each rank caches its kv heads: rank r's [len, kv_dim/tp] rows are columns [r*kv_dim/tp, ...) of the
 * whole model's [len, kv_dim]. */
static ss_status read_kv_shards(ss_model *m, int layer, int len, float *k, float *v, ss_error *err) {
    size_t share = (size_t)m->kv_heads * m->cfg.head_dim, full = share * (size_t)m->tp;
    float *part = malloc(((size_t)len * share + 1) * sizeof *part);
    if (!part) return ss_fail(err, SS_ENOMEM, "%s: out of memory reading the KV cache of layer %d", m->dir, layer);
    ss_status st = SS_OK;
    for (int r = 0; st == SS_OK && r < m->tp; r++) {
        ss_model *R = m->ranks[r];
        for (int kv = 0; st == SS_OK && kv < 2; kv++) {
            R->be->ops->kv_read(R->be, part, kv ? R->layers[layer].vcache : R->layers[layer].kcache, len, (int)share);
            if ((st = R->be->ops->sync(R->be, err))) break;
            float *dst = kv ? v : k;
            for (int p = 0; p < len; p++)
                memcpy(dst + (size_t)p * full + (size_t)r * share, part + (size_t)p * share, share * sizeof *part);
        }
    }
    free(part);
    return st;
}

ss_status ss_model_read_kv(ss_model *m, int layer, int len, float *k, float *v, ss_error *err) {
    if (!m || !k || !v) return ss_fail(err, SS_EARG, "ss_model_read_kv: no model or output");
    if (layer < 0 || layer >= m->cfg.n_layers)
        return ss_fail(err, SS_EARG, "%s: layer %d is outside [0, %d)", m->dir, layer, m->cfg.n_layers);
    if (len < 0 || len > m->max_context)
        return ss_fail(err, SS_EARG, "%s: KV length %d is outside [0, %d]", m->dir, len, m->max_context);
    int kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    if (m->tp == 1) {
        m->be->ops->kv_read(m->be, k, m->layers[layer].kcache, len, kv_dim);
        m->be->ops->kv_read(m->be, v, m->layers[layer].vcache, len, kv_dim);
        return m->be->ops->sync(m->be, err);
    }
    return read_kv_shards(m, layer, len, k, v, err);
}
