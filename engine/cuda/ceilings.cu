/* ceilings.cu — the hardware ceilings of cuda_bench.h: device-to-device copy bandwidth, the
 * cuBLASLt bf16 GEMM rate, and the batch-1 GEMV against cuBLASLt. Each measurement owns its
 * buffers and stream, fills its inputs with random bits on the device (never zeros: they run
 * faster than real data), warms up, then takes the median of REPS event-timed repetitions. */
#include <stdlib.h>
#include <string.h>
#include <memory>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "common.cuh"
#include "cuda_bench.h"
#include "kernels.cuh"

#define WARMUP 3
#define REPS 21
#define COPY_BYTES ((size_t)4 << 30)
#define GEMV_ROTATION_BYTES ((size_t)1 << 30) /* weight copies cycled through, many times the L2 */
#define LT_WORKSPACE ((size_t)32 << 20)

namespace {

__device__ __forceinline__ uint32_t mix(uint64_t i, uint32_t seed) {
    uint32_t x = (uint32_t)i ^ (uint32_t)(i >> 32) * 0x9e3779b9u ^ seed;
    x ^= x >> 16, x *= 0x7feb352du, x ^= x >> 15, x *= 0x846ca68bu, x ^= x >> 16;
    return x;
}

__global__ void fill_words(uint32_t *p, size_t n, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = mix(i, seed);
}

/* Uniform in [-1, 1), as bf16 or fp32. */
__global__ void fill_uniform(uint16_t *bf, float *f, size_t n, uint32_t seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float u = (float)(mix(i, seed) >> 8) * (1.0f / 8388608.0f) - 1.0f;
        if (bf) bf[i] = sk::f32_to_bf16(u);
        if (f) f[i] = u;
    }
}

/* Reads n 16-byte words (to bring them into L2); writes only on an impossible value, so the loads stay. */
__global__ void read_words(const uint4 *p, size_t n, uint32_t *sink) {
    uint32_t x = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const uint4 v = __ldcg(p + i);
        x ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (x == 0x9e3779b9u && sink) *sink = x;
}

/* Buffers, stream, events and cuBLASLt objects of one measurement, released together. */
struct bench {
    cudaStream_t stream = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    void *buf[4] = {};
    cublasLtHandle_t lt = nullptr;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    ~bench() {
        if (stream) cudaStreamSynchronize(stream);
        for (void *p : buf) cudaFree(p);
        if (desc) cublasLtMatmulDescDestroy(desc);
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (d) cublasLtMatrixLayoutDestroy(d);
        if (lt) cublasLtDestroy(lt);
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
        if (stream) cudaStreamDestroy(stream);
        cudaGetLastError();
    }
};

ss_status cuda_fail(ss_error *err, const char *what, cudaError_t e) {
    cudaGetLastError();
    if (e == cudaErrorMemoryAllocation) {
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        return ss_fail(err, SS_ENOMEM, "out of GPU memory: %s (%.1f MiB free of %.1f MiB)", what,
                       free_bytes / 1048576.0, total / 1048576.0);
    }
    return ss_fail(err, SS_EDEVICE, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

ss_status start(bench &bn, const char *what, ss_error *err) {
    cudaError_t e;
    if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaStreamCreateWithFlags(&bn.stream, cudaStreamNonBlocking)) ||
        (e = cudaEventCreate(&bn.start)) || (e = cudaEventCreate(&bn.stop)))
        return cuda_fail(err, what, e);
    return SS_OK;
}

ss_status alloc(bench &bn, int slot, size_t bytes, const char *what, ss_error *err) {
    cudaError_t e = cudaMalloc(&bn.buf[slot], bytes);
    return e == cudaSuccess ? SS_OK : cuda_fail(err, what, e);
}

unsigned fill_grid(size_t n) { return (unsigned)(n / 256 < 4096 ? n / 256 + 1 : 4096); }

int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median seconds of run() (which returns a cudaError_t), after WARMUP untimed runs. */
template <typename F>
ss_status median_seconds(bench &bn, F run, const char *what, double *seconds, ss_error *err) {
    double t[REPS];
    cudaError_t e = cudaSuccess;
    for (int r = 0; r < WARMUP && e == cudaSuccess; r++) e = run();
    for (int r = 0; r < REPS && e == cudaSuccess; r++) {
        float ms = 0;
        if ((e = cudaEventRecord(bn.start, bn.stream)) || (e = run()) || (e = cudaEventRecord(bn.stop, bn.stream)) ||
            (e = cudaEventSynchronize(bn.stop)) || (e = cudaEventElapsedTime(&ms, bn.start, bn.stop)))
            break;
        t[r] = ms / 1e3;
    }
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess) return cuda_fail(err, what, e);
    qsort(t, REPS, sizeof *t, cmp_double);
    *seconds = t[REPS / 2];
    return SS_OK;
}

