/* backend_cuda.cu — the CUDA implementation of ss_backend_ops: device choice, memory (bf16
 * weights, zero-filled buffers), the batch buffers, CUDA graphs, greedy ids, errors, lifetime.
 * The compute ops are in cuda_ops.cu, the cuBLASLt GEMM in cuda_matmul.cu, the kernels in kernels/.
 *
 * Everything runs on one non-blocking stream. Void ops record their first failure; sync() reports
 * it. Environment switches (for A/B measurements and bisecting): SPECSCOPE_CUDA_PDL=0 (no
 * programmatic dependent launch), SPECSCOPE_CUDA_FUSE=0 (one kernel per op), SPECSCOPE_CUDA_GRAPHS=0
 * (run_graph runs directly), SPECSCOPE_CUDA_RING=0 (every GEMV on the register kernel). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define LT_WORKSPACE ((size_t)32 << 20)
#define FIRST_BATCH_CAP 1024
#define CONVERT_CHUNK ((size_t)1 << 20) /* elements converted to bf16 per host pass */
#define MIB (1024.0 * 1024.0)
/* A forward whose capture failed this often (it grew scratch each time, or did a host copy) runs
 * directly from then on. */
#define MAX_FAILED_CAPTURES 2

/* ---------------------------------------------------------------- errors */

bool cb_ok(cuda_backend *c) { return c->failed.status == SS_OK; }

void cb_fail(cuda_backend *c, ss_status status, const char *fmt, ...) {
    if (!cb_ok(c)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->failed.msg, sizeof c->failed.msg, fmt, ap);
    va_end(ap);
    c->failed.status = status;
}

bool cb_check(cuda_backend *c, cudaError_t e, const char *what) {
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e == cudaSuccess) return true;
    cb_fail(c, e == cudaErrorMemoryAllocation ? SS_ENOMEM : SS_EDEVICE, "cuda backend: %s: %s (%s)", what,
            cudaGetErrorString(e), cudaGetErrorName(e));
    return false;
}

static ss_status device_error(ss_error *err, cudaError_t e, const char *what) {
    cudaGetLastError(); /* clear a non-sticky error so the next call starts clean */
    return ss_fail(err, e == cudaErrorMemoryAllocation ? SS_ENOMEM : SS_EDEVICE, "cuda backend: %s: %s (%s)", what,
                   cudaGetErrorString(e), cudaGetErrorName(e));
}

/* "out of GPU memory: NAME needs X MiB more (Y MiB free of Z MiB)" */
static ss_status out_of_memory(ss_error *err, const char *name, size_t bytes) {
    cudaGetLastError();
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    size_t more = bytes > free_bytes ? bytes - free_bytes : bytes; /* fragmentation: the whole size */
    return ss_fail(err, SS_ENOMEM, "out of GPU memory: %s needs %.1f MiB more (%.1f MiB free of %.1f MiB)", name,
                   more / MIB, free_bytes / MIB, total / MIB);
}

static ss_status device_alloc(size_t bytes, const char *name, void **out, ss_error *err) {
    *out = NULL;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) return out_of_memory(err, name, bytes);
    if (e != cudaSuccess) return device_error(err, e, name);
    return SS_OK;
}

/* ---------------------------------------------------------------- graphs */

void cb_drop_graphs(cuda_backend *c) {
    if (c->graph_owner) cb_drop_graphs(c->graph_owner); /* its graphs hold this rank's pointers */
    bool any = false;
    for (int i = 0; i < CB_GRAPHS; i++) any |= c->graphs_cache[i].exec != NULL || c->graphs_cache[i].warmed;
    if (!any) return;
    cudaStreamSynchronize(c->stream);
    for (int i = 0; i < CB_GRAPHS; i++) {
        if (c->graphs_cache[i].exec) cudaGraphExecDestroy(c->graphs_cache[i].exec);
        memset(&c->graphs_cache[i], 0, sizeof c->graphs_cache[i]);
    }
}

static cb_graph *graph_slot(cuda_backend *c, uint64_t key) {
    cb_graph *victim = &c->graphs_cache[0];
    for (int i = 0; i < CB_GRAPHS; i++) {
        cb_graph *g = &c->graphs_cache[i];
        if (g->warmed && g->key == key) return g;
        if (!g->warmed || g->last_use < victim->last_use) victim = g;
        if (!g->warmed) break;
    }
    if (victim->exec) {
        cudaStreamSynchronize(c->stream);
        cudaGraphExecDestroy(victim->exec);
    }
    memset(victim, 0, sizeof *victim);
    victim->key = key;
    return victim;
}

