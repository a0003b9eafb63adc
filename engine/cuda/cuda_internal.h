/* cuda_internal.h — the CUDA backend's state, shared by its files: backend_cuda.cu (memory, batch,
 * graphs, lifetime), cuda_ops.cu (the compute ops and their fusion), cuda_matmul.cu (cuBLASLt). */
#ifndef SPECSCOPE_CUDA_INTERNAL_H
#define SPECSCOPE_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}
#include "kernels.cuh"

/* cuBLASLt plans cached per GEMM shape. */
#define CB_GEMM_PLANS 64
/* Captured forwards cached per key. */
#define CB_GRAPHS 64
/* Rotary tables cached per ss_rope. */
#define CB_ROPES 4
/* GEMV occupancy answers cached per (kind, cols, nvec). */
#define CB_OCCUPANCY 32

typedef struct {
    int m, n, k;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulAlgo_t algo;
    bool valid;
} cb_gemm_plan;

typedef struct {
    uint64_t key;
    bool warmed;          /* ran once directly (module loads, scratch sizes, cuBLAS plans) */
    cudaGraphExec_t exec; /* NULL until captured */
    int failed_captures;
    uint64_t last_use;
} cb_graph;

typedef struct {
    const float *host; /* the model's table (identity) ... */
    float values[SK_PREP_MAX_HEAD_DIM / 2]; /* ... and its values when uploaded */
    int head_dim;
    float *device;
} cb_rope;

/* A device buffer that grows on demand (outside graph capture). */
typedef struct {
    void *p;
    size_t bytes;
} cb_scratch;

/* The op waiting to be fused with the ones that follow (cuda_ops.cu). */
typedef enum { PEND_NONE = 0, PEND_NORM, PEND_ADD, PEND_GEMV, PEND_PREP } cb_pending_kind;

typedef struct {
    cb_pending_kind kind;
    struct { /* PEND_NORM */
        float *out, *x;
        const uint16_t *w;
        int rows, dim;
        float eps;
    } norm;
    struct { /* PEND_ADD */
        float *x;
        const float *y;
        size_t count;
    } add;
    sk::gemv_params gemv; /* PEND_GEMV */
    sk::prep_params prep; /* PEND_PREP */
} cb_pending;

typedef struct cuda_backend_s {
    int device, sms;
    size_t smem_optin;
    char name[256];
    cudaStream_t stream;
    bool pdl, fuse, graphs, persist; /* SPECSCOPE_CUDA_PDL / _FUSE / _GRAPHS / _PERSISTENT = 0 turn each off */
    bool ring;  /* one-vector GEMVs of the ring kernel's shapes through it (SPECSCOPE_CUDA_RING = 0 turns it off) */
    bool teams; /* GEMV warp teams (SPECSCOPE_CUDA_TEAMS = 0 turns them off; never with the persistent kernel) */

    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_bytes;
    cb_gemm_plan plans[CB_GEMM_PLANS];
    int next_plan;

    /* The batch: fixed device buffers that every forward's kernels read (graph replays too). */
    int *d_tokens, *d_positions;
    int *h_tokens, *h_positions; /* pinned staging */
    int batch_cap, n;
    cudaEvent_t batch_copied; /* the staging may be rewritten once this has passed */

    cb_scratch act_bf16;     /* activations converted for cuBLAS ... */
    const float *act_src;    /* ... from these fp32 activations (count act_count), */
    size_t act_count;
    uint64_t act_seq;        /* by the op numbered act_seq (cuda_matmul.cu reuses it) */
    uint64_t op_seq;         /* ops begun so far (cb_of counts them) */
    cb_scratch attn_partial; /* split-KV partial results */
    cb_scratch attn_counters;
    cb_scratch ids; /* argmax_rows results */
    int *h_ids;     /* pinned, ids.bytes */

    cb_rope ropes[CB_ROPES];
    struct {
        int kind, cols, nvec, blocks;
    } occupancy[CB_OCCUPANCY];
    int n_occupancy;

    cb_pending pend;

    /* Launches held back as phases of one persistent kernel (cuda_ops.cu, kernels/persistent.cu),
     * launched together by cb_phases_flush before anything else reaches the stream. */
    sk::persistent_params *phases; /* host, count phases so far */
    size_t phase_smem;              /* their largest dynamic shared memory */
    unsigned long long *barrier;    /* device, the grid barrier's arrival count */
    size_t occ_smem;                /* persistent_blocks_per_sm's last answer, for this smem */
    int occ_blocks;


    cb_graph graphs_cache[CB_GRAPHS];
    uint64_t graph_clock;
    /* Tensor-parallel ranks (graph_join): the backends whose work this one's graphs hold, and for
     * such a backend the one holding it. rank_sync orders the streams around captures and launches. */
    cuda_backend_s *joined[SS_MAX_TP - 1];
    int n_joined;
    cuda_backend_s *graph_owner;
    cudaEvent_t rank_sync;
    bool capturing;      /* inside run_graph's stream capture */
    bool capture_spoiled; /* an op could not be captured: the capture is thrown away */

    /* The first failure of a void op; reported by sync(). Ops do nothing while it is set. */
    ss_error failed;
} cuda_backend;

