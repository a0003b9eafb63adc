/* model_cost.c — what one forward must move and compute: the denominators of the benchmarks'
 * ratios to the hardware's ceilings. */
#include "model.h"

size_t ss_model_kv_bytes(const ss_model *m, int context) {
    const ss_config *c = &m->cfg;
    size_t per_position = m->be->ops->kv_bytes(m->be, c->n_kv_heads * c->head_dim);
    return per_position * 2 * (size_t)c->n_layers * (size_t)context;
}

/* 2 FLOPs per multiply-add: the projections and MLP for every token, the last token's logits, and
 * causal attention (QK^T and PV over on average n/2 keys). */
double ss_model_prefill_flops(const ss_model *m, int n) {
    const ss_config *c = &m->cfg;
    double qd = (double)c->n_heads * c->head_dim, kd = (double)c->n_kv_heads * c->head_dim;
    double per_token = c->hidden * (qd + 2 * kd) + qd * c->hidden + 3.0 * c->hidden * c->intermediate;
    double matmul = 2.0 * n * c->n_layers * per_token + 2.0 * c->hidden * c->vocab_size;
    double attention = 2.0 * 2.0 * c->n_layers * qd * ((double)n * (n + 1) / 2);
    return matmul + attention;
}