/* out[m, n] (column-major n x m, ld n) = x[m, k] @ W[n, k]^T: the backend's TN layout. */
ss_status lt_plan(bench &bn, int m, int n, int k, cudaDataType out_type, cublasLtMatmulAlgo_t *algo, ss_error *err) {
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulHeuristicResult_t result = {};
    int found = 0;
    uint64_t workspace = LT_WORKSPACE;
    bool ok = cublasLtCreate(&bn.lt) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescCreate(&bn.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(bn.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(bn.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&bn.a, CUDA_R_16BF, k, n, k) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&bn.b, CUDA_R_16BF, k, m, k) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&bn.d, out_type, n, m, n) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                   sizeof workspace) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulAlgoGetHeuristic(bn.lt, bn.desc, bn.a, bn.b, bn.d, bn.d, pref, 1, &result, &found) ==
                  CUBLAS_STATUS_SUCCESS &&
              found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (!ok) return ss_fail(err, SS_EDEVICE, "cuBLASLt: no bf16 algorithm for %d x %d by %d", n, k, m);
    *algo = result.algo;
    return SS_OK;
}

} // namespace

extern "C" ss_status ss_cuda_copy_bandwidth(double *bytes_per_s, ss_error *err) {
    *bytes_per_s = 0;
    bench bn;
    const char *what = "copy bandwidth: two 4 GiB buffers";
    ss_status st;
    if ((st = start(bn, what, err)) || (st = alloc(bn, 0, COPY_BYTES, what, err)) ||
        (st = alloc(bn, 1, COPY_BYTES, what, err)))
        return st;
    const size_t words = COPY_BYTES / 4;
    fill_words<<<fill_grid(words), 256, 0, bn.stream>>>((uint32_t *)bn.buf[0], words, 12345u);
    double s = 0;
    st = median_seconds(
        bn, [&] { return cudaMemcpyAsync(bn.buf[1], bn.buf[0], COPY_BYTES, cudaMemcpyDeviceToDevice, bn.stream); }, what,
        &s, err);
    if (st == SS_OK) *bytes_per_s = 2.0 * (double)COPY_BYTES / s;
    return st;
}

extern "C" ss_status ss_cuda_gemm_rate(int m, int n, int k, double *flops_per_s, ss_error *err) {
    *flops_per_s = 0;
    if (m <= 0 || n <= 0 || k <= 0) return ss_fail(err, SS_EARG, "GEMM rate: shape %d x %d by %d", n, k, m);
    bench bn;
    const char *what = "GEMM rate";
    ss_status st;
    const size_t w = (size_t)n * k, x = (size_t)m * k, out = (size_t)m * n;
    if ((st = start(bn, what, err)) || (st = alloc(bn, 0, w * 2, what, err)) || (st = alloc(bn, 1, x * 2, what, err)) ||
        (st = alloc(bn, 2, out * 2, what, err)) || (st = alloc(bn, 3, LT_WORKSPACE, what, err)))
        return st;
    fill_uniform<<<fill_grid(w), 256, 0, bn.stream>>>((uint16_t *)bn.buf[0], nullptr, w, 1u);
    fill_uniform<<<fill_grid(x), 256, 0, bn.stream>>>((uint16_t *)bn.buf[1], nullptr, x, 2u);
    cublasLtMatmulAlgo_t algo;
    if ((st = lt_plan(bn, m, n, k, CUDA_R_16BF, &algo, err))) return st;
    const float alpha = 1.0f, beta = 0.0f;
    double s = 0;
    st = median_seconds(
        bn,
        [&] {
            cublasStatus_t r = cublasLtMatmul(bn.lt, bn.desc, &alpha, bn.buf[0], bn.a, bn.buf[1], bn.b, &beta, bn.buf[2],
                                              bn.d, bn.buf[2], bn.d, &algo, bn.buf[3], LT_WORKSPACE, bn.stream);
            return r == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorUnknown;
        },
        what, &s, err);
    if (st == SS_OK) *flops_per_s = 2.0 * m * (double)n * k / s;
    return st;
}