/* Every op starts here (and is counted: the bf16 copy of a matmul's input is reused by the matmul
 * right after it only). With backends on several devices (tensor-parallel ranks driven by one
 * thread), the op's device is made current first. The current device is asked each time, not
 * remembered between ops: calls outside the backend (NCCL's) may change it, and a stale memory of
 * it would send a rank's allocations and launches to the wrong GPU. */
static inline cuda_backend *cb_of(ss_backend *b) {
    cuda_backend *c = (cuda_backend *)b->impl;
    c->op_seq++;
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != c->device) cudaSetDevice(c->device);
    return c;
}

/* cuda_ops.cu: launches the held-back phases, if any; whether launches become phases now. */
void cb_phases_flush(cuda_backend *c);
bool cb_persistent_now(cuda_backend *c);

/* The stream, for anything put on it other than a phase: the held-back phases go first. */
static inline cudaStream_t cb_stream(cuda_backend *c) {
    if (c->phases && c->phases->count) cb_phases_flush(c);
    return c->stream;
}

static inline sk::launch_ctx cb_launch(cuda_backend *c) {
    sk::launch_ctx l;
    l.stream = cb_stream(c);
    l.pdl = c->pdl;
    l.sms = c->sms;
    l.smem_optin = c->smem_optin;
    return l;
}

/* backend_cuda.cu */
bool cb_ok(cuda_backend *c);
/* Records the first failure of a void op (what: the op and its shape). Returns false on error. */
bool cb_check(cuda_backend *c, cudaError_t e, const char *what);
void cb_fail(cuda_backend *c, ss_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Makes s at least bytes long; false when it cannot now (inside a capture: the capture is spoiled,
 * and run_graph runs the forward directly) or on failure (recorded). */
bool cb_reserve(cuda_backend *c, cb_scratch *s, size_t bytes, const char *what);
/* Drops every captured graph (they hold pointers that are about to change). */
void cb_drop_graphs(cuda_backend *c);

/* cuda_ops.cu: the compute ops of the vtable, and the flush of the pending fused op. */
void cb_flush(cuda_backend *c);
void cuda_embed(ss_backend *b, float *x, const ss_weight *table, int n);
void cuda_rmsnorm(ss_backend *b, float *out, const float *x, const ss_weight *w, int rows, int dim, float eps);
void cuda_matmul(ss_backend *b, float *out, const float *x, const ss_weight *w, const ss_weight *bias, int n);
void cuda_rope(ss_backend *b, float *x, int n, int heads, const ss_rope *rope);
void cuda_kv_store(ss_backend *b, void *kcache, void *vcache, const float *k, const float *v, int n, int kv_dim);
void cuda_attention(ss_backend *b, float *out, const float *q, const void *kcache, const void *vcache, int n, int heads,
                    int kv_heads, int head_dim);
void cuda_add(ss_backend *b, float *x, const float *y, size_t count);
void cuda_scale_add(ss_backend *b, float *x, float a, const float *y, size_t count);
void cuda_silu_mul(ss_backend *b, float *gate, const float *up, size_t count);

/* cuda_matmul.cu: out[n, rows] = x @ W^T (+ bias) through cuBLASLt (bf16 x, fp32 out). */
void cb_gemm(cuda_backend *c, float *out, const float *x, const ss_weight *w, const ss_weight *bias, int n);
void cb_gemm_destroy(cuda_backend *c);
/* For a kernel about to write x (count floats, rows rows): where it may also write x as bf16, for
 * the cuBLASLt matmul that reads x next to use instead of converting; NULL when no matmul of that
 * kind follows (rows within a GEMV batch) or the scratch cannot grow now. */
uint16_t *cb_bf16_side(cuda_backend *c, const float *x, size_t count, int rows);

/* cuda_sampling.cu: the sample_rows op (temperature, top-k, top-p, min-p on the device), and
 * c->ids: the scratch argmax_rows and sample_rows share (at c->ids.p) followed by room for rows ids
 * (returned; NULL on failure, recorded, or inside a capture), with c->h_ids a pinned copy's room. */
int *cb_reserve_ids(cuda_backend *c, int rows);
void cuda_sample_rows(ss_backend *b, int *out_host, const float *logits, int rows, int vocab, const ss_sampling *s,
                      const double *uniform);

#endif
