/* gemv.cu — batch-1 matrix-vector products with bf16 weights, fp32 input and accumulation.
 *
 * Decoding one token reads every weight once, so this kernel is a memory stream: each warp owns
 * one output row at a time and reads it in 16-byte chunks, lane l taking chunks l, l + 32, ...
 * (each warp load is 512 contiguous bytes), with U independent loads in flight per lane before the
 * first use. The input vector sits in shared memory, padded by 16 bytes every 128 so that the two
 * 16-byte reads of a lane hit distinct banks. The grid is persistent (at most 2 blocks of 8 warps
 * per multiprocessor, looping over rows) so the vector is staged once per block, and the rest of
 * the multiprocessor stays free for the next kernel's blocks to start early (PDL).
 *
 * Before waiting for the previous kernel, each warp already issues the loads of its first two
 * batches: weights never depend on earlier kernels, so the launch gap is spent fetching. Each warp
 * then keeps two batches of loads in flight (software pipelining across batches and rows).
 *
 * Up to SK_GEMV_MAX_VECTORS input vectors (speculative verification) share each weight load, with
 * fp32 activations like the single-vector case, so a verified token's logits are computed the way
 * a decoded token's are and greedy speculative decoding keeps plain greedy's choices.
 *
 * Fusions (gemv_params): the RMSNorm before a projection (the block normalises the vector it
 * stages), q/k/v as segments of one launch, gate/up with SiLU*up, the residual add after the
 * o / down projections, and for q/k/v the rotary embedding and the KV-cache store (the units are
 * then the rotate_half row pairs, so no separate prep kernel runs for llama-style models).
 * matmul_plain is the fallback for shapes this kernel does not take. */
#include "gemv.cuh"

namespace sk {

static size_t gemv_smem(int cols, int nvec) { return (size_t)nvec * vector_stride(cols) * sizeof(float); }

/* Room left for the kernel's static shared memory (the reduction buffer). */
#define GEMV_STATIC_SMEM 1024

int gemv_max_vectors(int cols, size_t smem_optin) {
    if (cols <= 0 || cols % 8 || smem_optin <= GEMV_STATIC_SMEM) return 0;
    size_t fit = (smem_optin - GEMV_STATIC_SMEM) / gemv_smem(cols, 1);
    return fit < SK_GEMV_MAX_VECTORS ? (int)fit : SK_GEMV_MAX_VECTORS;
}

bool gemv_supported(int cols, int nvec, size_t smem_optin) {
    return cols > 0 && cols % 8 == 0 && nvec >= 1 && nvec <= SK_GEMV_MAX_VECTORS &&
           gemv_smem(cols, nvec) + GEMV_STATIC_SMEM <= smem_optin;
}

/* One launch of gemv_run, waiting for the previous kernel with PDL. */
template <int KIND, int NV>
__global__ void __launch_bounds__(GEMV_THREADS, GEMV_MAX_BLOCKS_PER_SM) gemv_kernel(const __grid_constant__ gemv_params p) {
    extern __shared__ __align__(16) float xs[];
    gemv_run<KIND, NV, GEMV_LOADS>(p, xs, blockIdx.x, gridDim.x, [] {
        pdl_launch_dependents();
        pdl_wait();
    });
}

int gemv_kind(const gemv_params &p) {
    if (p.glu) return GEMV_GLU;
    for (int s = 0; s < p.nseg; s++)
        if (p.seg[s].rope_hd || p.seg[s].cache) return GEMV_PAIRS;
    return GEMV_ROWS;
}

/* The instantiations: one vector (decoding), or up to SK_GEMV_MAX_VECTORS (verification). */
typedef void (*gemv_fn)(gemv_params);
static gemv_fn gemv_variant(int kind, int nvec) {
    constexpr int M = SK_GEMV_MAX_VECTORS;
    switch (kind) {
    case GEMV_GLU: return nvec == 1 ? gemv_kernel<GEMV_GLU, 1> : gemv_kernel<GEMV_GLU, M>;
    case GEMV_PAIRS: return nvec == 1 ? gemv_kernel<GEMV_PAIRS, 1> : gemv_kernel<GEMV_PAIRS, M>;
    default: return nvec == 1 ? gemv_kernel<GEMV_ROWS, 1> : gemv_kernel<GEMV_ROWS, M>;
    }
}

int gemv_occupancy(int kind, int cols, int nvec) {
    int blocks = 0;
    cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, gemv_variant(kind, nvec), GEMV_THREADS,
                                                                  gemv_smem(cols, nvec));
    return e == cudaSuccess && blocks > 0 ? blocks : 1;
}

cudaError_t gemv(const launch_ctx &c, const gemv_params &p, int blocks_per_sm) {
    const int kind = gemv_kind(p), units = total_units(p, kind);
    int per_sm = blocks_per_sm < GEMV_MAX_BLOCKS_PER_SM ? blocks_per_sm : GEMV_MAX_BLOCKS_PER_SM;
    int blocks = ceil_div(units, GEMV_WARPS), cap = c.sms * (per_sm > 0 ? per_sm : 1);
    if (blocks > cap) blocks = cap;
    return launch_kernel(c, gemv_variant(kind, p.nvec), dim3(blocks), dim3(GEMV_THREADS), gemv_smem(p.cols, p.nvec), p);
}

/* ---------------------------------------------------------------- the plain path */

/* One warp per (position, row), scalar loads: any shape, no shared memory. */
__global__ void matmul_plain_kernel(float *out, const float *x, const uint16_t *w, const uint16_t *bias, int n, int rows,
                                    int cols) {
    pdl_launch_dependents();
    pdl_wait();
    const int lane = threadIdx.x & 31;
    const size_t item = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (item >= (size_t)n * rows) return;
    const int i = (int)(item / rows), r = (int)(item % rows);
    const uint16_t *wr = w + (size_t)r * cols;
    const float *xr = x + (size_t)i * cols;
    float acc = 0.0f;
    for (int c = lane; c < cols; c += 32) acc = fmaf(bf16_at(wr, c), xr[c], acc);
    acc = warp_sum(acc);
    if (lane == 0) out[(size_t)i * rows + r] = acc + (bias ? bf16_at(bias, r) : 0.0f);
}

cudaError_t matmul_plain(const launch_ctx &c, float *out, const float *x, const uint16_t *w, const uint16_t *bias, int n,
                         int rows, int cols) {
    size_t items = (size_t)n * rows, blocks = (items + 7) / 8;
    return launch_kernel(c, matmul_plain_kernel, dim3((unsigned)blocks), dim3(256), 0, out, x, w, bias, n, rows, cols);
}

cudaError_t setup_gemv(size_t smem_optin) {
    cudaError_t e = cudaSuccess;
    const int nvecs[2] = {1, SK_GEMV_MAX_VECTORS};
    for (int kind = 0; kind < GEMV_KINDS && e == cudaSuccess; kind++)
        for (int i = 0; i < 2 && e == cudaSuccess; i++)
            /* The opt-in limit covers static and dynamic shared memory together. */
            e = cudaFuncSetAttribute(gemv_variant(kind, nvecs[i]), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)(smem_optin - GEMV_STATIC_SMEM));
    return e;
}

} // namespace sk
