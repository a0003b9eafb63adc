/* persistent.cu — a run of decode kernels as one persistent kernel (opt-in, and slower so far).
 *
 * A decode step is ~5 kernels a layer (q/k/v GEMV, attention, o GEMV, gate/up GEMV, down GEMV),
 * each a few to tens of microseconds of weight streaming, and each kernel boundary drains one grid
 * and ramps up the next. Here one grid (one block per SM, all resident) runs the launches as
 * phases separated by a grid barrier; each GEMV phase issues its first two batches of weight loads
 * *before* the barrier, so the memory pipe stays busy across the phase boundary.
 *
 * The phases run the same device code as the separate kernels (gemv_run, attn_decode_run), so the
 * results are the same bits (tests/gpu/test_gpu_ops.c). Attention phases run two 128-thread
 * attention blocks per 256-thread block, each on its own named barrier. What one phase wrote, the
 * next reads through L2 (ld.cg), never through a possibly stale L1 line.
 *
 * Why it is off by default (H200, docs/cuda.md): a GEMV keeps its loads in flight in registers,
 * and the separate kernels run 2 blocks of 256 threads per SM at 128 registers, 128 KB in flight per
 * SM. Two phase bodies in one kernel need more registers than either alone: at 2 blocks per SM the
 * kernel spilled ~1 KB per thread in its inner loops (1B decode 534 tok/s against 1020), and at one
 * block per SM (255 registers, no spills; this version) half the loads are in flight (1B 737,
 * 8B 182 against 1032 and 219). The way forward is a GEMV that streams weights into a shared-memory
 * ring with bulk asynchronous copies (no registers held per load), which this kernel can then run.
 *
 * Deadlock rule: the grid barrier needs every block resident, so the kernel lets the next kernel
 * launch early (PDL) only in its last phase, after the last barrier; and the first phase waits for
 * the previous kernel with the PDL wait, not a barrier. */
#include "attention_decode.cuh"
#include "gemv.cuh"