static ss_status report(cuda_backend *c, ss_error *err) {
    if (cb_ok(c)) return SS_OK;
    ss_status st = ss_fail(err, c->failed.status, "%s", c->failed.msg);
    c->failed = (ss_error){};
    return st;
}

/* Runs record() directly, then flushes what it left pending. */
static void run_direct(cuda_backend *c, void (*record)(void *), void *ctx) {
    record(ctx);
    cb_flush(c);
    cb_phases_flush(c);
}

/* ---- the joined ranks' streams (graph_join): a graph over every rank starts with a fork (their
 * streams wait for this one, which in a capture draws them into it) and ends with a join (this
 * stream waits for theirs); a launch is framed the same way, so that each rank's set_batch copy
 * comes before the graph and its next ops after. */

/* The joined ranks' streams wait for what this stream has queued so far. */
static bool fork_ranks(cuda_backend *c) {
    if (!c->n_joined) return true;
    bool ok = cb_check(c, cudaEventRecord(c->rank_sync, c->stream), "rank fork");
    for (int i = 0; ok && i < c->n_joined; i++)
        ok = cb_check(c, cudaStreamWaitEvent(c->joined[i]->stream, c->rank_sync, 0), "rank fork");
    return ok;
}

/* This stream waits for what the joined ranks have issued (their held-back ops first). */
static bool join_ranks(cuda_backend *c) {
    bool ok = true;
    for (int i = 0; ok && i < c->n_joined; i++) {
        cuda_backend *j = c->joined[i];
        cudaSetDevice(j->device);
        cb_flush(j);
        ok = cb_check(c, cudaEventRecord(j->rank_sync, cb_stream(j)), "rank join") &&
             cb_check(c, cudaStreamWaitEvent(c->stream, j->rank_sync, 0), "rank join");
    }
    cudaSetDevice(c->device);
    return ok;
}

static void set_capturing(cuda_backend *c, bool on) {
    c->capturing = on;
    for (int i = 0; i < c->n_joined; i++) {
        c->joined[i]->capturing = on;
        if (on) c->joined[i]->capture_spoiled = false;
    }
}

static bool capture_spoiled(cuda_backend *c) {
    bool spoiled = c->capture_spoiled || !cb_ok(c);
    for (int i = 0; i < c->n_joined; i++) spoiled |= c->joined[i]->capture_spoiled || !cb_ok(c->joined[i]);
    return spoiled;
}

/* Captures record() into g->exec; false when the capture had to be thrown away. */
static bool capture(cuda_backend *c, cb_graph *g, void (*record)(void *), void *ctx) {
    if (!cb_check(c, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal), "begin graph capture"))
        return false;
    c->capture_spoiled = false;
    set_capturing(c, true);
    if (fork_ranks(c)) {
        record(ctx);
        cb_flush(c);
        join_ranks(c);
    }
    set_capturing(c, false);
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(cb_stream(c), &graph);
    bool ok = e == cudaSuccess && graph && !capture_spoiled(c);
    if (ok) ok = cb_check(c, cudaGraphInstantiate(&g->exec, graph, 0), "instantiate graph");
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess) cudaGetLastError(); /* an invalidated capture is not a failure: run directly */
    return ok;
}

static ss_status cuda_run_graph(ss_backend *b, uint64_t key, void (*record)(void *), void *ctx, ss_error *err) {
    cuda_backend *c = cb_of(b);
    cb_flush(c);
    if (!cb_ok(c) || !c->graphs || c->capturing) {
        run_direct(c, record, ctx);
        return report(c, err);
    }
    /* The same forward captured with and without phases (a tracer wants the kernels one by one). */
    if (cb_persistent_now(c)) key ^= 0x9e3779b97f4a7c15ull;
    cb_graph *g = graph_slot(c, key);
    g->last_use = ++c->graph_clock;
    if (!g->warmed) {
        g->warmed = true; /* the first run loads modules and sizes scratch outside any capture */
        run_direct(c, record, ctx);
    } else if (!g->exec && (g->failed_captures >= MAX_FAILED_CAPTURES || !capture(c, g, record, ctx))) {
        g->failed_captures++;
        if (cb_ok(c)) run_direct(c, record, ctx);
    } else if (join_ranks(c) && cb_check(c, cudaGraphLaunch(g->exec, cb_stream(c)), "graph launch")) {
        fork_ranks(c);
    }
    return report(c, err);
}

