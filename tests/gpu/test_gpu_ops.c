/* test_gpu_ops.c — every CUDA backend op against the CPU backend on random data (bf16 weights and
 * bf16-representable KV entries, so both backends compute from the same numbers), with the
 * backend's op fusion, op by op through the register GEMV and its warp teams (SPECSCOPE_CUDA_FUSE=0
 * SPECSCOPE_CUDA_RING=0), fused through the persistent kernel
 * (SPECSCOPE_CUDA_PERSISTENT=1), and kernel by kernel with one warp a GEMV unit, through the register
 * GEMV only (SPECSCOPE_CUDA_TEAMS=0 SPECSCOPE_CUDA_RING=0, the order of sums the persistent and ring
 * kernels keep) and with the ring GEMV where it takes the shape; a transformer layer run through
 * prefill, decode, verification and longer batches; CUDA graph replay against direct runs; greedy
 * ids on the device. Outputs are poisoned with NaN before each op, so an unwritten element fails.
 *
 * Tolerances (||gpu - cpu|| / ||cpu||): fp32 paths 1e-5 to 2e-4; paths that round activations to
 * bf16 for the tensor cores (cuBLASLt batches, tile attention) 1e-2 to 2e-2; fused against unfused 1e-5;
 * the persistent kernel, and the ring GEMV's backend, against the same launches kernel by kernel
 * without teams: identical.
 * Prints "SKIPPED: ..." and exits 77 without a CUDA device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gpu_test.h"
#include "sampler.h"

enum { CPU = 0, GPU, GPU_UNFUSED, GPU_PERSISTENT, GPU_ONE_WARP, GPU_RING_ONE_WARP, NB };

typedef struct {
    ss_backend *b;
    const char *name;
} backend;

static backend be[NB];

/* ---------------------------------------------------------------- memory helpers */

static bool synced(backend *e) {
    ss_error err = {0};
    if (e->b->ops->sync(e->b, &err) == SS_OK) return true;
    CHECK_MSG(0, "%s: %s", e->name, err.msg);
    return false;
}

static void *dalloc(backend *e, size_t bytes) {
    void *p = NULL;
    ss_error err = {0};
    if (e->b->ops->alloc(e->b, bytes, &p, &err) != SS_OK) {
        fprintf(stderr, "%s: %s\n", e->name, err.msg);
        exit(1);
    }
    return p;
}

static float *dput(backend *e, const float *host, size_t n) {
    float *d = dalloc(e, n * sizeof(float));
    e->b->ops->to_device(e->b, d, host, n * sizeof(float));
    return d;
}

static void dget(backend *e, float *host, const float *d, size_t n) {
    for (size_t i = 0; i < n; i++) host[i] = NAN;
    e->b->ops->to_host(e->b, host, d, n * sizeof(float));
    synced(e);
}

static void poison(backend *e, float *d, size_t n) {
    float *nan = malloc(n * sizeof *nan);
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    e->b->ops->to_device(e->b, d, nan, n * sizeof *nan);
    free(nan);
}

static void batch(backend *e, int first_position, int n) {
    int *tok = malloc((size_t)n * sizeof *tok), *pos = malloc((size_t)n * sizeof *pos);
    for (int i = 0; i < n; i++) tok[i] = (i * 7 + first_position) % 97, pos[i] = first_position + i;
    e->b->ops->set_batch(e->b, tok, pos, n);
    free(tok);
    free(pos);
}

/* A bf16 weight uploaded to every backend (the CPU one reads bits in place: they outlive it). */
typedef struct {
    uint16_t *bits;
    float *values;
    ss_tensor t;
    ss_weight w[NB];
} tweight;

static tweight make_weight(int rows, int cols, float scale) {
    tweight w = {0};
    size_t n = (size_t)rows * cols;
    w.values = gpu_random(n, scale, true);
    w.bits = malloc(n * sizeof *w.bits);
    for (size_t i = 0; i < n; i++) w.bits[i] = ss_f32_to_bf16(w.values[i]);
    w.t = (ss_tensor){.name = "test weight", .dtype = SS_BF16, .ndim = rows == 1 ? 1 : 2, .data = w.bits,
                      .nbytes = n * 2, .file = "memory"};
    w.t.shape[0] = rows == 1 ? cols : rows;
    w.t.shape[1] = cols;
    for (int i = 0; i < NB; i++) {
        ss_error err = {0};
        CHECK_MSG(be[i].b->ops->upload(be[i].b, &w.t, &w.w[i], &err) == SS_OK, "%s: %s", be[i].name, err.msg);
    }
    return w;
}

static void free_tweight(tweight *w) {
    for (int i = 0; i < NB; i++)
        if (w->w[i].data) be[i].b->ops->free_weight(be[i].b, &w->w[i]);
    free(w->bits);
    free(w->values);
}

