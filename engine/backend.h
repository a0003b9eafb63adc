/* backend.h — the ops a compute backend implements (cpu/, cuda/).
 *
 * forward.c is written once against these ops. Every float* / void* handed to an op is backend
 * memory (host memory for the CPU, device memory for CUDA) obtained from alloc() or upload();
 * forward.c only does pointer arithmetic on them and never dereferences them. Token ids and
 * positions of the current batch are given once per forward with set_batch() (host arrays; the
 * backend mirrors them where it needs them) and the ops that need them read that copy.
 *
 * Shapes are row-major. A matrix weight W has rows = out features, cols = in features (the HF
 * Linear layout), and matmul computes out[n, rows] = x[n, cols] @ W^T (+ bias).
 */
#ifndef SPECSCOPE_BACKEND_H
#define SPECSCOPE_BACKEND_H

#include "specscope.h"
#include "safetensors.h"

typedef struct {
    ss_dtype dtype;
    int rows, cols;   /* vectors: rows = 1 */
    const void *data; /* backend memory; NULL: absent (an optional bias or norm) */
} ss_weight;

/* Rotary embedding table: inv_freq[head_dim / 2], already scaled (llama3 / linear). */
typedef struct {
    int head_dim;
    const float *inv_freq; /* host array, owned by the model */
} ss_rope;

typedef struct ss_backend ss_backend;