extern "C" ss_status ss_cuda_gemv_rate(int rows, int cols, bool glu, ss_gemv_rates *out, ss_error *err) {
    memset(out, 0, sizeof *out);
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) return cuda_fail(err, "GEMV rate", e);
    if (rows <= 0 || !sk::gemv_supported(cols, 1, prop.sharedMemPerBlockOptin))
        return ss_fail(err, SS_EARG, "GEMV rate: %d x %d is not a shape the GEMV takes", rows, cols);
    bench bn;
    const char *what = "GEMV rate";
    const int nw = glu ? 2 : 1;                          /* weights per launch: gate and up */
    const size_t mat = (size_t)rows * cols, wbytes = mat * 2 * nw; /* bytes one launch reads */
    int copies = (int)((GEMV_ROTATION_BYTES + wbytes - 1) / wbytes);
    copies = copies < 1 ? 1 : copies > 256 ? 256 : copies;
    ss_status st;
    if ((st = start(bn, what, err)) || (st = alloc(bn, 0, wbytes * copies, what, err)) ||
        (st = alloc(bn, 1, (size_t)cols * 6, what, err)) || (st = alloc(bn, 2, (size_t)rows * 4 * 2 + 64, what, err)) ||
        (st = alloc(bn, 3, LT_WORKSPACE, what, err)))
        return st;
    const size_t welems = mat * nw * copies;
    float *x = (float *)bn.buf[1], *y = (float *)bn.buf[2];
    uint16_t *xb = (uint16_t *)(x + cols);
    fill_uniform<<<fill_grid(welems), 256, 0, bn.stream>>>((uint16_t *)bn.buf[0], nullptr, welems, 3u);
    fill_uniform<<<fill_grid(cols), 256, 0, bn.stream>>>(xb, x, cols, 4u);
    if ((e = sk::setup_gemv(prop.sharedMemPerBlockOptin)) != cudaSuccess ||
        (e = sk::setup_persistent(prop.sharedMemPerBlockOptin)) != cudaSuccess)
        return cuda_fail(err, what, e);

    sk::launch_ctx l = {bn.stream, true, prop.multiProcessorCount, prop.sharedMemPerBlockOptin};
    const int per_sm = sk::gemv_occupancy(glu ? sk::GEMV_GLU : sk::GEMV_ROWS, cols, 1);
    const uint16_t *w0 = (const uint16_t *)bn.buf[0];
    /* Matrix j of copy i (gate, up of a copy side by side). */
    auto weight = [&](int i, int j) { return w0 + ((size_t)i * nw + j) * mat; };
    auto launch_of = [&](int i) {
        sk::gemv_params p = {};
        p.x = x, p.cols = cols, p.nvec = 1, p.nseg = nw, p.glu = glu;
        for (int j = 0; j < nw; j++) p.seg[j] = sk::gemv_seg{weight(i, j), nullptr, y + (size_t)j * rows, rows, 0, nullptr};
        return p;
    };
    double s = 0;
    st = median_seconds(
        bn,
        [&] {
            cudaError_t r = cudaSuccess;
            for (int i = 0; i < copies && r == cudaSuccess; i++) r = sk::gemv(l, launch_of(i), per_sm, true);
            return r;
        },
        what, &s, err);
    if (st) return st;
    out->gemv = (double)wbytes * copies / s;

    /* One launch alone, after reading its own weights (so they sit in L2 as far as it holds them:
     * what the L2 prefetch during attention gives the launch after it, cuda_ops.cu) or, cold, after
     * reading up to 256 MB of the other copies. */
    auto single = [&](bool warm, double *rate) {
        double t[REPS];
        const size_t others = (size_t)(copies - 1) * wbytes, cold = others < ((size_t)256 << 20) ? others : (size_t)256 << 20;
        for (int r = 0; r < REPS; r++) {
            float ms = 0;
            read_words<<<4 * prop.multiProcessorCount, 256, 0, bn.stream>>>(
                (const uint4 *)(warm ? weight(0, 0) : weight(1, 0)), (warm ? wbytes : cold) / 16, nullptr);
            if ((e = cudaEventRecord(bn.start, bn.stream)) || (e = sk::gemv(l, launch_of(0), per_sm, true)) ||
                (e = cudaEventRecord(bn.stop, bn.stream)) || (e = cudaEventSynchronize(bn.stop)) ||
                (e = cudaEventElapsedTime(&ms, bn.start, bn.stop)))
                return cuda_fail(err, what, e);
            t[r] = ms / 1e3;
        }
        qsort(t, REPS, sizeof *t, cmp_double);
        *rate = (double)wbytes / t[REPS / 2];
        return SS_OK;
    };
    if ((st = single(true, &out->single_l2)) || (copies > 1 && (st = single(false, &out->single_cold)))) return st;

    /* The same launches as the phases of persistent kernels (kernels/persistent.cu), a grid barrier
     * between phases: the streaming rate of the bulk-copy rings across phase boundaries. */
    if (sk::persistent_takes(launch_of(0), prop.sharedMemPerBlockOptin)) {
        std::unique_ptr<sk::persistent_params> pp(new sk::persistent_params());
        pp->barrier = (unsigned long long *)((char *)y + (size_t)rows * 4 * 2);
        cudaMemsetAsync(pp->barrier, 0, sizeof *pp->barrier, bn.stream);
        const size_t xbytes = sk::persistent_smem_of(cols);
        const int blocks = prop.multiProcessorCount * sk::persistent_blocks_per_sm(sk::persistent_smem(xbytes, l.smem_optin));
        st = median_seconds(
            bn,
            [&] {
                cudaError_t r = cudaSuccess;
                for (int i = 0; i < copies && r == cudaSuccess; i += SK_PERSIST_MAX_PHASES) {
                    pp->count = copies - i < SK_PERSIST_MAX_PHASES ? copies - i : SK_PERSIST_MAX_PHASES;
                    for (int k = 0; k < pp->count; k++) {
                        pp->ph[k].kind = glu ? sk::GEMV_GLU : sk::GEMV_ROWS;
                        pp->ph[k].gemv = launch_of(i + k);
                    }
                    r = sk::persistent(l, *pp, xbytes, blocks);
                }
                return r;
            },
            what, &s, err);
        if (st) return st;
        out->persistent = (double)wbytes * copies / s;

    }

    cublasLtMatmulAlgo_t algo;
    if ((st = lt_plan(bn, 1, rows, cols, CUDA_R_32F, &algo, err))) return st;
    const float alpha = 1.0f, beta = 0.0f;
    st = median_seconds(
        bn,
        [&] {
            for (int i = 0; i < copies; i++)
                for (int j = 0; j < nw; j++)
                    if (cublasLtMatmul(bn.lt, bn.desc, &alpha, weight(i, j), bn.a, xb, bn.b, &beta, y, bn.d, y, bn.d,
                                       &algo, bn.buf[3], LT_WORKSPACE, bn.stream) != CUBLAS_STATUS_SUCCESS)
                        return cudaErrorUnknown;
            return cudaSuccess;
        },
        what, &s, err);
    if (st == SS_OK) out->cublas = (double)wbytes * copies / s;
    return st;
}