static void compare(const char *what, int i, const float *got, const float *ref, size_t n, double tol) {
    double e = gpu_rel_err(got, ref, n);
    printf("%-58s %-12s rel err %.2e (tolerance %.0e)\n", what, be[i].name, e, tol);
    CHECK_MSG(e <= tol, "%s on %s: relative error %g > %g", what, be[i].name, e, tol);
}

/* ---------------------------------------------------------------- single ops */

/* out = x W^T (+ bias) for n vectors; with a residual, res += out right after (the fused backend
 * adds it in the GEMV's epilogue), and res is compared too. */
static void test_matmul(int rows, int cols, int n, bool with_bias, bool residual, double tol) {
    tweight w = make_weight(rows, cols, 1.0f / sqrtf((float)cols)), b = {0};
    if (with_bias) b = make_weight(1, rows, 0.5f);
    float *x = gpu_random((size_t)n * cols, 1.0f, false);
    size_t out_n = (size_t)n * rows;
    float *r0 = residual ? gpu_random(out_n, 1.0f, false) : NULL;
    float *ref = malloc(2 * out_n * sizeof *ref), *got = malloc(2 * out_n * sizeof *got);
    char what[96];
    snprintf(what, sizeof what, "matmul %dx%d by %d%s%s", rows, cols, n, with_bias ? " + bias" : "",
             residual ? " + residual" : "");
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        float *dx = dput(e, x, (size_t)n * cols), *dout = dalloc(e, out_n * sizeof(float));
        float *dres = residual ? dput(e, r0, out_n) : NULL, *res = i == CPU ? ref : got;
        poison(e, dout, out_n);
        e->b->ops->matmul(e->b, dout, dx, &w.w[i], with_bias ? &b.w[i] : NULL, n);
        if (residual) e->b->ops->add(e->b, dres, dout, out_n);
        dget(e, res, dout, out_n);
        if (residual) dget(e, res + out_n, dres, out_n);
        if (i != CPU) compare(what, i, got, ref, out_n, tol);
        if (i != CPU && residual) compare("  residual", i, got + out_n, ref + out_n, out_n, tol);
        e->b->ops->free(e->b, dx);
        e->b->ops->free(e->b, dout);
        e->b->ops->free(e->b, dres);
    }
    free_tweight(&w);
    if (with_bias) free_tweight(&b);
    free(x);
    free(r0);
    free(ref);
    free(got);
}

/* gate and up projections of n vectors, then silu_mul, as the MLP issues them: on the fused backend
 * one GEMV over gate/up row pairs with SiLU*up in its epilogue. */
static void test_gate_up(int inter, int cols, int n) {
    const float ws = 1.0f / sqrtf((float)cols);
    tweight wg = make_weight(inter, cols, ws), wu = make_weight(inter, cols, ws);
    float *x = gpu_random((size_t)n * cols, 1.0f, false);
    size_t out_n = (size_t)n * inter;
    float *ref = malloc(2 * out_n * sizeof *ref), *got = malloc(2 * out_n * sizeof *got);
    char what[96];
    snprintf(what, sizeof what, "gate/up %dx%d by %d, silu_mul", inter, cols, n);
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        const ss_backend_ops *o = e->b->ops;
        float *dx = dput(e, x, (size_t)n * cols), *gate = dalloc(e, 2 * out_n * sizeof(float)), *up = gate + out_n;
        poison(e, gate, 2 * out_n);
        o->matmul(e->b, gate, dx, &wg.w[i], NULL, n);
        o->matmul(e->b, up, dx, &wu.w[i], NULL, n);
        o->silu_mul(e->b, gate, up, out_n);
        dget(e, i == CPU ? ref : got, gate, 2 * out_n);
        if (i != CPU) compare(what, i, got, ref, 2 * out_n, 1e-5);
        o->free(e->b, dx);
        o->free(e->b, gate);
    }
    free_tweight(&wg);
    free_tweight(&wu);
    free(x);
    free(ref);
    free(got);
}

static void test_rmsnorm(int rows, int dim, bool weighted, bool in_place) {
    tweight w = make_weight(1, dim, 1.0f);
    float *x = gpu_random((size_t)rows * dim, 3.0f, false);
    size_t n = (size_t)rows * dim;
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    char what[96];
    snprintf(what, sizeof what, "rmsnorm %dx%d%s%s", rows, dim, weighted ? " weighted" : "", in_place ? " in place" : "");
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        batch(e, 0, 1);
        float *dx = dput(e, x, n), *dout = in_place ? dx : dalloc(e, n * sizeof(float));
        if (!in_place) poison(e, dout, n);
        e->b->ops->rmsnorm(e->b, dout, dx, weighted ? &w.w[i] : NULL, rows, dim, 1e-5f);
        dget(e, i == CPU ? ref : got, dout, n);
        if (i != CPU) compare(what, i, got, ref, n, 1e-5);
        if (!in_place) e->b->ops->free(e->b, dout);
        e->b->ops->free(e->b, dx);
    }
    free_tweight(&w);
    free(x);
    free(ref);
    free(got);
}

