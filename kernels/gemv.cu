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
 * Split-K inside the block: where the rows do not spread evenly over the grid's warps (the 8B
 * q/k/v launch), teams of 2, 4 or 8 warps share a row, each member reading every team-th group of
 * 32 U chunks, so loads stay 512 contiguous bytes. The members' sums meet in shared memory at the
 * team's named barrier, and member 0 adds them in member order (the same bits on every run) and
 * writes the outputs. gemv() picks the team size per launch (team_for); a team of one is the kernel
 * as it was before teams, instruction for instruction.
 *
 * Before waiting for the previous kernel, each warp already issues the loads of its first two
 * batches: weights never depend on earlier kernels, so the launch gap is spent fetching. Each warp
 * then keeps two batches of loads in flight (software pipelining across batches and rows). The
 * RMSNorm's weight goes to shared memory first of all (copy_norm_weight), so staging the
 * normalised vector after the wait reads nothing from global memory but the vector itself.
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

/* The staged vectors, then the norm weight's copy (gemv_run). */
static size_t gemv_smem(int cols, int nvec) {
    return (size_t)nvec * vector_stride(cols) * sizeof(float) + norm_copy_bytes(cols);
}

/* Room left for the kernel's static shared memory: block_sum's 128 bytes and, with teams, the
 * partial sums (team_sum: 2 unit parities x 7 warps x 2 rows x 9 vectors x 4 bytes = 1008), 1136
 * bytes in all, which outgrew the 1024 reserved before teams. */
#define GEMV_STATIC_SMEM 2048

int gemv_max_vectors(int cols, size_t smem_optin) {
    if (cols <= 0 || cols % 8 || gemv_smem(cols, 1) + GEMV_STATIC_SMEM > smem_optin) return 0;
    size_t fit = (smem_optin - GEMV_STATIC_SMEM - norm_copy_bytes(cols)) / (vector_stride(cols) * sizeof(float));
    return fit < SK_GEMV_MAX_VECTORS ? (int)fit : SK_GEMV_MAX_VECTORS;
}

bool gemv_supported(int cols, int nvec, size_t smem_optin) {
    return cols > 0 && cols % 8 == 0 && nvec >= 1 && nvec <= SK_GEMV_MAX_VECTORS &&
           gemv_smem(cols, nvec) + GEMV_STATIC_SMEM <= smem_optin;
}

/* One launch of gemv_run with teams of TEAM warps, waiting for the previous kernel with PDL. TEAM is
 * a template argument: passed as a kernel argument, it made the multi-vector variants spill. */
template <int KIND, int NV, int TEAM>
__global__ void __launch_bounds__(GEMV_THREADS, GEMV_MAX_BLOCKS_PER_SM) gemv_kernel(const __grid_constant__ gemv_params p) {
    extern __shared__ __align__(16) float xs[];
    gemv_run<KIND, NV, GEMV_LOADS>(
        p, xs, blockIdx.x, gridDim.x,
        [] {
            pdl_launch_dependents();
            pdl_wait();
        },
        TEAM);
}

int gemv_kind(const gemv_params &p) {
    if (p.glu) return GEMV_GLU;
    for (int s = 0; s < p.nseg; s++)
        if (p.seg[s].rope_hd || p.seg[s].cache) return GEMV_PAIRS;
    return GEMV_ROWS;
}

/* The instantiations: one vector (decoding) or up to SK_GEMV_MAX_VECTORS (verification), for teams
 * of 1, 2, 4 or 8 warps. */
typedef void (*gemv_fn)(gemv_params);

template <int KIND, int NV>
static gemv_fn gemv_team_variant(int team) {
    switch (team) {
    case 2: return gemv_kernel<KIND, NV, 2>;
    case 4: return gemv_kernel<KIND, NV, 4>;
    case 8: return gemv_kernel<KIND, NV, 8>;
    default: return gemv_kernel<KIND, NV, 1>;
    }
}