namespace sk {

static_assert(sizeof(persistent_params) <= 32764, "a launch's parameters must fit the 32 KB kernel parameter limit");

/* Loads in flight per lane and batch in a GEMV phase. */
#define PERSIST_GEMV_LOADS 8

/* Static shared memory: the two attention blocks' state and the GEMV's reduction buffer. */
#define PERSIST_STATIC_SMEM (2 * sizeof(attn_decode_smem) + 1024)

/* Every block arrives, then all leave: bar[0] counts arrivals, bar[1] is the generation the last
 * arrival bumps (after putting the count back to zero). Writes before the barrier are visible to
 * every block after it (fences around the arrival, as cooperative groups' grid sync). */
__device__ __forceinline__ void grid_barrier(unsigned *bar, unsigned blocks) {
    __syncthreads();
    if (threadIdx.x == 0) {
        volatile unsigned *gen = bar + 1;
        const unsigned g = *gen;
        __threadfence();
        if (atomicAdd(bar, 1u) == blocks - 1) {
            atomicExch(bar, 0u);
            __threadfence();
            atomicAdd(bar + 1, 1u);
        } else {
            while (*gen == g) {
            }
        }
        __threadfence();
    }
    __syncthreads();
}

/* What a phase does between its early loads and the rest: the first phase waits for the previous
 * kernel (PDL), the others for every block to finish the phase before (grid barrier); the last lets
 * the next kernel launch (only then: all of this grid is resident). By value: no locals in memory. */
struct phase_wait {
    bool first, last;
    unsigned *barrier;
    __device__ __forceinline__ void operator()() const {
        if (first)
            pdl_wait();
        else
            grid_barrier(barrier, gridDim.x);
        if (last) pdl_launch_dependents();
    }
};

/* Each phase kind is its own function (not inlined), so that each gets the register allocation
 * its separate kernel has, without spills from the others. */
template <int KIND, typename Wait>
__device__ __forceinline__ void gemv_phase(const gemv_params &p, float *xs, Wait wait) {
    gemv_run<KIND, 1, PERSIST_GEMV_LOADS>(p, xs, blockIdx.x, gridDim.x, wait);
}

/* The attention launch's blocks (split fastest, then head, then query), two at a time per block. */
template <int LPK>
__device__ void attention_blocks(const attn_params &p, attn_decode_smem sm[2]) {
    const int half = threadIdx.x / DEC_THREADS, tid = threadIdx.x % DEC_THREADS;
    const int count = p.splits * p.heads * p.n;
    for (int vb = 2 * blockIdx.x + half; vb < count; vb += 2 * gridDim.x) {
        const int s = vb % p.splits, h = vb / p.splits % p.heads, i = vb / (p.splits * p.heads);
        attn_decode_run<LPK>(p, s, h, i, p.positions[i] + 1, tid, 1 + half, sm[half]);
    }
}

__device__ __forceinline__ void attention_phase(const attn_params &p, attn_decode_smem sm[2]) {
    switch (attn_decode_lpk(p.head_dim)) {
    case 1: attention_blocks<1>(p, sm); break;
    case 2: attention_blocks<2>(p, sm); break;
    case 4: attention_blocks<4>(p, sm); break;
    case 8: attention_blocks<8>(p, sm); break;
    case 16: attention_blocks<16>(p, sm); break;
    default: attention_blocks<32>(p, sm); break;
    }
}

__global__ void __launch_bounds__(GEMV_THREADS, 1) persistent_kernel(const __grid_constant__ persistent_params pp) {
    extern __shared__ __align__(16) float xs[];
    __shared__ attn_decode_smem sm[GEMV_THREADS / DEC_THREADS];
    __shared__ __align__(16) phase ph;
    for (int i = 0; i < pp.count; i++) {
        /* The phase's parameters into shared memory: indexed by i they are no longer constant-bank
         * operands, and the GEMV reads them in its inner loop. */
        __syncthreads(); /* the last phase is done with ph */
        static_assert(sizeof(phase) % 4 == 0, "phases copy as words");
        const unsigned *from = reinterpret_cast<const unsigned *>(&pp.ph[i]);
        for (int w = threadIdx.x; w < (int)(sizeof(phase) / 4); w += GEMV_THREADS) reinterpret_cast<unsigned *>(&ph)[w] = from[w];
        __syncthreads();
        const phase_wait wait = {i == 0, i == pp.count - 1, pp.barrier};
        switch (ph.kind) {
        case GEMV_ROWS: gemv_phase<GEMV_ROWS>(ph.gemv, xs, wait); break;
        case GEMV_GLU: gemv_phase<GEMV_GLU>(ph.gemv, xs, wait); break;
        case GEMV_PAIRS: gemv_phase<GEMV_PAIRS>(ph.gemv, xs, wait); break;
        default:
            wait();
            attention_phase(ph.attn, sm);
        }
    }
}

bool persistent_takes(const gemv_params &p, size_t smem_optin) {
    return p.nvec == 1 && persistent_smem_of(p.cols) + PERSIST_STATIC_SMEM <= smem_optin;
}

bool persistent_takes(const attn_params &p) { return p.head_dim <= SK_PREP_MAX_HEAD_DIM && p.head_dim % 8 == 0; }

size_t persistent_smem_of(int cols) { return (size_t)vector_stride(cols) * sizeof(float); }

int persistent_blocks_per_sm(size_t smem) {
    int blocks = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, persistent_kernel, GEMV_THREADS, smem) != cudaSuccess)
        return 0;
    return blocks < 1 ? 0 : 1;
}

cudaError_t persistent(const launch_ctx &c, const persistent_params &p, size_t smem, int blocks) {
    return launch_kernel(c, persistent_kernel, dim3(blocks), dim3(GEMV_THREADS), smem, p);
}

cudaError_t setup_persistent(size_t smem_optin) {
    return cudaFuncSetAttribute(persistent_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)(smem_optin - PERSIST_STATIC_SMEM));
}

} // namespace sk