static void test_embed(int vocab, int cols, int n) {
    tweight t = make_weight(vocab, cols, 1.0f);
    size_t count = (size_t)n * cols;
    float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        batch(e, 3, n); /* tokens (i * 7 + 3) % 97 */
        float *dx = dalloc(e, count * sizeof(float));
        poison(e, dx, count);
        e->b->ops->embed(e->b, dx, &t.w[i], n);
        dget(e, i == CPU ? ref : got, dx, count);
        if (i != CPU) compare("embed", i, got, ref, count, 0.0);
        e->b->ops->free(e->b, dx);
    }
    free_tweight(&t);
    free(ref);
    free(got);
}

typedef enum { EW_ADD, EW_SCALE_ADD, EW_SCALE_ADD_SELF, EW_SILU_MUL } ew_op;

static void test_elementwise(ew_op op, size_t count) {
    static const char *const names[] = {"add", "scale_add", "scale_add (y = x)", "silu_mul"};
    float *x = gpu_random(count, 4.0f, false), *y = gpu_random(count, 2.0f, false);
    float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    char what[96];
    snprintf(what, sizeof what, "%s of %zu", names[op], count);
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        float *dx = dput(e, x, count), *dy = dput(e, y, count);
        const ss_backend_ops *o = e->b->ops;
        if (op == EW_ADD) o->add(e->b, dx, dy, count);
        if (op == EW_SCALE_ADD) o->scale_add(e->b, dx, -0.75f, dy, count);
        if (op == EW_SCALE_ADD_SELF) o->scale_add(e->b, dx, -1.0f, dx, count);
        if (op == EW_SILU_MUL) o->silu_mul(e->b, dx, dy, count);
        dget(e, i == CPU ? ref : got, dx, count);
        if (i != CPU) compare(what, i, got, ref, count, op == EW_SCALE_ADD_SELF ? 0.0 : 1e-6);
        if (op == EW_SCALE_ADD_SELF) {
            bool zero = true;
            for (size_t j = 0; j < count; j++) zero &= (i == CPU ? ref : got)[j] == 0.0f;
            CHECK_MSG(zero, "%s on %s: x += -1 * x is not all zeros", what, be[i].name);
        }
        o->free(e->b, dx);
        o->free(e->b, dy);
    }
    free(x);
    free(y);
    free(ref);
    free(got);
}

static float *rope_table(int head_dim, float theta) {
    float *f = malloc((size_t)(head_dim / 2) * sizeof *f);
    for (int d = 0; d < head_dim / 2; d++) f[d] = 1.0f / powf(theta, (float)(2 * d) / (float)head_dim);
    return f;
}

static void test_rope(int n, int heads, int head_dim, int first_position) {
    float *inv = rope_table(head_dim, 500000.0f);
    ss_rope rope = {head_dim, inv};
    size_t count = (size_t)n * heads * head_dim;
    float *x = gpu_random(count, 2.0f, false);
    float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    char what[96];
    snprintf(what, sizeof what, "rope %d x %d heads of %d from position %d", n, heads, head_dim, first_position);
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        batch(e, first_position, n);
        float *dx = dput(e, x, count);
        e->b->ops->rope(e->b, dx, n, heads, &rope);
        dget(e, i == CPU ? ref : got, dx, count);
        if (i != CPU) compare(what, i, got, ref, count, 1e-5);
        e->b->ops->free(e->b, dx);
    }
    free(inv);
    free(x);
    free(ref);
    free(got);
}

/* The q/k/v projections of n vectors at positions first.., rope on q and k and the KV store, as a
 * layer issues them: on the fused backend one GEMV over rotate_half row pairs whose epilogue
 * rotates and stores. The caches hold bf16, so an element that rounds the other way moves them by
 * up to 2^-8 of itself: 1e-2 there. */
