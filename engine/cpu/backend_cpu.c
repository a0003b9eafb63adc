/* backend_cpu.c — the CPU implementation of ss_backend_ops: fp32 compute in host memory.
 *
 * Weights from the checkpoint are used in place (F32, F16 or BF16 inside the mmap); stacked weights
 * from upload_f32 are owned copies. The KV cache is fp32 [position, kv_dim]. Matmul and attention
 * live in cpu_matmul.c and cpu_attention.c; the element-wise ops are here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_vec.h"

/* Element-wise loops shorter than this are not worth waking the pool for. */
#define ELEMENTWISE_GRAIN 16384
/* rope computes cos/sin for this many frequencies at a time. */
#define ROPE_CHUNK 128

/* ---------------------------------------------------------------- memory */

static ss_status remember_owned(cpu_backend *c, void *p, ss_error *err) {
    if (c->n_owned == c->cap_owned) {
        int cap = c->cap_owned ? c->cap_owned * 2 : 16;
        void **grown = realloc(c->owned, (size_t)cap * sizeof *grown);
        if (!grown) return ss_fail(err, SS_ENOMEM, "cpu backend: out of memory tracking weights");
        c->owned = grown;
        c->cap_owned = cap;
    }
    c->owned[c->n_owned++] = p;
    return SS_OK;
}

static ss_status cpu_upload(ss_backend *b, const ss_tensor *src, ss_weight *dst, ss_error *err) {
    if (src->ndim < 1 || src->ndim > 2)
        return ss_fail(err, SS_EUNSUPPORTED, "cpu backend: tensor %s has %d dims, expected 1 or 2", src->name,
                       src->ndim);
    int64_t rows = src->ndim == 2 ? src->shape[0] : 1, cols = src->shape[src->ndim - 1];
    if (rows <= 0 || cols <= 0 || rows > INT32_MAX || cols > INT32_MAX)
        return ss_fail(err, SS_EUNSUPPORTED, "cpu backend: tensor %s has an unusable shape", src->name);
    *dst = (ss_weight){src->dtype, (int)rows, (int)cols, src->data};
    return SS_OK;
}

static ss_status cpu_upload_f32(ss_backend *b, const float *src, int rows, int cols, ss_weight *dst,
                                ss_error *err) {
    size_t bytes = (size_t)rows * (size_t)cols * sizeof(float);
    float *copy = malloc(bytes);
    if (!copy) return ss_fail(err, SS_ENOMEM, "cpu backend: out of memory for a %dx%d weight", rows, cols);
    memcpy(copy, src, bytes);
    ss_status st = remember_owned(cpu_of(b), copy, err);
    if (st != SS_OK) {
        free(copy);
        return st;
    }
    *dst = (ss_weight){SS_F32, rows, cols, copy};
    return SS_OK;
}

static void cpu_free_weight(ss_backend *b, ss_weight *w) {
    cpu_backend *c = cpu_of(b);
    for (int i = 0; i < c->n_owned; i++) {
        if (c->owned[i] == w->data) {
            free(c->owned[i]);
            c->owned[i] = c->owned[--c->n_owned];
            break;
        }
    }
    *w = (ss_weight){0};
}

static ss_status cpu_alloc(ss_backend *b, size_t bytes, void **out, ss_error *err) {
    *out = calloc(1, bytes ? bytes : 1);
    if (!*out) return ss_fail(err, SS_ENOMEM, "cpu backend: out of memory allocating %zu bytes", bytes);
    return SS_OK;
}

static void cpu_free(ss_backend *b, void *p) { free(p); }