template <int KIND>
static gemv_fn gemv_nvec_variant(int nvec, int team) {
    return nvec == 1 ? gemv_team_variant<KIND, 1>(team) : gemv_team_variant<KIND, SK_GEMV_MAX_VECTORS>(team);
}

static gemv_fn gemv_variant(int kind, int nvec, int team) {
    switch (kind) {
    case GEMV_GLU: return gemv_nvec_variant<GEMV_GLU>(nvec, team);
    case GEMV_PAIRS: return gemv_nvec_variant<GEMV_PAIRS>(nvec, team);
    default: return gemv_nvec_variant<GEMV_ROWS>(nvec, team);
    }
}

/* Asked of a variant with teams, which hold the most static shared memory (the partial sums): the
 * team size is chosen from this answer, so it must hold for every size. */
int gemv_occupancy(int kind, int cols, int nvec) {
    int blocks = 0;
    cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, gemv_variant(kind, nvec, GEMV_WARPS),
                                                                  GEMV_THREADS, gemv_smem(cols, nvec));
    return e == cudaSuccess && blocks > 0 ? blocks : 1;
}

/* Blocks for teams of `team` warps: one unit per team, at most cap. */
static int gemv_blocks(int units, int team, int cap) {
    const int blocks = ceil_div(units * team, GEMV_WARPS);
    return blocks < cap ? blocks : cap;
}

/* Warps per team (1, 2, 4 or 8): the fewest steps for the busiest warp, ceil(units / teams) *
 * rows * ceil(nchunks / (32 U team)) (rows: 2 for the one-row steps of q/k/v pairs), ties to the
 * smaller team (no barrier at 1). A whole
 * warp per unit leaves launches whose units just exceed the warps unbalanced: the llama-3.1-8b
 * q/k/v launch has 3072 row pairs of 4 steps for 2112 warps (264 blocks), so its busiest warps
 * read 2 pairs, 8 steps, against 5.8 on average; pairs of warps (1056 teams) read 3 pairs of 2
 * steps, 6. Every other llama-3.1-8b and llama-3.2-1b launch keeps 1 (nothing better, or a tie). */
static int team_for(int kind, int units, int cols, int cap) {
    const int rows = kind == GEMV_PAIRS ? 2 : 1, nchunks = cols / 8; /* one-row steps (gemv_run) */
    const int per_row = GEMV_LOADS / (kind == GEMV_GLU ? 2 : 1);
    int best = 1;
    long least = -1;
    for (int team = 1; team <= GEMV_WARPS; team *= 2) {
        const int teams = gemv_blocks(units, team, cap) * (GEMV_WARPS / team);
        const long batches = (long)ceil_div(units, teams) * rows * ceil_div(nchunks, 32 * per_row * team);
        if (least < 0 || batches < least) least = batches, best = team;
    }
    return best;
}

/* The most blocks a launch uses: at most 2 per multiprocessor (PDL room for the next kernel). */
static int block_cap(int sms, int blocks_per_sm) {
    const int per_sm = blocks_per_sm < GEMV_MAX_BLOCKS_PER_SM ? blocks_per_sm : GEMV_MAX_BLOCKS_PER_SM;
    return sms * (per_sm > 0 ? per_sm : 1);
}

cudaError_t gemv(const launch_ctx &c, const gemv_params &p, int blocks_per_sm, bool teams) {
    const int kind = gemv_kind(p), units = total_units(p, kind);
    const int cap = block_cap(c.sms, blocks_per_sm), team = teams ? team_for(kind, units, p.cols, cap) : 1;
    return launch_kernel(c, gemv_variant(kind, p.nvec, team), dim3(gemv_blocks(units, team, cap)), dim3(GEMV_THREADS),
                         gemv_smem(p.cols, p.nvec), p);
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
            for (int team = 1; team <= GEMV_WARPS && e == cudaSuccess; team *= 2)
                /* The opt-in limit covers static and dynamic shared memory together. */
                e = cudaFuncSetAttribute(gemv_variant(kind, nvecs[i], team),
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)(smem_optin - GEMV_STATIC_SMEM));
    return e;
}

} // namespace sk