static void test_qkv(int heads, int kv_heads, int head_dim, int cols, int n, int first) {
    const int qd = heads * head_dim, kd = kv_heads * head_dim, total = first + n;
    const float ws = 1.0f / sqrtf((float)cols);
    tweight wq = make_weight(qd, cols, ws), wk = make_weight(kd, cols, ws), wv = make_weight(kd, cols, ws);
    float *inv = rope_table(head_dim, 500000.0f);
    ss_rope rope = {head_dim, inv};
    float *x = gpu_random((size_t)n * cols, 1.0f, false);
    const size_t out_n = (size_t)n * (qd + 2 * kd), kv_n = (size_t)total * kd;
    float *ref = malloc((out_n + 2 * kv_n) * sizeof *ref), *got = malloc((out_n + 2 * kv_n) * sizeof *got);
    char what[128];
    snprintf(what, sizeof what, "q/k/v %d/%d heads of %d by %d cols, rope, kv_store: %d at %d", heads, kv_heads,
             head_dim, cols, n, first);
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        const ss_backend_ops *o = e->b->ops;
        const size_t cache = o->kv_bytes(e->b, kd) * (size_t)total;
        void *kc = dalloc(e, cache), *vc = dalloc(e, cache);
        float *dx = dput(e, x, (size_t)n * cols), *q = dalloc(e, out_n * sizeof(float));
        float *k = q + (size_t)n * qd, *v = k + (size_t)n * kd, *res = i == CPU ? ref : got;
        poison(e, q, out_n);
        batch(e, first, n);
        o->matmul(e->b, q, dx, &wq.w[i], NULL, n);
        o->matmul(e->b, k, dx, &wk.w[i], NULL, n);
        o->matmul(e->b, v, dx, &wv.w[i], NULL, n);
        o->rope(e->b, q, n, heads, &rope);
        o->rope(e->b, k, n, kv_heads, &rope);
        o->kv_store(e->b, kc, vc, k, v, n, kd);
        dget(e, res, q, out_n);
        o->kv_read(e->b, res + out_n, kc, total, kd);
        o->kv_read(e->b, res + out_n + kv_n, vc, total, kd);
        synced(e);
        if (i != CPU) {
            compare(what, i, got, ref, out_n, 1e-5);
            compare("  KV caches", i, got + out_n, ref + out_n, 2 * kv_n, 1e-2);
        }
        o->free(e->b, dx);
        o->free(e->b, q);
        o->free(e->b, kc);
        o->free(e->b, vc);
    }
    free_tweight(&wq);
    free_tweight(&wk);
    free_tweight(&wv);
    free(inv);
    free(x);
    free(ref);
    free(got);
}

/* ---------------------------------------------------------------- KV cache and attention */

/* Stores K/V rows [at, at + count) of keys/vals at those positions. */
static void store_kv(backend *e, void *kc, void *vc, const float *keys, const float *vals, int kv_dim, int at, int count) {
    float *dk = dput(e, keys + (size_t)at * kv_dim, (size_t)count * kv_dim);
    float *dv = dput(e, vals + (size_t)at * kv_dim, (size_t)count * kv_dim);
    batch(e, at, count);
    e->b->ops->kv_store(e->b, kc, vc, dk, dv, count, kv_dim);
    e->b->ops->free(e->b, dk);
    e->b->ops->free(e->b, dv);
}

/* past cache entries, then n new queries (positions past .. past + n - 1) that store their K/V
 * and attend. K/V values are bf16-representable, so the caches of both backends hold the same
 * numbers. tol: decode kernel (fp32) or tile kernel (bf16 q and probabilities). */
static void test_attention(int n, int heads, int kv_heads, int head_dim, int past, double tol) {
    const int kv_dim = kv_heads * head_dim, total = past + n;
    float *keys = gpu_random((size_t)total * kv_dim, 1.5f, true), *vals = gpu_random((size_t)total * kv_dim, 1.0f, true);
    float *q = gpu_random((size_t)n * heads * head_dim, 1.5f, false);
    size_t out_n = (size_t)n * heads * head_dim, kv_n = (size_t)total * kv_dim;
    float *ref = malloc(out_n * sizeof *ref), *got = malloc(out_n * sizeof *got);
    float *kref = malloc(kv_n * sizeof *kref), *kgot = malloc(kv_n * sizeof *kgot);
    char what[128];
    snprintf(what, sizeof what, "attention n %d, %d/%d heads of %d, after %d", n, heads, kv_heads, head_dim, past);
    for (int i = 0; i < NB; i++) {
        backend *e = &be[i];
        const ss_backend_ops *o = e->b->ops;
        size_t cache = o->kv_bytes(e->b, kv_dim) * (size_t)total;
        void *kc = dalloc(e, cache), *vc = dalloc(e, cache);
        for (int at = 0; at < past; at += 256) /* the past in batches of at most 256, then this batch */
            store_kv(e, kc, vc, keys, vals, kv_dim, at, past - at < 256 ? past - at : 256);
        store_kv(e, kc, vc, keys, vals, kv_dim, past, n);
        float *dq = dput(e, q, out_n), *dout = dalloc(e, out_n * sizeof(float));
        poison(e, dout, out_n);
        o->attention(e->b, dout, dq, kc, vc, n, heads, kv_heads, head_dim);
        dget(e, i == CPU ? ref : got, dout, out_n);
        o->kv_read(e->b, i == CPU ? kref : kgot, kc, total, kv_dim);
        synced(e);
        if (i != CPU) {
            compare(what, i, got, ref, out_n, tol);
            compare("  kv_store + kv_read", i, kgot, kref, kv_n, 0.0);
        }
        o->free(e->b, dq);
        o->free(e->b, dout);
        o->free(e->b, kc);
        o->free(e->b, vc);
    }
    free(keys);
    free(vals);
    free(q);
    free(ref);
    free(got);
    free(kref);
    free(kgot);
}