/* A SPECSCOPE_CUDA_* switch: on unless set to 0. */
static bool env_on(const char *name) {
    const char *v = getenv(name);
    return !(v && strcmp(v, "0") == 0);
}

/* Ranks that share a device run at once, and a persistent kernel needs every SM of its device
 * resident for its grid barrier: two ranks' persistent kernels could each hold part of the device
 * and wait for the rest forever. Such ranks launch kernel by kernel (and may take warp teams). */
static void shared_devices_kernel_by_kernel(cuda_backend *const *ranks, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j && ranks[i]->device == ranks[j]->device && ranks[i]->persist) {
                ranks[i]->persist = false;
                ranks[i]->teams = env_on("SPECSCOPE_CUDA_TEAMS");
            }
}

static ss_status cuda_graph_join(ss_backend *b, ss_backend *const *others, int n, ss_error *err) {
    cuda_backend *c = cb_of(b);
    if (n < 0 || n > SS_MAX_TP - 1) return ss_fail(err, SS_EARG, "cuda backend: %d ranks to join (0..%d)", n, SS_MAX_TP - 1);
    for (int i = 0; i < n; i++)
        if (!others[i] || others[i]->ops != b->ops)
            return ss_fail(err, SS_EARG, "cuda backend: rank %d to join is not a CUDA backend", i + 1);
    cb_drop_graphs(c);
    for (int i = 0; i < n; i++) {
        c->joined[i] = (cuda_backend *)others[i]->impl;
        c->joined[i]->graph_owner = c;
    }
    c->n_joined = n;
    cuda_backend *ranks[SS_MAX_TP] = {c};
    for (int i = 0; i < n; i++) ranks[i + 1] = c->joined[i];
    shared_devices_kernel_by_kernel(ranks, n + 1);
    return SS_OK;
}

/* ---------------------------------------------------------------- scratch */

bool cb_reserve(cuda_backend *c, cb_scratch *s, size_t bytes, const char *what) {
    if (s->bytes >= bytes) return true;
    if (c->capturing) {
        c->capture_spoiled = true;
        return false;
    }
    if (!cb_ok(c)) return false;
    size_t want = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    cb_drop_graphs(c); /* they hold the old pointer */
    cudaStreamSynchronize(cb_stream(c)); /* and so may held-back phases: they run first */
    cudaFree(s->p);
    s->p = NULL;
    s->bytes = 0;
    ss_error err;
    if (device_alloc(want, what, &s->p, &err) != SS_OK) {
        cb_fail(c, err.status, "%s", err.msg);
        return false;
    }
    if (!cb_check(c, cudaMemsetAsync(s->p, 0, want, cb_stream(c)), what)) return false;
    s->bytes = want;
    return true;
}

/* ---------------------------------------------------------------- memory */

/* Memory calls change pointers that captured graphs hold. */
static void before_memory_call(cuda_backend *c) {
    cb_flush(c);
    cb_drop_graphs(c);
}

/* Copies count elements of a checkpoint dtype to the device as bf16, in stream order (the copies
 * return once the host data is staged). */
static ss_status copy_as_bf16(cuda_backend *c, void *dst, const void *src, ss_dtype dtype, size_t count,
                              const char *name, ss_error *err) {
    if (dtype == SS_BF16) {
        cudaError_t e = cudaMemcpyAsync(dst, src, count * 2, cudaMemcpyHostToDevice, cb_stream(c));
        return e == cudaSuccess ? SS_OK : device_error(err, e, name);
    }
    uint16_t *buf = (uint16_t *)malloc((count < CONVERT_CHUNK ? count : CONVERT_CHUNK) * sizeof *buf);
    if (!buf) return ss_fail(err, SS_ENOMEM, "cuda backend: out of host memory converting %s", name);
    ss_status st = SS_OK;
    for (size_t done = 0; done < count && st == SS_OK; done += CONVERT_CHUNK) {
        size_t part = count - done < CONVERT_CHUNK ? count - done : CONVERT_CHUNK;
        for (size_t i = 0; i < part; i++) {
            float f;
            if (dtype == SS_F32) {
                memcpy(&f, (const char *)src + 4 * (done + i), 4);
            } else {
                uint16_t h;
                memcpy(&h, (const char *)src + 2 * (done + i), 2);
                f = ss_f16_to_f32(h);
            }
            buf[i] = ss_f32_to_bf16(f);
        }
        cudaError_t e = cudaMemcpyAsync((uint16_t *)dst + done, buf, part * 2, cudaMemcpyHostToDevice, cb_stream(c));
        if (e != cudaSuccess) st = device_error(err, e, name);
    }
    free(buf);
    return st;
}

