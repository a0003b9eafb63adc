/* cpu_attention.c — causal attention over the fp32 KV cache, one (position, head) pair per work
 * item, softmax in fp32 with the maximum subtracted first. */
#include <math.h>

#include "cpu_internal.h"
#include "cpu_vec.h"

typedef struct {
    cpu_backend *c;
    float *out;
    const float *q, *k, *v;
    int heads, kv_heads, head_dim;
    float scale;
} attention_job;

static void attend_one(const attention_job *j, int i, int h, float *scores) {
    int hd = j->head_dim, kv_dim = j->kv_heads * hd;
    int kvh = h / (j->heads / j->kv_heads); /* grouped-query attention */
    int len = j->c->positions[i] + 1;
    const float *q = j->q + ((size_t)i * j->heads + h) * hd;
    const float *k = j->k + (size_t)kvh * hd, *v = j->v + (size_t)kvh * hd;

    float max = -INFINITY;
    for (int t = 0; t < len; t++) {
        scores[t] = cpu_dot_f32(q, k + (size_t)t * kv_dim, hd) * j->scale;
        if (scores[t] > max) max = scores[t];
    }
    float sum = 0.0f;
    for (int t = 0; t < len; t++) {
        scores[t] = expf(scores[t] - max);
        sum += scores[t];
    }
    float inv = 1.0f / sum;
    float *o = j->out + ((size_t)i * j->heads + h) * hd;
    for (int d = 0; d < hd; d++) o[d] = 0.0f;
    for (int t = 0; t < len; t++) cpu_axpy(o, scores[t] * inv, v + (size_t)t * kv_dim, hd);
}

static void attend_items(void *ctx, int begin, int end, int thread) {
    const attention_job *j = ctx;
    float *scores = j->c->scores + (size_t)thread * j->c->scores_stride;
    for (int item = begin; item < end; item++) attend_one(j, item / j->heads, item % j->heads, scores);
}

void cpu_attention(ss_backend *b, float *out, const float *q, const void *kcache, const void *vcache, int n,
                   int heads, int kv_heads, int head_dim) {
    cpu_backend *c = cpu_of(b);
    if (c->failed.status != SS_OK || n > c->n) return;
    attention_job job = {c, out, q, kcache, vcache, heads, kv_heads, head_dim, (float)(1.0 / sqrt(head_dim))};
    cpu_pool_for(c->pool, n * heads, 1, attend_items, &job);
}