/* ---------------------------------------------------------------- a whole layer */

typedef struct {
    int hidden, heads, kv_heads, head_dim, inter;
    bool qk_norm, bias;
} geometry;

typedef struct {
    tweight attn_norm, q, k, v, o, qb, kb, vb, qn, kn, mlp_norm, gate, up, down;
} layer_weights;

typedef struct {
    float *x, *xn, *q, *k, *v, *att, *gate, *up;
    void *kc, *vc;
} layer_state;

typedef struct {
    backend *e;
    int i; /* backend index into the weights */
    const geometry *g;
    layer_weights *w;
    layer_state *s;
    const ss_rope *rope;
    int n;
} layer_call;

/* The op sequence of forward.c's layer_forward (attend + mlp), written against the ops. */
static void layer(void *ctx) {
    const layer_call *L = ctx;
    ss_backend *b = L->e->b;
    const ss_backend_ops *o = b->ops;
    const geometry *g = L->g;
    layer_weights *w = L->w;
    layer_state *s = L->s;
    const int i = L->i, n = L->n, kv_dim = g->kv_heads * g->head_dim;
    const float eps = 1e-5f;
    o->rmsnorm(b, s->xn, s->x, &w->attn_norm.w[i], n, g->hidden, eps);
    o->matmul(b, s->q, s->xn, &w->q.w[i], g->bias ? &w->qb.w[i] : NULL, n);
    o->matmul(b, s->k, s->xn, &w->k.w[i], g->bias ? &w->kb.w[i] : NULL, n);
    o->matmul(b, s->v, s->xn, &w->v.w[i], g->bias ? &w->vb.w[i] : NULL, n);
    if (g->qk_norm) {
        o->rmsnorm(b, s->q, s->q, &w->qn.w[i], n * g->heads, g->head_dim, eps);
        o->rmsnorm(b, s->k, s->k, &w->kn.w[i], n * g->kv_heads, g->head_dim, eps);
    }
    o->rope(b, s->q, n, g->heads, L->rope);
    o->rope(b, s->k, n, g->kv_heads, L->rope);
    o->kv_store(b, s->kc, s->vc, s->k, s->v, n, kv_dim);
    o->attention(b, s->att, s->q, s->kc, s->vc, n, g->heads, g->kv_heads, g->head_dim);
    o->matmul(b, s->xn, s->att, &w->o.w[i], NULL, n);
    o->add(b, s->x, s->xn, (size_t)n * g->hidden);
    o->rmsnorm(b, s->xn, s->x, &w->mlp_norm.w[i], n, g->hidden, eps);
    o->matmul(b, s->gate, s->xn, &w->gate.w[i], NULL, n);
    o->matmul(b, s->up, s->xn, &w->up.w[i], NULL, n);
    o->silu_mul(b, s->gate, s->up, (size_t)n * g->inter);
    o->matmul(b, s->xn, s->gate, &w->down.w[i], NULL, n);
    o->add(b, s->x, s->xn, (size_t)n * g->hidden);
}

#define LAYER_MAX_BATCH 64
#define LAYER_CONTEXT 192

static layer_weights make_layer(const geometry *g) {
    int qd = g->heads * g->head_dim, kd = g->kv_heads * g->head_dim;
    float ws = 1.0f / sqrtf((float)g->hidden);
    layer_weights w = {
        make_weight(1, g->hidden, 1.0f),     make_weight(qd, g->hidden, ws),        make_weight(kd, g->hidden, ws),
        make_weight(kd, g->hidden, ws),      make_weight(g->hidden, qd, ws),        make_weight(1, qd, 0.3f),
        make_weight(1, kd, 0.3f),            make_weight(1, kd, 0.3f),              make_weight(1, g->head_dim, 1.0f),
        make_weight(1, g->head_dim, 1.0f),   make_weight(1, g->hidden, 1.0f),       make_weight(g->inter, g->hidden, ws),
        make_weight(g->inter, g->hidden, ws), make_weight(g->hidden, g->inter, 1.0f / sqrtf((float)g->inter))};
    return w;
}