static ss_status new_weight(cuda_backend *c, const void *src, ss_dtype dtype, int64_t rows, int64_t cols,
                            const char *name, ss_weight *dst, ss_error *err) {
    before_memory_call(c);
    size_t count = (size_t)rows * (size_t)cols;
    void *d;
    ss_status st = device_alloc(count * 2, name, &d, err);
    if (st == SS_OK) st = copy_as_bf16(c, d, src, dtype, count, name, err);
    if (st != SS_OK) {
        cudaFree(d);
        return st;
    }
    *dst = (ss_weight){SS_BF16, (int)rows, (int)cols, d};
    return SS_OK;
}

static ss_status cuda_upload(ss_backend *b, const ss_tensor *src, ss_weight *dst, ss_error *err) {
    if (src->ndim < 1 || src->ndim > 2)
        return ss_fail(err, SS_EUNSUPPORTED, "cuda backend: tensor %s has %d dims, expected 1 or 2", src->name,
                       src->ndim);
    int64_t rows = src->ndim == 2 ? src->shape[0] : 1, cols = src->shape[src->ndim - 1];
    if (rows <= 0 || cols <= 0 || rows > INT32_MAX || cols > INT32_MAX)
        return ss_fail(err, SS_EUNSUPPORTED, "cuda backend: tensor %s has an unusable shape", src->name);
    return new_weight(cb_of(b), src->data, src->dtype, rows, cols, src->name, dst, err);
}

static ss_status cuda_upload_f32(ss_backend *b, const float *src, int rows, int cols, ss_weight *dst, ss_error *err) {
    char name[64];
    snprintf(name, sizeof name, "a %dx%d stacked weight", rows, cols);
    if (rows <= 0 || cols <= 0) return ss_fail(err, SS_EARG, "cuda backend: %s has no elements", name);
    return new_weight(cb_of(b), src, SS_F32, rows, cols, name, dst, err);
}

static void cuda_free_weight(ss_backend *b, ss_weight *w) {
    before_memory_call(cb_of(b));
    cudaFree((void *)w->data);
    *w = (ss_weight){};
}

static ss_status cuda_alloc(ss_backend *b, size_t bytes, void **out, ss_error *err) {
    cuda_backend *c = cb_of(b);
    before_memory_call(c);
    char name[64];
    snprintf(name, sizeof name, "a buffer of %.1f MiB", bytes / MIB);
    ss_status st = device_alloc(bytes, name, out, err);
    if (st != SS_OK) return st;
    cudaError_t e = cudaMemsetAsync(*out, 0, bytes ? bytes : 1, cb_stream(c));
    if (e != cudaSuccess) {
        cudaFree(*out);
        *out = NULL;
        return device_error(err, e, name);
    }
    return SS_OK;
}

static void cuda_free(ss_backend *b, void *p) {
    before_memory_call(cb_of(b));
    if (p) cudaFree(p);
}

/* Copies that need the host: never inside a capture. */
static bool host_copy_allowed(cuda_backend *c) {
    cb_flush(c);
    if (c->capturing) {
        c->capture_spoiled = true;
        return false;
    }
    return cb_ok(c);
}

static void cuda_to_host(ss_backend *b, void *dst, const void *src, size_t bytes) {
    cuda_backend *c = cb_of(b);
    if (!bytes || !host_copy_allowed(c)) return;
    if (cb_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cb_stream(c)), "copy to host"))
        cb_check(c, cudaStreamSynchronize(cb_stream(c)), "copy to host");
}

static void cuda_to_device(ss_backend *b, void *dst, const void *src, size_t bytes) {
    cuda_backend *c = cb_of(b);
    if (!bytes || !host_copy_allowed(c)) return;
    cb_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cb_stream(c)), "copy to device");
}

static size_t cuda_kv_bytes(ss_backend *b, int kv_dim) { return (size_t)kv_dim * 2; }