static void cpu_copy(ss_backend *b, void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

static ss_status cpu_sync(ss_backend *b, ss_error *err) {
    cpu_backend *c = cpu_of(b);
    if (c->failed.status == SS_OK) return SS_OK;
    ss_status st = ss_fail(err, c->failed.status, "%s", c->failed.msg);
    c->failed = (ss_error){0};
    return st;
}

/* ---------------------------------------------------------------- batch */

static bool batch_ready(const cpu_backend *c, int n) { return c->failed.status == SS_OK && n <= c->n; }

static void cpu_set_batch(ss_backend *b, const int *tokens, const int *positions, int n) {
    cpu_backend *c = cpu_of(b);
    c->n = 0;
    if (n > c->cap) {
        int *t = realloc(c->tokens, (size_t)n * sizeof *t);
        if (t) c->tokens = t;
        int *p = realloc(c->positions, (size_t)n * sizeof *p);
        if (p) c->positions = p;
        if (!t || !p) {
            ss_fail(&c->failed, SS_ENOMEM, "cpu backend: out of memory for a batch of %d positions", n);
            return;
        }
        c->cap = n;
    }
    memcpy(c->tokens, tokens, (size_t)n * sizeof *tokens);
    memcpy(c->positions, positions, (size_t)n * sizeof *positions);

    int longest = 1;
    for (int i = 0; i < n; i++)
        if (positions[i] + 1 > longest) longest = positions[i] + 1;
    if (longest > c->scores_stride) {
        float *s = realloc(c->scores, (size_t)cpu_pool_threads(c->pool) * (size_t)longest * sizeof *s);
        if (!s) {
            ss_fail(&c->failed, SS_ENOMEM, "cpu backend: out of memory for attention over %d positions",
                    longest);
            return;
        }
        c->scores = s;
        c->scores_stride = longest;
    }
    c->n = n;
}

/* ---------------------------------------------------------------- element-wise ops */

static void cpu_embed(ss_backend *b, float *x, const ss_weight *table, int n) {
    cpu_backend *c = cpu_of(b);
    if (!batch_ready(c, n)) return;
    size_t row = (size_t)table->cols * ss_dtype_size(table->dtype);
    for (int i = 0; i < n; i++)
        cpu_to_f32(table->dtype, (const char *)table->data + (size_t)c->tokens[i] * row,
                   x + (size_t)i * table->cols, (size_t)table->cols);
}

typedef struct {
    float *out;
    const float *x;
    const ss_weight *w;
    int dim;
    float eps;
} rmsnorm_job;

/* As in HF: out = w * (x * rsqrt(mean(x^2) + eps)); the mean is accumulated in double. */
static void rmsnorm_rows(void *ctx, int begin, int end, int thread) {
    const rmsnorm_job *j = ctx;
    const void *w = j->w ? j->w->data : NULL;
    for (int r = begin; r < end; r++) {
        const float *x = j->x + (size_t)r * j->dim;
        float *out = j->out + (size_t)r * j->dim;
        double sum = 0.0;
        for (int d = 0; d < j->dim; d++) sum += (double)x[d] * x[d];
        float inv = 1.0f / sqrtf((float)(sum / j->dim) + j->eps);
        for (int d = 0; d < j->dim; d++) {
            float v = x[d] * inv;
            out[d] = w ? cpu_load(j->w->dtype, w, (size_t)d) * v : v;
        }
    }
}

static void cpu_rmsnorm(ss_backend *b, float *out, const float *x, const ss_weight *w, int rows, int dim,
                        float eps) {
    rmsnorm_job job = {out, x, w, dim, eps};
    int grain = dim >= ELEMENTWISE_GRAIN ? 1 : ELEMENTWISE_GRAIN / dim;
    cpu_pool_for(cpu_of(b)->pool, rows, grain, rmsnorm_rows, &job);
}

typedef struct {
    cpu_backend *c;
    float *x;
    int heads;
    const ss_rope *rope;
} rope_job;

/* HF rotate_half: pairs (d, d + half) rotate by pos * inv_freq[d]; the angle is formed in fp32 as
 * transformers does, so long positions round the same way. */
static void rope_positions(void *ctx, int begin, int end, int thread) {
    const rope_job *j = ctx;
    int hd = j->rope->head_dim, half = hd / 2;
    float cosv[ROPE_CHUNK], sinv[ROPE_CHUNK];
    for (int i = begin; i < end; i++) {
        float pos = (float)j->c->positions[i];
        for (int d0 = 0; d0 < half; d0 += ROPE_CHUNK) {
            int count = half - d0 < ROPE_CHUNK ? half - d0 : ROPE_CHUNK;
            for (int d = 0; d < count; d++) {
                float angle = pos * j->rope->inv_freq[d0 + d];
                cosv[d] = (float)cos(angle);
                sinv[d] = (float)sin(angle);
            }
            for (int h = 0; h < j->heads; h++) {
                float *x = j->x + ((size_t)i * j->heads + h) * hd + d0;
                for (int d = 0; d < count; d++) {
                    float x0 = x[d], x1 = x[d + half];
                    x[d] = x0 * cosv[d] - x1 * sinv[d];
                    x[d + half] = x1 * cosv[d] + x0 * sinv[d];
                }
            }
        }
    }
}

static void cpu_rope(ss_backend *b, float *x, int n, int heads, const ss_rope *rope) {
    cpu_backend *c = cpu_of(b);
    if (!batch_ready(c, n)) return;
    rope_job job = {c, x, heads, rope};
    cpu_pool_for(c->pool, n, 4, rope_positions, &job);
}

static size_t cpu_kv_bytes(ss_backend *b, int kv_dim) { return (size_t)kv_dim * sizeof(float); }

static void cpu_kv_store(ss_backend *b, void *kcache, void *vcache, const float *k, const float *v, int n,
                         int kv_dim) {
    cpu_backend *c = cpu_of(b);
    if (!batch_ready(c, n)) return;
    size_t row = (size_t)kv_dim * sizeof(float);
    for (int i = 0; i < n; i++) {
        size_t at = (size_t)c->positions[i] * row;
        memcpy((char *)kcache + at, k + (size_t)i * kv_dim, row);
        memcpy((char *)vcache + at, v + (size_t)i * kv_dim, row);
    }
}

static void cpu_kv_read(ss_backend *b, float *dst, const void *cache, int len, int kv_dim) {
    cpu_copy(b, dst, cache, (size_t)len * (size_t)kv_dim * sizeof(float));
}

typedef enum { EW_ADD, EW_SCALE_ADD, EW_SILU_MUL } elementwise_kind;

typedef struct {
    elementwise_kind kind;
    float *x;
    const float *y;
    float a;
} elementwise_job;

static void elementwise_range(void *ctx, int begin, int end, int thread) {
    const elementwise_job *j = ctx;
    float *x = j->x;
    const float *y = j->y;
    switch (j->kind) {
    case EW_ADD:
        for (int i = begin; i < end; i++) x[i] += y[i];
        break;
    case EW_SCALE_ADD:
        for (int i = begin; i < end; i++) x[i] += j->a * y[i];
        break;
    case EW_SILU_MUL:
        for (int i = begin; i < end; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * y[i];
        break;
    }
}

/* Splits count (a size_t) into int-indexed pool loops. */
static void elementwise(ss_backend *b, elementwise_kind kind, float *x, float a, const float *y, size_t count) {
    const size_t step = (size_t)1 << 30;
    for (size_t done = 0; done < count; done += step) {
        size_t part = count - done < step ? count - done : step;
        elementwise_job job = {kind, x + done, y + done, a};
        cpu_pool_for(cpu_of(b)->pool, (int)part, ELEMENTWISE_GRAIN, elementwise_range, &job);
    }
}

static void cpu_add(ss_backend *b, float *x, const float *y, size_t count) {
    elementwise(b, EW_ADD, x, 1.0f, y, count);
}

static void cpu_scale_add(ss_backend *b, float *x, float a, const float *y, size_t count) {
    elementwise(b, EW_SCALE_ADD, x, a, y, count);
}

static void cpu_silu_mul(ss_backend *b, float *gate, const float *up, size_t count) {
    elementwise(b, EW_SILU_MUL, gate, 1.0f, up, count);
}

/* ---------------------------------------------------------------- lifetime */

static void cpu_destroy(ss_backend *b) {
    if (!b) return;
    cpu_backend *c = b->impl;
    if (c) {
        cpu_pool_destroy(c->pool);
        for (int i = 0; i < c->n_owned; i++) free(c->owned[i]);
        free(c->owned);
        free(c->tokens);
        free(c->positions);
        free(c->scores);
        free(c->block);
        free(c);
    }
    free(b);
}

static const ss_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .upload = cpu_upload,
    .upload_f32 = cpu_upload_f32,
    .free_weight = cpu_free_weight,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_host = cpu_copy,
    .to_device = cpu_copy,
    .sync = cpu_sync,
    .set_batch = cpu_set_batch,
    .embed = cpu_embed,
    .rmsnorm = cpu_rmsnorm,
    .matmul = cpu_matmul,
    .rope = cpu_rope,
    .kv_bytes = cpu_kv_bytes,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .kv_read = cpu_kv_read,
    .add = cpu_add,
    .scale_add = cpu_scale_add,
    .silu_mul = cpu_silu_mul,
};

ss_status ss_backend_cpu_create(ss_backend **out, ss_error *err) {
    *out = NULL;
    cpu_vec_init();
    ss_backend *b = calloc(1, sizeof *b);
    cpu_backend *c = calloc(1, sizeof *c);
    if (b) {
        b->ops = &cpu_ops;
        b->impl = c;
    }
    if (!b || !c || !(c->pool = cpu_pool_create(0)) || !(c->block = malloc(CPU_BLOCK_FLOATS * sizeof(float)))) {
        if (b) cpu_destroy(b);
        else free(c);
        return ss_fail(err, SS_ENOMEM, "cpu backend: out of memory (or no thread) at start");
    }
    *out = b;
    return SS_OK;
}