namespace {

/* An empty kernel that keeps the PDL protocol: the cost of one kernel boundary. */
__global__ void empty_kernel() {
    sk::pdl_launch_dependents();
    sk::pdl_wait();
}

#define CHAIN 64 /* launches per timed repetition: one launch is below the timer's resolution */

/* Median seconds of one launch(), timed over CHAIN back-to-back launches: captured in one CUDA
 * graph and replayed (in_graph, as the backend replays a decode step, so the host's launch cost
 * is not in it) or issued one by one from the host. */
template <typename F>
ss_status chain_seconds(bench &bn, F launch, bool in_graph, const char *what, double *seconds, ss_error *err) {
    auto chain = [&] {
        cudaError_t r = cudaSuccess;
        for (int i = 0; i < CHAIN && r == cudaSuccess; i++) r = launch();
        return r;
    };
    double s = 0;
    ss_status st;
    if (!in_graph) {
        st = median_seconds(bn, chain, what, &s, err);
    } else {
        cudaGraph_t graph = nullptr;
        cudaGraphExec_t exec = nullptr;
        cudaError_t e = cudaStreamBeginCapture(bn.stream, cudaStreamCaptureModeThreadLocal);
        if (e == cudaSuccess) {
            e = chain();
            cudaError_t ended = cudaStreamEndCapture(bn.stream, &graph); /* ends it even after a failed launch */
            if (e == cudaSuccess) e = ended;
        }
        if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
        st = e == cudaSuccess ? median_seconds(bn, [&] { return cudaGraphLaunch(exec, bn.stream); }, what, &s, err)
                              : cuda_fail(err, what, e);
        if (exec) cudaGraphExecDestroy(exec);
        if (graph) cudaGraphDestroy(graph);
    }
    if (st == SS_OK) *seconds = s / CHAIN;
    return st;
}

} // namespace