static void cuda_kv_read(ss_backend *b, float *dst, const void *cache, int len, int kv_dim) {
    cuda_backend *c = cb_of(b);
    size_t count = (size_t)len * (size_t)kv_dim;
    if (!count || !host_copy_allowed(c)) return;
    uint16_t *tmp = (uint16_t *)malloc(count * 2);
    if (!tmp) {
        cb_fail(c, SS_ENOMEM, "cuda backend: out of host memory reading %d KV positions", len);
        return;
    }
    if (cb_check(c, cudaMemcpyAsync(tmp, cache, count * 2, cudaMemcpyDeviceToHost, cb_stream(c)), "KV read") &&
        cb_check(c, cudaStreamSynchronize(cb_stream(c)), "KV read"))
        for (size_t i = 0; i < count; i++) dst[i] = ss_bf16_to_f32(tmp[i]);
    free(tmp);
}

static ss_status cuda_sync(ss_backend *b, ss_error *err) {
    cuda_backend *c = cb_of(b);
    cb_flush(c);
    if (c->capturing) cb_fail(c, SS_EARG, "cuda backend: sync() inside run_graph's record()");
    else cb_check(c, cudaStreamSynchronize(cb_stream(c)), "sync");
    return report(c, err);
}

/* ---------------------------------------------------------------- batch */

static bool grow_batch(cuda_backend *c, int n) {
    int cap = c->batch_cap;
    while (cap < n) cap *= 2;
    cb_drop_graphs(c);
    cudaStreamSynchronize(cb_stream(c));
    cudaFree(c->d_tokens);
    cudaFree(c->d_positions);
    cudaFreeHost(c->h_tokens);
    cudaFreeHost(c->h_positions);
    c->d_tokens = c->d_positions = c->h_tokens = c->h_positions = NULL;
    c->batch_cap = 0;
    size_t bytes = (size_t)cap * sizeof(int);
    if (!cb_check(c, cudaMalloc((void **)&c->d_tokens, bytes), "batch buffers") ||
        !cb_check(c, cudaMalloc((void **)&c->d_positions, bytes), "batch buffers") ||
        !cb_check(c, cudaMallocHost((void **)&c->h_tokens, bytes), "batch buffers") ||
        !cb_check(c, cudaMallocHost((void **)&c->h_positions, bytes), "batch buffers"))
        return false;
    c->batch_cap = cap;
    return true;
}

static void cuda_set_batch(ss_backend *b, const int *tokens, const int *positions, int n) {
    cuda_backend *c = cb_of(b);
    cb_flush(c); /* pending ops read the previous batch */
    c->n = 0;
    if (c->capturing) {
        cb_fail(c, SS_EARG, "cuda backend: set_batch() inside run_graph's record()");
        return;
    }
    if (!cb_ok(c)) return;
    if (n <= 0) {
        cb_fail(c, SS_EARG, "cuda backend: a batch of %d positions", n);
        return;
    }
    if (n > c->batch_cap && !grow_batch(c, n)) return;
    if (!cb_check(c, cudaEventSynchronize(c->batch_copied), "batch copy")) return;
    memcpy(c->h_tokens, tokens, (size_t)n * sizeof(int));
    memcpy(c->h_positions, positions, (size_t)n * sizeof(int));
    size_t bytes = (size_t)n * sizeof(int);
    if (cb_check(c, cudaMemcpyAsync(c->d_tokens, c->h_tokens, bytes, cudaMemcpyHostToDevice, cb_stream(c)), "batch copy") &&
        cb_check(c, cudaMemcpyAsync(c->d_positions, c->h_positions, bytes, cudaMemcpyHostToDevice, cb_stream(c)),
                 "batch copy") &&
        cb_check(c, cudaEventRecord(c->batch_copied, cb_stream(c)), "batch copy"))
        c->n = n;
}

/* ---------------------------------------------------------------- greedy ids */

static void cuda_argmax_rows(ss_backend *b, int *out_host, const float *logits, int rows, int vocab) {
    cuda_backend *c = cb_of(b);
    memset(out_host, 0, (size_t)(rows > 0 ? rows : 0) * sizeof *out_host);
    if (rows <= 0 || vocab <= 0 || !host_copy_allowed(c)) return;
    int *ids = cb_reserve_ids(c, rows);
    size_t bytes = (size_t)rows * sizeof(int);
    if (ids && cb_check(c, sk::argmax_rows(cb_launch(c), ids, logits, rows, vocab, c->ids.p), "argmax") &&
        cb_check(c, cudaMemcpyAsync(c->h_ids, ids, bytes, cudaMemcpyDeviceToHost, cb_stream(c)), "argmax ids") &&
        cb_check(c, cudaStreamSynchronize(cb_stream(c)), "argmax"))
        memcpy(out_host, c->h_ids, bytes);
}

