/* cpu_internal.h — the CPU backend's state, shared by its files (backend_cpu.c, cpu_matmul.c,
 * cpu_attention.c). */
#ifndef SPECSCOPE_CPU_INTERNAL_H
#define SPECSCOPE_CPU_INTERNAL_H

#include "backend.h"
#include "cpu_pool.h"

/* Rows of 16-bit weights converted to fp32 per cblas_sgemm call hold at most this many floats. */
#define CPU_BLOCK_FLOATS ((size_t)1 << 20)

typedef struct {
    cpu_pool *pool;
    /* The current batch (set_batch). */
    int *tokens, *positions;
    int n, cap;
    /* Attention scores, one row of scores_stride floats per thread; sized in set_batch for the
     * longest context of the batch. */
    float *scores;
    int scores_stride;
    /* 16-bit weight rows converted for cblas_sgemm. */
    float *block;
    /* Weights made by upload_f32 (owned; upload() ones point into the checkpoint mapping). */
    void **owned;
    int n_owned, cap_owned;
    /* A failure inside a void op (set_batch out of memory), reported by the next sync(). The ops
     * that need the batch do nothing while it is set. */
    ss_error failed;
} cpu_backend;

static inline cpu_backend *cpu_of(ss_backend *b) { return b->impl; }

void cpu_matmul(ss_backend *b, float *out, const float *x, const ss_weight *w, const ss_weight *bias,
                int n);
void cpu_attention(ss_backend *b, float *out, const float *q, const void *kcache, const void *vcache,
                   int n, int heads, int kv_heads, int head_dim);

#endif