static layer_state make_state(backend *e, const geometry *g, const float *x0) {
    size_t B = LAYER_MAX_BATCH, qd = (size_t)g->heads * g->head_dim, kd = (size_t)g->kv_heads * g->head_dim;
    size_t cache = e->b->ops->kv_bytes(e->b, (int)kd) * LAYER_CONTEXT;
    layer_state s = {dput(e, x0, B * g->hidden), dalloc(e, B * g->hidden * 4), dalloc(e, B * qd * 4),
                     dalloc(e, B * kd * 4),      dalloc(e, B * kd * 4),        dalloc(e, B * qd * 4),
                     dalloc(e, B * g->inter * 4), dalloc(e, B * g->inter * 4), dalloc(e, cache),
                     dalloc(e, cache)};
    return s;
}

static void free_state(backend *e, layer_state *s) {
    void *p[] = {s->x, s->xn, s->q, s->k, s->v, s->att, s->gate, s->up, s->kc, s->vc};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) e->b->ops->free(e->b, p[i]);
}

/* Steps of (first position, n): prefill, decode, verify, a longer batch, decode, verify; two more
 * batches, then a decode and a verify past 150 keys (2 or 3 passes of keys in one split for the
 * decode attention, which the persistent kernel must sum in the same order); then decode steps
 * through run_graph on the fused backend (direct elsewhere). After each step the residual streams
 * of the CUDA backends are compared with the CPU's and with each other. */
static void test_layer(const geometry *g) {
    static const int steps[][2] = {{0, 20}, {20, 1}, {21, 4}, {25, 12}, {37, 1}, {38, 9}, {47, 64}, {111, 40},
                                   {151, 1}, {152, 4}};
    const int n_steps = (int)(sizeof steps / sizeof *steps), graph_steps = 6;
    layer_weights w = make_layer(g);
    float *inv = rope_table(g->head_dim, 10000.0f);
    ss_rope rope = {g->head_dim, inv};
    float *x0 = gpu_random((size_t)LAYER_MAX_BATCH * g->hidden, 1.0f, false);
    layer_state s[NB];
    for (int i = 0; i < NB; i++) s[i] = make_state(&be[i], g, x0);
    size_t cap = (size_t)LAYER_MAX_BATCH * g->hidden;
    float *out[NB];
    for (int i = 0; i < NB; i++) out[i] = malloc(cap * sizeof(float));
    char what[160];
    for (int st = 0; st < n_steps + graph_steps; st++) {
        const bool graph = st >= n_steps;
        const int first = graph ? 156 + (st - n_steps) : steps[st][0], n = graph ? 1 : steps[st][1];
        for (int i = 0; i < NB; i++) {
            backend *e = &be[i];
            layer_call call = {e, i, g, &w, &s[i], &rope, n};
            batch(e, first, n);
            if (graph && (i == GPU || i == GPU_PERSISTENT || i == GPU_ONE_WARP || i == GPU_RING_ONE_WARP)) {
                ss_error err = {0};
                CHECK_MSG(e->b->ops->run_graph(e->b, 7, layer, &call, &err) == SS_OK, "run_graph: %s", err.msg);
            } else {
                layer(&call);
            }
            dget(e, out[i], s[i].x, (size_t)n * g->hidden);
        }
        snprintf(what, sizeof what, "layer h%d %d/%d heads of %d%s%s: %s %d at %d", g->hidden, g->heads, g->kv_heads,
                 g->head_dim, g->qk_norm ? " qk-norm" : "", g->bias ? " bias" : "", graph ? "graph step" : "batch", n,
                 first);
        compare(what, GPU, out[GPU], out[CPU], (size_t)n * g->hidden, 1e-2);
        compare(what, GPU_UNFUSED, out[GPU_UNFUSED], out[CPU], (size_t)n * g->hidden, 1e-2);
        printf("  fused against op by op:");
        compare("", GPU, out[GPU], out[GPU_UNFUSED], (size_t)n * g->hidden, 1e-5);
        printf("  persistent against kernel by kernel, one warp a unit:");
        compare("", GPU_PERSISTENT, out[GPU_PERSISTENT], out[GPU_ONE_WARP], (size_t)n * g->hidden, 0.0);
        printf("  ring GEMV where it takes the shape, against the register GEMV, one warp a unit:");
        compare("", GPU_RING_ONE_WARP, out[GPU_RING_ONE_WARP], out[GPU_ONE_WARP], (size_t)n * g->hidden, 0.0);
        /* The next step starts from the same residual stream everywhere (the CPU's). */
        for (int i = GPU; i < NB; i++) be[i].b->ops->to_device(be[i].b, s[i].x, out[CPU], (size_t)n * g->hidden * 4);
    }
    for (int i = 0; i < NB; i++) {
        free_state(&be[i], &s[i]);
        free(out[i]);
    }
    tweight *ws = &w.attn_norm;
    for (size_t j = 0; j < sizeof w / sizeof w.attn_norm; j++) free_tweight(&ws[j]);
    free(inv);
    free(x0);
}

/* ---------------------------------------------------------------- greedy ids */