/* ---------------------------------------------------------------- the stream, for NCCL */

static void *cuda_stream(ss_backend *b) {
    cuda_backend *c = cb_of(b);
    cb_flush(c); /* a held-back op (a GEMV waiting to fuse with the residual add) goes first */
    return cb_stream(c);
}

/* ---------------------------------------------------------------- lifetime */

static void cuda_destroy(ss_backend *b) {
    if (!b) return;
    cuda_backend *c = cb_of(b);
    if (c) {
        if (c->graph_owner) { /* the owner's graphs hold this rank's work: they go, and it stops joining */
            cb_drop_graphs(c->graph_owner);
            c->graph_owner->n_joined = 0;
        }
        c->pend.kind = PEND_NONE;
        if (c->phases) c->phases->count = 0; /* nothing will read what they would compute */
        if (c->stream) cudaStreamSynchronize(c->stream);
        for (int i = 0; i < CB_GRAPHS; i++)
            if (c->graphs_cache[i].exec) cudaGraphExecDestroy(c->graphs_cache[i].exec);
        cb_gemm_destroy(c);
        if (c->lt) cublasLtDestroy(c->lt);
        cudaFree(c->lt_workspace);
        cudaFree(c->barrier);
        free(c->phases);
        cb_scratch *scratch[] = {&c->act_bf16, &c->attn_partial, &c->attn_counters, &c->ids};
        for (size_t i = 0; i < sizeof scratch / sizeof *scratch; i++) cudaFree(scratch[i]->p);
        for (int i = 0; i < CB_ROPES; i++) cudaFree(c->ropes[i].device);
        cudaFreeHost(c->h_ids);
        cudaFree(c->d_tokens);
        cudaFree(c->d_positions);
        cudaFreeHost(c->h_tokens);
        cudaFreeHost(c->h_positions);
        if (c->batch_copied) cudaEventDestroy(c->batch_copied);
        if (c->rank_sync) cudaEventDestroy(c->rank_sync);
        if (c->stream) cudaStreamDestroy(c->stream);
        cudaGetLastError();
        free(c);
    }
    free(b);
}

static const ss_backend_ops cuda_ops = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .upload = cuda_upload,
    .upload_f32 = cuda_upload_f32,
    .free_weight = cuda_free_weight,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .to_host = cuda_to_host,
    .to_device = cuda_to_device,
    .sync = cuda_sync,
    .set_batch = cuda_set_batch,
    .embed = cuda_embed,
    .rmsnorm = cuda_rmsnorm,
    .matmul = cuda_matmul,
    .rope = cuda_rope,
    .kv_bytes = cuda_kv_bytes,
    .kv_store = cuda_kv_store,
    .attention = cuda_attention,
    .kv_read = cuda_kv_read,
    .add = cuda_add,
    .scale_add = cuda_scale_add,
    .silu_mul = cuda_silu_mul,
    .run_graph = cuda_run_graph,
    .argmax_rows = cuda_argmax_rows,
    .stream = cuda_stream,
    .sample_rows = cuda_sample_rows,
    .graph_join = cuda_graph_join,
};



