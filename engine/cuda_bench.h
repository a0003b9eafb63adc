/* cuda_bench.h — the hardware ceilings that `specscope bench --backend cuda` and
 * scripts/gpu-check.sh report speeds against, measured on device 0 in the same run
 * (engine/cuda/ceilings.cu). Every rate is the median of many timed repetitions (CUDA events) after
 * a warm-up, on random data. Builds without CUDA get stubs that answer SS_EUNSUPPORTED. */
#ifndef SPECSCOPE_CUDA_BENCH_H
#define SPECSCOPE_CUDA_BENCH_H

#include "specscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weight bytes per second of batch-1 matrix-vector products (the streaming rate of a decode step). */
typedef struct {
    double gemv;       /* the backend's GEMV kernel */
    double single_cold; /* one launch alone, its weights not in L2 (0: not measured, a weight over 1 GB) */
    double single_l2;   /* one launch alone, its weights read just before (in L2 as far as it holds them) */
    double persistent; /* the same launches as phases of the persistent kernel (0: it does not take them) */
    double cublas; /* cuBLASLt, n = 1, the same layout (two products for gate/up) */
} ss_gemv_rates;

#ifdef SPECSCOPE_HAVE_CUDA

/* Device-to-device copy of a 4 GiB buffer (far beyond L2); bytes read + bytes written per second. */
ss_status ss_cuda_copy_bandwidth(double *bytes_per_s, ss_error *err);

/* cuBLASLt GEMM with bf16 operands, fp32 accumulation and bf16 output: m tokens times a [n, k]
 * weight (the prefill's shape: m = prompt tokens, n = output features, k = input features).
 * 2*m*n*k FLOPs per second. */
ss_status ss_cuda_gemm_rate(int m, int n, int k, double *flops_per_s, ss_error *err);

/* Batch-1 GEMV over a bf16 [rows, cols] weight (glu: a gate and an up weight in one launch, with
 * the SiLU epilogue), launched back to back over enough weight copies to defeat L2. */
ss_status ss_cuda_gemv_rate(int rows, int cols, bool glu, ss_gemv_rates *out, ss_error *err);

/* Seconds per kernel boundary: back-to-back launches of an empty kernel with PDL (the floor under
 * every kernel of a decode step), replayed from a CUDA graph as a decode step is, and launched one
 * by one from the host (where the host's launch rate may be what is measured). */
ss_status ss_cuda_boundary_time(double *in_graph, double *one_by_one, ss_error *err);

/* Seconds per attention launch of `queries` queries at the newest positions of a context (random
 * bf16 cache; causal), back to back in a CUDA graph, with the kernel the backend picks: 1 query is
 * the attention of a decode step, context queries over context keys that of a prefill. */
ss_status ss_cuda_attention_time(int heads, int kv_heads, int head_dim, int queries, int context, double *seconds,
                                 ss_error *err);

#else

static inline ss_status ss_cuda_copy_bandwidth(double *bytes_per_s, ss_error *err) {
    *bytes_per_s = 0;
    return ss_fail(err, SS_EUNSUPPORTED, "copy bandwidth: built without CUDA");
}

static inline ss_status ss_cuda_gemm_rate(int m, int n, int k, double *flops_per_s, ss_error *err) {
    (void)m, (void)n, (void)k;
    *flops_per_s = 0;
    return ss_fail(err, SS_EUNSUPPORTED, "GEMM rate: built without CUDA");
}

static inline ss_status ss_cuda_gemv_rate(int rows, int cols, bool glu, ss_gemv_rates *out, ss_error *err) {
    (void)rows, (void)cols, (void)glu;
    *out = (ss_gemv_rates){0};
    return ss_fail(err, SS_EUNSUPPORTED, "GEMV rate: built without CUDA");
}

static inline ss_status ss_cuda_boundary_time(double *in_graph, double *one_by_one, ss_error *err) {
    *in_graph = *one_by_one = 0;
    return ss_fail(err, SS_EUNSUPPORTED, "kernel boundary: built without CUDA");
}

static inline ss_status ss_cuda_attention_time(int heads, int kv_heads, int head_dim, int queries, int context,
                                               double *seconds, ss_error *err) {
    (void)heads, (void)kv_heads, (void)head_dim, (void)queries, (void)context;
    *seconds = 0;
    return ss_fail(err, SS_EUNSUPPORTED, "attention time: built without CUDA");
}

#endif

#ifdef __cplusplus
}
#endif

#endif
