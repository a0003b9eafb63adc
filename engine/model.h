/* model.h — a loaded model (weights bound on a backend, KV cache, scratch) and its forward pass.
 * Internal to the engine; the public face is ss_model_* in specscope.h. */
#ifndef SPECSCOPE_MODEL_H
#define SPECSCOPE_MODEL_H

#include "backend.h"
#include "config.h"
#include "safetensors.h"
#include "tp.h"

typedef struct {
    ss_weight attn_norm, q, k, v, o;
    ss_weight q_bias, k_bias, v_bias; /* qwen2; data NULL otherwise */
    ss_weight q_norm, k_norm;         /* qwen3; data NULL otherwise */
    ss_weight mlp_norm, gate, up, down;
    void *kcache, *vcache; /* backend memory, max_context positions */
} ss_layer;

/* Activations for up to max_batch positions, backend memory. */
typedef struct {
    int max_batch;
    float *x;      /* [B, hidden] residual stream */
    float *xn;     /* [B, hidden] normalised */
    float *q;      /* [B, heads*head_dim] (EasySpec: [B, G*...]) */
    float *k, *v;  /* [B, kv_heads*head_dim] */
    float *att;    /* [B, heads*head_dim] */
    float *gate;   /* [B, intermediate] */
    float *up;     /* [B, intermediate] */
    float *logits; /* [B, vocab] */
} ss_scratch;

/* EasySpec: a plan that runs groups of consecutive layers in parallel on one input.
 * groups[i] = {first, count}; count == 1 is an ordinary sequential layer. */
typedef struct {
    int first, count;
    /* Stacked weights of a group (count > 1), built by ss_plan_prepare. */
    ss_weight qkv;   /* [count*(q+k+v), hidden], input-norm weights folded into the columns */
    ss_weight o;     /* [hidden, count*q_dim]; attention-parallel mode only (layer mode needs each a_l) */
    ss_weight gate_up; /* attn mode: unused; layer mode: per-layer gate/up are used in a loop */
    ss_weight qkv_bias; /* [count*(q+k+v)] stacked q/k/v biases (qwen2); data NULL otherwise */
} ss_group;

typedef struct {
    ss_easyspec_mode mode;
    int n_groups;
    ss_group *groups;
} ss_plan;

struct ss_model {
    ss_config cfg;
    char dir[1024];
    ss_checkpoint *ck;
    ss_backend *be;
    ss_weight embed, final_norm, lm_head;
    ss_layer *layers;
    ss_rope rope;
    float *inv_freq; /* host, head_dim / 2 */
    int max_context;
    ss_scratch s;
    float *host_logits; /* [max_batch, vocab] host copy */
    const ss_plan *plan; /* NULL: sequential (the exact model) */
    char backend_notice[320]; /* what --backend auto chose and why; printed once the load succeeded */

    /* Tensor parallelism over tp ranks. Each rank is an ss_model of its own (backend, weights, KV
     * cache, scratch) holding its share: heads [rank*H/tp, (rank+1)*H/tp) of q/k/v (and their
     * biases), the same share of kv heads and of the MLP's rows (gate/up), and the matching input
     * columns of o_proj and down_proj; embeddings and norms are replicated, and only rank 0 holds
     * the final norm and lm_head and computes logits. The fields above (be, layers, s, ...) are
     * rank 0's; with tp = 1 the model is its only rank and holds everything. The ranks borrow ck
     * and the rotary table of rank 0. */
    int tp, rank;
    int devices; /* rank 0 only: the CUDA devices its ranks run on (1 on the CPU) */
    ss_model *ranks[SS_MAX_TP]; /* rank 0 only: ranks[0] == the model, then the others */
    ss_tp_comm *comm;           /* rank 0 only: NULL with tp = 1 (a test may attach one) */
    int heads, kv_heads, intermediate; /* this rank's share of the geometry */

    /* LoRA adapters (lora.c), in load order, and the backend scratch they share: lora_t [max_batch,
     * the largest rank], lora_u [max_batch, the widest projection]. lora_version changes whenever
     * what they compute does (load, unload, scale, on/off), so forwards captured as CUDA graphs
     * before are not replayed after. */
    struct ss_lora **loras;
    int n_loras;
    uint64_t lora_version;
    float *lora_t, *lora_u;
    int lora_t_rank;
    /* Merged mode (ss_model_lora_merge): the enabled adapters' updates folded into the layer weights
     * instead of applied after them; lora_folded[layer * 7 + module] marks a weight that holds a
     * fold, lora_dirty that the folds are stale (redone before the next forward). */
    bool lora_merged, lora_dirty;
    unsigned char *lora_folded;
};

/* forward.c: one forward over n <= s.max_batch tokens at explicit positions, writing their K/V.
 * logits: NULL, [n, vocab] (all rows) or, with last_only, [vocab] host floats. Uses m->plan. */
ss_status ss_forward(ss_model *m, const int *tokens, const int *positions, int n, float *logits,
                     bool last_only, ss_error *err);

/* How ss_forward_pick chooses each row's token: ss_sample_with (sampler.h) under sampling over the
 * ids [0, vocab) (the rest of a row is masked: the tokenizer's size may be below vocab_size), with
 * uniform[r] for row r when sampling (NULL at temperature 0). No repetition penalty (SS_EARG). */
typedef struct {
    const ss_sampling *sampling;
    int vocab;
    const double *uniform;
} ss_pick;

/* forward.c: the forward of ss_model_forward over any n (same chunks, same graphs), handing back the
 * picked ids of every row ([n]) or, with last_only, of the last ([1]) instead of logits. The pick
 * runs on the device where the backend has argmax_rows / sample_rows, so only ids are copied back;
 * elsewhere (CPU) on a host copy of the rows, with the same result. */
ss_status ss_forward_pick(ss_model *m, const int *tokens, const int *positions, int n, const ss_pick *pick, int *ids,
                          bool last_only, ss_error *err);

/* EasySpec plans. spec: "G" (groups of G consecutive layers) or an explicit list "0-1,2-3,4".
 * The plan's stacked weights live on the model's backend. */
ss_status ss_plan_parse(const ss_model *m, const char *spec, ss_easyspec_mode mode, ss_plan *plan,
                        ss_error *err);
ss_status ss_plan_prepare(ss_model *m, ss_plan *plan, ss_error *err);
void ss_plan_free(ss_model *m, ss_plan *plan);

#endif