static ss_status init(cuda_backend *c, int device, ss_error *err) {
    cudaError_t e;
    cudaDeviceProp prop;
    char which[32];
    snprintf(which, sizeof which, "device %d", device);
    int count = 0;
    if ((e = cudaGetDeviceCount(&count)) != cudaSuccess) return device_error(err, e, which);
    if (device < 0 || device >= count)
        return ss_fail(err, SS_EUNSUPPORTED, "cuda backend: device %d asked for, %d present", device, count);
    if ((e = cudaSetDevice(device)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess)
        return device_error(err, e, which);
    c->device = device;
    c->sms = prop.multiProcessorCount;
    c->smem_optin = prop.sharedMemPerBlockOptin;
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    /* PDL: +11% (1B) and +7% (8B) decode on the H200 with the pipelined GEMV (docs/cuda.md). */
    c->pdl = env_on("SPECSCOPE_CUDA_PDL");
    c->fuse = env_on("SPECSCOPE_CUDA_FUSE");
    c->graphs = env_on("SPECSCOPE_CUDA_GRAPHS");
    const char *persist = getenv("SPECSCOPE_CUDA_PERSISTENT"); /* opt-in: slower so far (kernels/persistent.cu) */
    c->persist = persist && strcmp(persist, "1") == 0;
    /* The persistent kernel's phases run a warp per unit; its backend's separate GEMVs (verification
     * batches) must sum in the same order, or greedy speculative decoding could leave plain greedy's
     * choices on a near tie. */
    c->teams = !c->persist && env_on("SPECSCOPE_CUDA_TEAMS");
    /* llama-3.1-8b decode +4% on the H200; llama-3.2-1b's shapes stay on the register kernel. */
    c->ring = env_on("SPECSCOPE_CUDA_RING");
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess)
        return device_error(err, e, "stream");
    if ((e = cudaEventCreateWithFlags(&c->batch_copied, cudaEventDisableTiming)) != cudaSuccess ||
        (e = cudaEventCreateWithFlags(&c->rank_sync, cudaEventDisableTiming)) != cudaSuccess)
        return device_error(err, e, "event");
    if (cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS)
        return ss_fail(err, SS_EDEVICE, "cuda backend: cuBLASLt did not start");
    ss_status st = device_alloc(LT_WORKSPACE, "the cuBLASLt workspace", &c->lt_workspace, err);
    if (st != SS_OK) return st;
    c->lt_workspace_bytes = LT_WORKSPACE;
    c->batch_cap = FIRST_BATCH_CAP / 2;
    if (!grow_batch(c, FIRST_BATCH_CAP) || (e = sk::setup_gemv(c->smem_optin)) != cudaSuccess ||
        (e = sk::setup_attention(c->smem_optin)) != cudaSuccess ||
        (e = sk::setup_persistent(c->smem_optin)) != cudaSuccess)
        return cb_ok(c) ? device_error(err, e, "kernel setup") : ss_fail(err, c->failed.status, "%s", c->failed.msg);
    if (c->persist) {
        c->phases = (sk::persistent_params *)calloc(1, sizeof *c->phases);
        if (!c->phases) return ss_fail(err, SS_ENOMEM, "cuda backend: out of host memory");
        if ((st = device_alloc(sizeof *c->barrier, "the grid barrier", (void **)&c->barrier, err)) != SS_OK) return st;
        if ((e = cudaMemset(c->barrier, 0, sizeof *c->barrier)) != cudaSuccess) return device_error(err, e, "grid barrier");
        c->phases->barrier = c->barrier;
    }
    return SS_OK;
}

extern "C" ss_status ss_backend_cuda_create(ss_backend **out, ss_error *err) {
    return ss_backend_cuda_create_on(0, out, err);
}

extern "C" ss_status ss_backend_cuda_create_on(int device, ss_backend **out, ss_error *err) {
    *out = NULL;
    ss_backend *b = (ss_backend *)calloc(1, sizeof *b);
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        return ss_fail(err, SS_ENOMEM, "cuda backend: out of host memory at start");
    }
    b->ops = &cuda_ops;
    b->impl = c;
    ss_status st = init(c, device, err);
    if (st != SS_OK) {
        cuda_destroy(b);
        return st;
    }
    *out = b;
    return SS_OK;
}

extern "C" int ss_backend_cuda_devices(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return count;
}

extern "C" bool ss_backend_cuda_available(char *why, size_t why_len) {
    char buf[400];
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    cudaDeviceProp prop;
    bool ok = false;
    if (e != cudaSuccess) {
        snprintf(buf, sizeof buf, "%s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
        cudaGetLastError();
    } else if (count <= 0) {
        snprintf(buf, sizeof buf, "no CUDA device");
    } else if ((e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) {
        snprintf(buf, sizeof buf, "device 0: %s", cudaGetErrorString(e));
        cudaGetLastError();
    } else if (prop.major < 9) {
        snprintf(buf, sizeof buf, "%.128s has compute capability %d.%d; this build needs 9.0 (sm_90) or newer", prop.name,
                 prop.major, prop.minor);
    } else {
        snprintf(buf, sizeof buf, "%.128s, %.0f GiB, compute capability %d.%d", prop.name,
                 prop.totalGlobalMem / (1024.0 * MIB), prop.major, prop.minor);
        ok = true;
    }
    if (why && why_len) snprintf(why, why_len, "%s", buf);
    return ok;
}