extern "C" ss_status ss_cuda_boundary_time(double *in_graph, double *one_by_one, ss_error *err) {
    *in_graph = *one_by_one = 0;
    bench bn;
    const char *what = "kernel boundary";
    ss_status st = start(bn, what, err);
    if (st) return st;
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) return cuda_fail(err, what, e);
    sk::launch_ctx l = {bn.stream, true, prop.multiProcessorCount, prop.sharedMemPerBlockOptin};
    auto launch = [&] { return sk::launch_kernel(l, empty_kernel, dim3(prop.multiProcessorCount), dim3(128), 0); };
    st = chain_seconds(bn, launch, true, what, in_graph, err);
    return st ? st : chain_seconds(bn, launch, false, what, one_by_one, err);
}

extern "C" ss_status ss_cuda_attention_time(int heads, int kv_heads, int head_dim, int queries, int context,
                                            double *seconds, ss_error *err) {
    *seconds = 0;
    if (heads <= 0 || kv_heads <= 0 || heads % kv_heads || head_dim % 8 || head_dim > SK_PREP_MAX_HEAD_DIM ||
        queries < 1 || context < queries)
        return ss_fail(err, SS_EARG, "attention time: %d queries, %d/%d heads of %d at context %d", queries, heads,
                       kv_heads, head_dim, context);
    bench bn;
    const char *what = "attention time";
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, 0);
    if (e != cudaSuccess) return cuda_fail(err, what, e);
    /* The backend's choice (cuda_attention): the decode kernel up to a verification batch. */
    const bool tile = queries > SK_GEMV_MAX_VECTORS;
    if (tile && !sk::attn_tile_supported(head_dim, prop.sharedMemPerBlockOptin))
        return ss_fail(err, SS_EUNSUPPORTED, "attention time: no tile kernel for head_dim %d", head_dim);
    const int kv_dim = kv_heads * head_dim, sms = prop.multiProcessorCount;
    const int splits =
        tile ? sk::attn_tile_splits(queries, heads, kv_heads, sms) : sk::attn_decode_splits(heads, kv_heads, sms);
    const size_t cache = (size_t)context * kv_dim, qn = (size_t)queries * heads * head_dim;
    const size_t partial = sk::attn_partial_floats(queries, heads, kv_heads, head_dim, splits, tile);
    const size_t counters = sk::attn_counters(queries, heads, kv_heads, tile);
    ss_status st;
    if ((st = start(bn, what, err)) || (st = alloc(bn, 0, cache * 2 * 2, what, err)) ||
        (st = alloc(bn, 1, qn * 4 * 2, what, err)) || (st = alloc(bn, 2, partial * 4 + 64, what, err)) ||
        (st = alloc(bn, 3, (counters + queries) * 4, what, err)))
        return st;
    uint16_t *kc = (uint16_t *)bn.buf[0];
    float *q = (float *)bn.buf[1];
    fill_uniform<<<fill_grid(2 * cache), 256, 0, bn.stream>>>(kc, nullptr, 2 * cache, 5u);
    fill_uniform<<<fill_grid(qn), 256, 0, bn.stream>>>(nullptr, q, qn, 6u);
    int *pos = (int *)((unsigned *)bn.buf[3] + counters);
    int *host_pos = (int *)malloc(queries * sizeof(int));
    if (!host_pos) return ss_fail(err, SS_ENOMEM, "%s: out of host memory", what);
    for (int i = 0; i < queries; i++) host_pos[i] = context - queries + i; /* the newest positions, causal */
    if ((e = cudaMemsetAsync(bn.buf[3], 0, counters * 4, bn.stream)) ||
        (e = cudaMemcpyAsync(pos, host_pos, queries * sizeof(int), cudaMemcpyHostToDevice, bn.stream)) ||
        (e = cudaStreamSynchronize(bn.stream)) || (e = sk::setup_attention(prop.sharedMemPerBlockOptin))) {
        free(host_pos);
        return cuda_fail(err, what, e);
    }
    free(host_pos);
    sk::attn_params p = {};
    p.out = q + qn, p.q = q, p.kcache = kc, p.vcache = kc + cache, p.positions = pos;
    p.n = queries, p.heads = heads, p.kv_heads = kv_heads, p.head_dim = head_dim, p.kv_dim = kv_dim;
    p.scale = 1.0f / sqrtf((float)head_dim), p.splits = splits;
    p.partial = (float *)bn.buf[2], p.counters = (unsigned *)bn.buf[3];
    sk::launch_ctx l = {bn.stream, true, sms, prop.sharedMemPerBlockOptin};
    return chain_seconds(bn, [&] { return tile ? sk::attn_tile(l, p) : sk::attn_decode(l, p); }, true, what, seconds,
                         err);
}