typedef struct {
    const char *name;
    void (*destroy)(ss_backend *b);

    /* Memory. upload() makes a weight usable by the backend from a checkpoint tensor (CPU: points
     * into the mmap, no copy; CUDA: a bf16 copy on the device). */
    ss_status (*upload)(ss_backend *b, const ss_tensor *src, ss_weight *dst, ss_error *err);
    /* A weight from host floats (the model builds stacked / folded weights this way). */
    ss_status (*upload_f32)(ss_backend *b, const float *src, int rows, int cols, ss_weight *dst,
                            ss_error *err);
    void (*free_weight)(ss_backend *b, ss_weight *w);
    ss_status (*alloc)(ss_backend *b, size_t bytes, void **out, ss_error *err); /* zero-filled */
    void (*free)(ss_backend *b, void *p); /* p may be NULL (teardown of a half-loaded model) */
    void (*to_host)(ss_backend *b, void *dst, const void *src, size_t bytes);
    void (*to_device)(ss_backend *b, void *dst, const void *src, size_t bytes);
    ss_status (*sync)(ss_backend *b, ss_error *err); /* waits for queued work; reports its errors */

    /* The batch of the next forward: n tokens at explicit positions. */
    void (*set_batch)(ss_backend *b, const int *tokens, const int *positions, int n);

    /* Compute. n = number of positions in the batch. */
    void (*embed)(ss_backend *b, float *x, const ss_weight *table, int n);
    /* rows independent vectors of size dim (per-head q/k norm: rows = n * heads, dim = head_dim).
     * w may be absent (NULL or data NULL): plain normalisation, no scale. out may equal x (the q/k
     * norms run in place). As in HF: out = w * (x * rsqrt(mean(x^2) + eps)). */
    void (*rmsnorm)(ss_backend *b, float *out, const float *x, const ss_weight *w, int rows, int dim,
                    float eps);
    /* bias: NULL when absent (forward.c never passes a bias whose data is NULL); out != x. */
    void (*matmul)(ss_backend *b, float *out, const float *x, const ss_weight *w, const ss_weight *bias,
                   int n);
    /* Rotates heads of x [n, heads, head_dim] in place at the batch positions (HF "rotate_half":
     * pairs (d, d + head_dim/2)); the angle is (float)pos * inv_freq[d] in fp32, as transformers. */
    void (*rope)(ss_backend *b, float *x, int n, int heads, const ss_rope *rope);
    /* KV cache: kv_bytes() per position of one layer's K (or V); the layout is the backend's. */
    size_t (*kv_bytes)(ss_backend *b, int kv_dim);
    void (*kv_store)(ss_backend *b, void *kcache, void *vcache, const float *k, const float *v, int n,
                     int kv_dim);
    /* out[n, heads*head_dim]: query i (at batch position p_i) attends to cache entries [0, p_i]
     * (kv_store of this batch comes first); scale 1/sqrt(head_dim), softmax in fp32; head h reads
     * kv head h / (heads / kv_heads). */
    void (*attention)(ss_backend *b, float *out, const float *q, const void *kcache, const void *vcache,
                      int n, int heads, int kv_heads, int head_dim);
    /* Cache entries [0, len) of one layer as host floats [len, kv_dim] (tests, calibration checks). */
    void (*kv_read)(ss_backend *b, float *dst, const void *cache, int len, int kv_dim);
    void (*add)(ss_backend *b, float *x, const float *y, size_t count);              /* x += y */
    /* x += a*y; y may equal x (forward.c zeroes a buffer with a = -1). */
    void (*scale_add)(ss_backend *b, float *x, float a, const float *y, size_t count);
    void (*silu_mul)(ss_backend *b, float *gate, const float *up, size_t count); /* gate = silu(gate)*up */

    /* ---- Optional ops: NULL where a backend has none (the CPU backend has none). ---- */

    /* Runs record(ctx), which issues the compute ops of one forward of a fixed shape (embed through
     * the last matmul; no to_host, sync, alloc or free inside), either by replaying a CUDA graph
     * cached under key or by capturing one (the first call with a new key runs directly, the second
     * captures, later ones replay). The ops read tokens and positions from the device buffers that
     * set_batch() fills, so call set_batch() first and one graph serves every step of that shape.
     * key must differ whenever the ops or their arguments differ: n, the rows of logits, the plan.
     * Memory calls (upload, alloc, free, free_weight) drop every cached graph. Returns what sync()
     * would report. */
    ss_status (*run_graph)(ss_backend *b, uint64_t key, void (*record)(void *ctx), void *ctx, ss_error *err);
    /* out_host[r] = ss_argmax of row r of logits (backend memory, [rows, vocab]): greedy decoding
     * copies ids back instead of logits. Waits for the result; a failure shows at the next sync(). */
    void (*argmax_rows)(ss_backend *b, int *out_host, const float *logits, int rows, int vocab);
    /* The queue the backend's ops run on (CUDA: its cudaStream_t), after issuing any op it holds back
     * for fusion, so that work queued there by others (NCCL's all-reduce, engine/tp.h) comes after
     * every op issued so far. */
    void *(*stream)(ss_backend *b);
    /* out_host[r] = the token ss_sample_with(s, row r, vocab, uniform[r]) draws from row r of logits
     * (backend memory, [rows, vocab]): temperature, top-k, top-p and min-p as sampler.c defines them
     * (the repetition penalty is not applied: it needs the history), the argmax at temperature 0.
     * uniform: host, one draw of the host's RNG per row, in [0, 1). Equal to the host's choice except
     * when u lies within rounding distance (~1e-6 of the row's mass) of a boundary of the inverse CDF
     * or of a top-p / min-p cut. Waits for the result; a failure shows at the next sync(). */
    void (*sample_rows)(ss_backend *b, int *out_host, const float *logits, int rows, int vocab, const ss_sampling *s,
                        const double *uniform);
    /* The other tensor-parallel ranks' backends (n of them, of b's kind): run_graph on b then captures
     * and replays what record() issues on them too, one graph over every rank, and their memory
     * calls drop b's graphs. Call once, before any run_graph. */
    ss_status (*graph_join)(ss_backend *b, ss_backend *const *others, int n, ss_error *err);
} ss_backend_ops;

struct ss_backend {
    const ss_backend_ops *ops;
    void *impl;
};

ss_status ss_backend_cpu_create(ss_backend **out, ss_error *err);
/* SS_EUNSUPPORTED when built without CUDA or when no device / driver is present. */
ss_status ss_backend_cuda_create(ss_backend **out, ss_error *err);
/* The same on device `device` (tensor-parallel ranks); SS_EUNSUPPORTED when there is no such device. */
ss_status ss_backend_cuda_create_on(int device, ss_backend **out, ss_error *err);
bool ss_backend_cuda_available(char *why, size_t why_len);
/* CUDA devices present (0 without CUDA, a driver or a device): how many ranks --tp can have. */
int ss_backend_cuda_devices(void);

#endif