static void test_argmax(void) {
    const int rows = 5, vocab = 50021;
    float *l = gpu_random((size_t)rows * vocab, 8.0f, false);
    l[1 * vocab + 7] = l[1 * vocab + 30000] = 50.0f;       /* a tie: the lower index wins */
    for (int j = 0; j < vocab; j += 3) l[2 * vocab + j] = NAN; /* NaN never wins */
    for (int j = 0; j < vocab; j++) l[3 * vocab + j] = NAN;   /* all NaN: 0 */
    l[4 * vocab + vocab - 1] = 99.0f;                         /* the last element */
    backend *e = &be[GPU];
    float *d = dput(e, l, (size_t)rows * vocab);
    int ids[5];
    e->b->ops->argmax_rows(e->b, ids, d, rows, vocab);
    synced(e);
    for (int r = 0; r < rows; r++) {
        int want = ss_argmax(l + (size_t)r * vocab, vocab);
        CHECK_MSG(ids[r] == want, "argmax_rows row %d: %d, ss_argmax says %d", r, ids[r], want);
    }
    printf("argmax_rows: %d rows of %d match ss_argmax\n", rows, vocab);
    e->b->ops->free(e->b, d);
    free(l);
}

/* ---------------------------------------------------------------- main */

int main(void) {
    int skip = gpu_require_device();
    if (skip) return skip;
    ss_error err = {0};
    /* Each CUDA backend with its switches set (the others at their defaults). */
    static const struct {
        int index;
        const char *name, *off, *off2; /* off, off2: switches set to 0 */
        const char *persistent;
    } kinds[] = {{GPU, "cuda", NULL, NULL, "0"},
                 {GPU_UNFUSED, "cuda unfused", "SPECSCOPE_CUDA_FUSE", "SPECSCOPE_CUDA_RING", "0"},
                 {GPU_PERSISTENT, "cuda persistent", NULL, NULL, "1"},
                 {GPU_ONE_WARP, "cuda one warp a unit", "SPECSCOPE_CUDA_TEAMS", "SPECSCOPE_CUDA_RING", "0"},
                 {GPU_RING_ONE_WARP, "cuda ring, one warp a unit", "SPECSCOPE_CUDA_TEAMS", NULL, "0"}};
    be[CPU].name = "cpu";
    if (ss_backend_cpu_create(&be[CPU].b, &err)) {
        fprintf(stderr, "backend: %s\n", err.msg);
        return 1;
    }
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        setenv("SPECSCOPE_CUDA_PERSISTENT", kinds[k].persistent, 1);
        if (kinds[k].off) setenv(kinds[k].off, "0", 1);
        if (kinds[k].off2) setenv(kinds[k].off2, "0", 1);
        be[kinds[k].index].name = kinds[k].name;
        ss_status st = ss_backend_cuda_create(&be[kinds[k].index].b, &err);
        unsetenv("SPECSCOPE_CUDA_PERSISTENT");
        if (kinds[k].off) unsetenv(kinds[k].off);
        if (kinds[k].off2) unsetenv(kinds[k].off2);
        if (st) {
            fprintf(stderr, "backend %s: %s\n", kinds[k].name, err.msg);
            return 1;
        }
    }

    /* GEMV (n <= 9, fp32 activations), the plain path (cols % 8 != 0), cuBLASLt (n > 9). */
    test_matmul(64, 64, 1, false, false, 1e-5);
    test_matmul(1000, 520, 1, true, false, 1e-5);
    test_matmul(2048, 2048, 1, false, false, 1e-5);
    test_matmul(24, 14336, 1, false, false, 1e-5); /* GEMV warp teams of W = 8 (below) */
    test_matmul(515, 264, 5, true, false, 1e-5);
    test_matmul(1024, 2048, 9, false, false, 1e-5);
    test_matmul(40, 14336, 5, true, false, 1e-5); /* 5 vectors of 14336 do not fit at once: groups of GEMVs */
    test_matmul(100, 36, 3, true, false, 1e-5);
    test_matmul(512, 256, 17, false, false, 1e-2);
    test_matmul(1024, 2048, 64, true, false, 1e-2);
    test_matmul(24, 14336, 33, false, false, 1e-2);
    /* The ring GEMV's shapes (at least 4096 rows of 4096 columns) with one vector: rows with a
     * residual, gate/up pairs (test_qkv below has the q/k/v pairs); verification batches of them
     * take the register GEMV with one warp a unit. */
    test_matmul(4096, 4096, 1, false, true, 1e-5);
    test_matmul(4096, 4096, 3, false, true, 1e-5);
    test_gate_up(2048, 4096, 1);

    /* The GEMV's warp teams (team_for in kernels/gemv.cu): each shape below makes the host pick
     * teams of W > 1 warps; where a team takes several units, the counts are the H200's (132 SMs).
     * One vector of 4096 rows of 4096 columns or more takes the ring GEMV on the default backend
     * (the llama-3.1-8b q/k/v launch below); the unfused one keeps the register GEMV's teams. */
    test_matmul(100, 4096, 1, false, true, 1e-5);  /* W = 2 */
    test_matmul(2688, 7168, 1, false, true, 1e-5); /* W = 2, 3 rows a team, 2 batches a member */
    test_matmul(64, 6000, 5, true, true, 1e-5);    /* W = 4: member 2's chunks end past the row, 3's start past it */
    test_matmul(40, 14336, 1, false, true, 1e-5);  /* W = 8 */
    test_gate_up(96, 2048, 9);                     /* W = 2 */
    test_gate_up(64, 8192, 1);                     /* W = 8 */
    test_qkv(32, 8, 128, 4096, 1, 300);            /* W = 2, 3 pairs a team: the llama-3.1-8b launch */
    test_qkv(32, 8, 128, 4096, 4, 300);            /* W = 2 */
    test_qkv(2, 1, 64, 3000, 3, 5000);             /* W = 4: member 2's chunks end past the row, 3's start past it */
    test_qkv(2, 1, 64, 5120, 9, 70);               /* W = 8 */
    test_qkv(2, 1, 64, 16384, 2, 9);               /* W = 8, 2 batches a member */

    test_rmsnorm(1, 2048, true, false);
    test_rmsnorm(7, 64, true, true);
    test_rmsnorm(300, 1000, false, false);
    test_embed(97, 264, 9);
    test_embed(97, 36, 4);
    for (int op = EW_ADD; op <= EW_SILU_MUL; op++) {
        test_elementwise((ew_op)op, 4096);
        test_elementwise((ew_op)op, 1000003);
    }
    test_rope(3, 5, 16, 0);
    test_rope(2, 8, 64, 17);
    test_rope(4, 3, 128, 100000);
    test_rope(1, 2, 256, 5000);

    /* Decode kernel (n <= 9, any head_dim % 8 == 0) and tile kernel (more queries). */
    test_attention(1, 4, 2, 16, 5, 2e-4);
    test_attention(1, 32, 8, 64, 700, 2e-4);
    test_attention(1, 32, 8, 128, 3000, 2e-4);
    test_attention(1, 14, 2, 64, 150, 2e-4);
    test_attention(5, 32, 8, 128, 1000, 2e-4);
    test_attention(17, 4, 4, 80, 50, 2e-4);
    test_attention(40, 8, 2, 64, 300, 2e-2);
    test_attention(256, 32, 8, 128, 0, 2e-2);
    test_attention(12, 6, 2, 256, 70, 2e-2);
    test_attention(20, 4, 2, 16, 1000, 2e-2);
    test_attention(8, 16, 4, 128, 32, 2e-4); /* one rank of the 8B heads at tp 2 */
    /* The decode kernel's other paths: groups of more than 4 heads (several blocks a kv head), a
     * head_dim short of its lane count (96 of 128), 256, and a verification batch at a long context. */
    test_attention(1, 8, 1, 32, 2000, 2e-4);
    test_attention(3, 12, 4, 96, 400, 2e-4);
    test_attention(1, 8, 2, 256, 600, 2e-4);
    test_attention(9, 32, 8, 128, 4100, 2e-4);
    /* Short contexts of 2 or 3 passes of keys in one split, one head a block: the 8B heads at 151
     * keys (3 passes of 64), the 1B heads at 301 (3 of 128), and a verification across 2 and 3. */
    test_attention(1, 32, 8, 128, 150, 2e-4);
    test_attention(1, 32, 8, 64, 300, 2e-4);
    test_attention(4, 32, 8, 128, 126, 2e-4);

    const geometry llama = {256, 4, 2, 64, 512, false, false}, qwen3 = {128, 4, 2, 64, 384, true, false},
                   qwen2 = {192, 6, 2, 32, 256, false, true};
    test_layer(&llama);
    test_layer(&qwen3);
    test_layer(&qwen2);
    /* Real widths, whose GEMVs read rows in several batches (an even count caught a residual
     * epilogue adding stale values): the llama-3.2-1b and llama-3.1-8b layers, and one rank of the
     * 8B layer split over 2 (q width 2048 against a hidden size of 4096). */
    const geometry l1b = {2048, 32, 8, 64, 8192, false, false}, l8b = {4096, 32, 8, 128, 14336, false, false},
                   l8b_rank = {4096, 16, 4, 128, 7168, false, false};
    test_layer(&l1b);
    test_layer(&l8b);
    test_layer(&l8b_rank);
    test_argmax();

    for (int i = 0; i < NB; i++) be[i].b->ops->destroy(be[i].b);
    return check_done();
}
